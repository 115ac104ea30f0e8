"""Paths (geometry only), the sums of gradient samples along them, and their warnings.

A :class:`Path` is one curve ``z_b(alpha)``, ``alpha`` from 0 to 1, per
example of a batch: the straight line ``x' + alpha * (x - x')``
(:class:`StraightLinePath`), or the blur path of Blur IG. Sample points are
given as ``alphas`` of shape ``(k, batch)``; rows are laid out step-major like
Captum's ``IntegratedGradients`` (step ``i`` of example ``b`` is row
``i * batch + b``), so Captum's target and forward-argument expansion apply
unchanged. The model runs along a path in
:class:`~captum_idg.attr._path_integral.ModelOnPath`.
"""

from abc import ABC, abstractmethod
from typing import Any, Callable, Dict, Optional, Tuple, Union

import torch
from captum._utils.common import (
    _run_forward,
    safe_div,
)
from captum._utils.typing import TargetType
from torch import Tensor

from captum_idg._batching import (
    Index,
    take_examples,
)
from captum_idg._warnings import some_examples, warn


def flat_features(t: Tensor, batch_dims: int) -> Tensor:
    r"""``t`` with its feature dimensions (those after the first ``batch_dims``)
    as one; inputs with only a batch dimension have one feature."""
    return t.flatten(batch_dims) if t.dim() > batch_dims else t.unsqueeze(batch_dims)


def summed_gradients(
    forward_fn: Callable,
    inputs: Tuple[Tensor, ...],
    target_ind: TargetType = None,
    additional_forward_args: Any = None,
    grad_kwargs: Optional[Dict[str, Any]] = None,
) -> Tuple[Tensor, ...]:
    r"""
    Captum's ``compute_gradients`` with one backward pass of the summed
    target outputs instead of one per row (``torch.unbind``), which costs
    time quadratic in the rows. The gradients are the same: each row's
    output depends on its own input row. An input the output does not use
    gets a zero gradient.
    """
    with torch.enable_grad():
        outputs = _run_forward(forward_fn, inputs, target_ind, additional_forward_args)
        if not outputs.requires_grad:
            raise ValueError(
                "forward_func's output does not depend on inputs through autograd (it "
                "has no grad_fn): the model may detach, run under torch.no_grad, or "
                "ignore its inputs"
            )
        grads = torch.autograd.grad(outputs.sum(), inputs, allow_unused=True,
                                    **(grad_kwargs or {}))
    return tuple(torch.zeros_like(x) if g is None else g for g, x in zip(grads, inputs))


Sums = Union["DirectionSums", "StepSums"]


