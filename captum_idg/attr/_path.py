"""The path engine: evaluates a model along straight lines, one schedule per example.

Every method in this package that integrates along ``x' + alpha * (x - x')``
goes through :class:`StraightLinePath`. Sample points are given as ``alphas``
of shape ``(k, batch)``; rows are laid out step-major like Captum's
``IntegratedGradients`` (step ``i`` of example ``b`` is row ``i * batch + b``),
so Captum's target and forward-argument expansion apply unchanged. Passes are
split to at most :func:`~captum_idg.attr._validation.rows_per_pass` rows, and
NaN or inf anywhere on the path is an error that says where.
"""

from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import torch
from captum._utils.common import (
    _expand_additional_forward_args,
    _expand_target,
    _format_additional_forward_args,
    _run_forward,
    _select_targets,
    safe_div,
)
from captum._utils.typing import TargetType
from torch import Tensor

from captum_idg._batching import Index, row_slices, take_examples, take_forward_args
from captum_idg.attr._validation import (
    check_count,
    check_finite,
    check_forward_args,
    check_steps_fit,
    check_target,
    checked_forward,
    format_inputs_and_baselines,
    rows_per_pass,
)


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


class StraightLinePath:
    r"""
    The straight lines from ``baselines`` to ``inputs`` of a batch, with the
    model's target, extra forward arguments and pass size attached.

    Args:
        inputs (tuple[Tensor, ...]): Formatted inputs, batch first.
        baselines (tuple[Tensor, ...]): Baselines of the same shapes.
        target (TargetType): Captum target, one per example or shared.
        additional_forward_args (tuple, optional): Formatted Captum forward
                    arguments.
        rows (int): Most rows per forward pass; a pass always holds at least
                    one step of the whole batch.
    """

    def __init__(
        self,
        inputs: Tuple[Tensor, ...],
        baselines: Tuple[Tensor, ...],
        target: TargetType,
        additional_forward_args: Optional[tuple],
        rows: int,
    ) -> None:
        self.inputs = inputs
        self.baselines = baselines
        self.directions = tuple(x - b for x, b in zip(inputs, baselines))
        self.batch_size = inputs[0].shape[0]
        self.target = target
        self.additional_forward_args = additional_forward_args
        self.rows = rows

    @classmethod
    def from_arguments(
        cls,
        inputs: Any,
        baselines: Any,
        target: TargetType,
        additional_forward_args: Any,
        n_steps: int,
        internal_batch_size: Optional[int],
        minimum_steps: int = 2,
    ) -> "StraightLinePath":
        r"""Checks a method's public arguments and builds the batch's paths."""
        formatted_inputs, formatted_baselines = format_inputs_and_baselines(
            inputs, baselines
        )
        batch_size = formatted_inputs[0].shape[0]
        check_count("n_steps", n_steps, minimum_steps)
        check_steps_fit(formatted_inputs, n_steps)
        check_target(target, batch_size)
        args = _format_additional_forward_args(additional_forward_args)
        check_forward_args(args, batch_size)
        rows = rows_per_pass(formatted_inputs, internal_batch_size)
        return cls(formatted_inputs, formatted_baselines, target, args, rows)

    def select(self, index: Index) -> "StraightLinePath":
        r"""The paths of the examples ``index`` only."""
        take = lambda value: take_examples(value, index, self.batch_size)  # noqa: E731
        return StraightLinePath(
            tuple(take(x) for x in self.inputs),
            tuple(take(b) for b in self.baselines),
            take(self.target),
            take_forward_args(self.additional_forward_args, index, self.batch_size),
            self.rows,
        )

    def points(self, alphas: Tensor) -> Tuple[Tensor, ...]:
        r"""The path points at ``alphas`` (k, batch), as ``k * batch`` rows."""
        k = alphas.shape[0]
        return tuple(
            torch.addcmul(
                b.unsqueeze(0),
                alphas.to(x.dtype).view(k, self.batch_size, *[1] * (x.dim() - 1)),
                d.unsqueeze(0),
            ).reshape(k * self.batch_size, *x.shape[1:])
            for x, b, d in zip(self.inputs, self.baselines, self.directions)
        )

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
        check_finite("forward_func's outputs", logits, alphas)
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
            check_finite("forward_func's outputs", logits, alphas[steps])
            grads = tuple(g.view(k, self.batch_size, *g.shape[1:]) for g in grads)
            for g in grads:
                check_finite("gradients of forward_func", g, alphas[steps])
            yield steps, grads, logits

    def rate_of_change(self, grads: Tuple[Tensor, ...]) -> Tensor:
        r"""``dF/dalpha = sum(grad * (x - x'))`` per sample: shape ``(k, batch)``."""
        return sum(
            torch.einsum("kbf,bf->kb", flat_features(g, 2), flat_features(d, 1))
            for g, d in zip(grads, self.directions)
        )

    def _step_chunks(self, n_steps: int) -> Iterator[slice]:
        return row_slices(n_steps, max(1, self.rows // self.batch_size))

    def _expanded_args(self, k: int) -> Any:
        if self.additional_forward_args is None:
            return None
        return _expand_additional_forward_args(self.additional_forward_args, k)


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

    def add(self, grads: Tuple[Tensor, ...], steps: Tuple[Tensor, ...]) -> None:
        r"""Adds ``k`` steps: ``grads`` and ``steps`` ``(k, *shape of the totals)``."""
        for i, (g, dz) in enumerate(zip(grads, steps)):
            if self.lengths is None:
                self.totals[i] += (g * dz).sum(dim=0)
            else:
                self.totals[i] += (g * dz.abs()).sum(dim=0)
                self.lengths[i] += dz.abs().sum(dim=0)

    def result(self) -> Tuple[Tensor, ...]:
        if self.lengths is None:
            return tuple(self.totals)
        return tuple(
            torch.where(n > 0, safe_div(t, n), 0.0)
            for t, n in zip(self.totals, self.lengths)
        )
