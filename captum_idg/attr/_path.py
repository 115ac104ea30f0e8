"""Paths, and the model evaluated along them, one schedule per example.

A :class:`Path` is one curve ``z_b(alpha)``, ``alpha`` from 0 to 1, per
example of a batch: the straight line ``x' + alpha * (x - x')``
(:class:`StraightLinePath`), or the blur path of Blur IG. Sample points are
given as ``alphas`` of shape ``(k, batch)``; rows are laid out step-major like
Captum's ``IntegratedGradients`` (step ``i`` of example ``b`` is row
``i * batch + b``), so Captum's target and forward-argument expansion apply
unchanged. Passes are
split to at most :func:`~captum_idg._batching.rows_per_pass` rows, and
NaN or inf anywhere on the path is an error that says where.
"""

from abc import ABC, abstractmethod
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

import torch
from captum._utils.common import (
    _expand_additional_forward_args,
    _expand_target,
    _run_forward,
    _select_targets,
    safe_div,
)
from captum._utils.typing import TargetType
from torch import Tensor

from captum_idg._batching import (
    Index,
    row_slices,
    rows_per_pass,
    take_examples,
    take_forward_args,
)
from captum_idg._validation import check_finite, checked_forward
from captum_idg._warnings import some_examples, warn
from captum_idg.attr._intake import Arguments


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
    One path per example of a batch, with the model's target, extra forward
    arguments and pass size attached. A subclass says where its points are
    (:meth:`points`), how fast they move (:meth:`derivative`) and how
    gradients along it are summed (:meth:`sums`).

    Args:
        inputs (tuple[Tensor, ...]): Formatted inputs, batch first: the end
                    of every path (``alpha = 1``).
        target (TargetType): Captum target, one per example or shared.
        additional_forward_args (tuple, optional): Formatted Captum forward
                    arguments.
        rows (int): Most rows per forward pass; a pass always holds at least
                    one step of the whole batch.
    """

    # where the path runs, for error messages
    where = "on the path from baselines to inputs (alpha 0 is the baseline, 1 the input)"

    def __init__(
        self,
        inputs: Tuple[Tensor, ...],
        target: TargetType,
        additional_forward_args: Optional[tuple],
        rows: int,
    ) -> None:
        self.inputs = inputs
        self.batch_size = inputs[0].shape[0]
        self.target = target
        self.additional_forward_args = additional_forward_args
        self.rows = rows

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

    @abstractmethod
    def sums(self, multiply_by_inputs: bool) -> Sums:
        r"""An empty sum of gradient samples along these paths."""

    def _taken(self, index: Index) -> Tuple[Tuple[Tensor, ...], TargetType, Optional[tuple]]:
        r"""Inputs, target and forward arguments of the examples ``index``."""
        return (tuple(take_examples(x, index, self.batch_size) for x in self.inputs),
                take_examples(self.target, index, self.batch_size),
                take_forward_args(self.additional_forward_args, index, self.batch_size))

    def logits(self, forward_func: Callable, alphas: Tensor) -> Tensor:
        r"""Forward-only target logits at ``alphas``: shape ``(k, batch)``."""
        chunks = []
        forward = checked_forward(forward_func, self.target)
        with torch.no_grad():
            for steps in self._step_chunks(alphas.shape[0]):
                k = steps.stop - steps.start
                output = _run_forward(
                    forward,
                    self.points(alphas[steps]),
                    _expand_target(self.target, k),
                    self._expanded_args(k),
                )
                chunks.append(output.reshape(k, self.batch_size))
        logits = torch.cat(chunks)
        check_finite("forward_func's outputs", logits, alphas, self.where)
        return logits

    def gradients(
        self, gradient_func: Callable, forward_func: Callable, alphas: Tensor
    ) -> Iterator[Tuple[slice, Tuple[Tensor, ...], Tensor]]:
        r"""
        Forward and backward passes at ``alphas``, one chunk at a time.

        Yields:
            ``(steps, grads, logits)``: the slice of steps in this chunk, the
            gradients of the target logit, each of shape ``(k, batch, *input
            shape[1:])``, and the target logits, shape ``(k, batch)``.
        """
        for steps in self._step_chunks(alphas.shape[0]):
            k = steps.stop - steps.start
            target = _expand_target(self.target, k)
            outputs: List[Tensor] = []
            grads = gradient_func(
                checked_forward(forward_func, self.target, outputs),
                tuple(p.requires_grad_() for p in self.points(alphas[steps])),
                target,
                self._expanded_args(k),
            )
            logits = _select_targets(outputs[-1].detach(), target).reshape(k, self.batch_size)
            check_finite("forward_func's outputs", logits, alphas[steps], self.where)
            grads = tuple(g.view(k, self.batch_size, *g.shape[1:]) for g in grads)
            for g in grads:
                check_finite("gradients of forward_func", g, alphas[steps], self.where)
            yield steps, grads, logits

    @staticmethod
    def rate_of_change(grads: Tuple[Tensor, ...], derivative: Tuple[Tensor, ...]) -> Tensor:
        r"""``dF/dalpha = sum(grad * dz/dalpha)`` per sample: shape ``(k, batch)``."""
        return sum(
            torch.einsum("kbf,bf->kb", flat_features(g, 2), flat_features(d, 1))
            if d.dim() < g.dim() else
            torch.einsum("kbf,kbf->kb", flat_features(g, 2), flat_features(d, 2))
            for g, d in zip(grads, derivative)
        )

    def _step_chunks(self, n_steps: int) -> Iterator[slice]:
        return row_slices(n_steps, max(1, self.rows // self.batch_size))

    def _expanded_args(self, k: int) -> Any:
        if self.additional_forward_args is None:
            return None
        return _expand_additional_forward_args(self.additional_forward_args, k)


class StraightLinePath(Path):
    r"""
    The straight lines ``x' + alpha * (x - x')`` from ``baselines`` to
    ``inputs``; ``baselines`` (tuple[Tensor, ...]) have the inputs' shapes.
    Other arguments as :class:`Path`.
    """

    def __init__(
        self,
        inputs: Tuple[Tensor, ...],
        baselines: Tuple[Tensor, ...],
        target: TargetType,
        additional_forward_args: Optional[tuple],
        rows: int,
    ) -> None:
        super().__init__(inputs, target, additional_forward_args, rows)
        self.baselines = baselines
        self.directions = tuple(x - b for x, b in zip(inputs, baselines))

    @classmethod
    def of(cls, arguments: Arguments) -> "StraightLinePath":
        r"""The paths of a call's checked arguments (see
        :func:`~captum_idg.attr._intake.take_arguments`)."""
        return cls(arguments.inputs, arguments.baselines, arguments.target,
                   arguments.additional_forward_args,
                   rows_per_pass(arguments.inputs, arguments.internal_batch_size))

    def select(self, index: Index) -> "StraightLinePath":
        inputs, target, args = self._taken(index)
        baselines = tuple(take_examples(b, index, self.batch_size) for b in self.baselines)
        return StraightLinePath(inputs, baselines, target, args, self.rows)

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