class Path(ABC):
    r"""
    Geometry only: one curve ``z_b(alpha)``, ``alpha`` from 0 (the start) to 1
    (the input), per example of a batch. A subclass says where its points are
    (:meth:`points`), how fast they move (:meth:`derivative`) and how to keep
    some examples (:meth:`select`); :class:`~captum_idg.paths.ModelOnPath`
    runs the model along it.

    The contract: ``alphas`` are ``(k, batch)``, a schedule per example;
    :meth:`points` returns one tensor per input of ``k * batch`` rows laid out
    step-major like Captum's ``IntegratedGradients`` (step ``i`` of example
    ``b`` is row ``i * batch + b``); :meth:`derivative` returns ``dz/dalpha``
    per input, ``(k, batch, *input.shape[1:])``, or ``(batch, ...)`` where it
    does not depend on ``alpha``.

    Args:
        inputs (tuple[Tensor, ...]): Formatted inputs, batch first: the end
                    of every path (``alpha = 1``).
    """

    # where the path runs, for error messages
    where = "on the path (alpha 0 is its start, 1 the input)"

    def __init__(self, inputs: Tuple[Tensor, ...]) -> None:
        self.inputs = inputs
        self.batch_size = inputs[0].shape[0]

    @property
    def schedule_dtype(self) -> torch.dtype:
        r"""The dtype of sample points and weights: the inputs'."""
        return self.inputs[0].dtype

    @abstractmethod
    def points(self, alphas: Tensor) -> Tuple[Tensor, ...]:
        r"""The path points at ``alphas`` (k, batch), as ``k * batch`` rows."""

    @abstractmethod
    def derivative(self, alphas: Tensor) -> Tuple[Tensor, ...]:
        r"""``dz/dalpha`` at ``alphas``: ``(k, batch, ...)`` per input, or
        ``(batch, ...)`` where it does not depend on ``alpha``."""

    @abstractmethod
    def select(self, index: Index) -> "Path":
        r"""The paths of the examples ``index`` only."""

    def sums(self, multiply_by_inputs: bool) -> Sums:
        r"""An empty sum of gradient samples along these paths: the steps
        ``c_k * dz/dalpha(a_k)`` of any curve (:class:`StepSums`)."""
        return StepSums(self.inputs, multiply_by_inputs)

    def taken(self, tensors: Tuple[Tensor, ...], index: Index) -> Tuple[Tensor, ...]:
        r"""The rows ``index`` of per-example ``tensors`` (for :meth:`select`)."""
        return tuple(take_examples(t, index, self.batch_size) for t in tensors)

    @staticmethod
    def rate_of_change(grads: Tuple[Tensor, ...], derivative: Tuple[Tensor, ...]) -> Tensor:
        r"""``dF/dalpha = sum(grad * dz/dalpha)`` per sample: shape ``(k, batch)``."""
        return sum(
            torch.einsum("kbf,bf->kb", flat_features(g, 2), flat_features(d, 1))
            if d.dim() < g.dim() else
            torch.einsum("kbf,kbf->kb", flat_features(g, 2), flat_features(d, 2))
            for g, d in zip(grads, derivative)
        )


class StraightLinePath(Path):
    r"""
    The straight lines ``x' + alpha * (x - x')`` from ``baselines`` to
    ``inputs`` (tuples of tensors of the same shapes).
    """

    where = "on the path from baselines to inputs (alpha 0 is the baseline, 1 the input)"

    def __init__(self, inputs: Tuple[Tensor, ...], baselines: Tuple[Tensor, ...]) -> None:
        super().__init__(inputs)
        self.baselines = baselines
        self.directions = tuple(x - b for x, b in zip(inputs, baselines))

    def select(self, index: Index) -> "StraightLinePath":
        return StraightLinePath(self.taken(self.inputs, index), self.taken(self.baselines, index))

    def points(self, alphas: Tensor) -> Tuple[Tensor, ...]:
        k = alphas.shape[0]
        return tuple(
            torch.addcmul(
                b.unsqueeze(0),
                alphas.to(x.dtype).view(k, self.batch_size, *[1] * (x.dim() - 1)),
                d.unsqueeze(0),
            ).reshape(k * self.batch_size, *x.shape[1:])
            for x, b, d in zip(self.inputs, self.baselines, self.directions)
        )

    def derivative(self, alphas: Tensor) -> Tuple[Tensor, ...]:
        return self.directions

    def sums(self, multiply_by_inputs: bool) -> "DirectionSums":
        return DirectionSums(self.directions, multiply_by_inputs)


class DirectionSums:
    r"""
    ``sum_k c_k g_k`` along straight lines, multiplied by ``x - x'`` at the
    end where ``multiply_by_inputs`` (the global attribution) and left as it
    is otherwise (the local one, IG's mean gradient).
    """

    def __init__(self, directions: Tuple[Tensor, ...], multiply_by_inputs: bool) -> None:
        self.directions = directions if multiply_by_inputs else None
        self.totals = [torch.zeros_like(d) for d in directions]

    def add_samples(self, coefficients: Tensor, grads: Tuple[Tensor, ...],
                    derivative: Tuple[Tensor, ...]) -> None:
        r"""Adds ``k`` samples: ``coefficients`` ``(k, batch)``, ``grads``
        ``(k, batch, ...)``; ``derivative`` is ``x - x'`` throughout."""
        for total, grad in zip(self.totals, grads):
            total += torch.einsum("kb,kb...->b...", coefficients, grad)

    def result(self) -> Tuple[Tensor, ...]:
        if self.directions is None:
            return tuple(self.totals)
        return tuple(t * d for t, d in zip(self.totals, self.directions))


class StepSums:
    r"""
    Sums along a path of arbitrary steps ``dz_k`` (Guided IG, AGI, IDGI):
    ``sum_k g_k * dz_k``, the global attribution, or with
    ``multiply_by_inputs=False`` the local one, the step-weighted mean
    gradient ``sum_k g_k |dz_k| / sum_k |dz_k|`` per feature (0 for a feature
    that never moves). On the straight line the local one is IG's mean
    gradient, and global = local * (x - x') wherever features move one way.
    """

    def __init__(self, like: Tuple[Tensor, ...], multiply_by_inputs: bool) -> None:
        self.multiply_by_inputs = multiply_by_inputs
        self.totals = [torch.zeros_like(t) for t in like]
        self.lengths = None if multiply_by_inputs else [torch.zeros_like(t) for t in like]
        # per example: whether any step added to the sums (a gradient on a moving feature)
        self.seen = torch.zeros(like[0].shape[0], dtype=torch.bool, device=like[0].device)

    def add(self, grads: Tuple[Tensor, ...], steps: Tuple[Tensor, ...]) -> None:
        r"""Adds ``k`` steps: ``grads`` and ``steps`` ``(k, *shape of the totals)``."""
        for i, (g, dz) in enumerate(zip(grads, steps)):
            term = g * (dz if self.lengths is None else dz.abs())
            self.totals[i] += term.sum(dim=0)
            if self.lengths is not None:
                self.lengths[i] += dz.abs().sum(dim=0)
            self.seen |= flat_features(term, 2).ne(0).any(dim=2).any(dim=0)

    def add_samples(self, coefficients: Tensor, grads: Tuple[Tensor, ...],
                    derivative: Tuple[Tensor, ...]) -> None:
        r"""Adds ``k`` samples of a path integral: the steps are
        ``coefficients`` ``(k, batch)`` times ``derivative`` ``dz/dalpha``."""
        self.add(grads, tuple(
            d * coefficients.view(*coefficients.shape, *[1] * (d.dim() - 2)) for d in derivative))

    def result(self) -> Tuple[Tensor, ...]:
        if self.lengths is None:
            return tuple(self.totals)
        return tuple(
            torch.where(n > 0, safe_div(t, n), 0.0)
            for t, n in zip(self.totals, self.lengths)
        )


# a change of the target output below this many units of rounding of its size (and
# below this share of it, for half precision) is no change
STILL_ULPS = 100
STILL_SHARE = 1e-5


def check_output_moves(start: Tensor, end: Tensor) -> Tensor:
    r"""Warns about the examples whose target output does not move from the
    path's ``start`` to its ``end`` (exactly, or by less than rounding noise
    of its size), and returns them as a mask."""
    size = torch.maximum(start.abs(), end.abs())
    share = min(STILL_ULPS * torch.finfo(start.dtype).eps, STILL_SHARE)
    still = (end - start).abs() <= share * size
    if still.any():
        warn(f"the target output of {some_examples(still.nonzero().flatten().tolist(), len(still))}"
             " does not move along the path (F(x) - F(x') is 0 or rounding noise): their "
             "attributions are 0 or noise. Check that the target depends on the input (an "
             "untrained or zero-initialised head gives this) and that the baseline differs "
             "from the input.")
    return still


def warn_no_change(unseen: Tensor, after: str = "") -> None:
    r"""Warns about the examples ``unseen`` whose samples saw no change of the
    target output although it changes along their path (their attributions
    are 0 ``after`` what is named)."""
    missed = unseen.nonzero().flatten().tolist()
    if missed:
        warn(f"the samples of {some_examples(missed, len(unseen))} saw no change of the target "
             "output although it changes along the path: it changes between samples (a step, "
             "or inputs and baselines so large that the model saturates); their attributions "
             f"are 0{after}. Pass a larger n_steps, or check the scale of inputs and baselines.")
