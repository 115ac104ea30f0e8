"""Guided Integrated Gradients (Kapishnikov et al., CVPR 2021), batched in torch."""

import math
from typing import Callable, List, Optional, Tuple

import torch
from captum._utils.common import (
    _format_output,
    _is_tuple,
    safe_div,
)
from captum._utils.typing import BaselineType, TargetType, TensorOrTupleOfTensorsGeneric
from captum.log import log_usage
from torch import Tensor

from captum_idg._batching import row_slices, take_examples, take_forward_args
from captum_idg._validation import (
    MAX_SEQUENTIAL_STEPS,
    check_finite,
    check_real,
    checked_forward,
)
from captum_idg.attr._base import Attribution
from captum_idg.attr._docs import documented
from captum_idg.attr._intake import take_arguments
from captum_idg.attr._path import StepSums, StraightLinePath, warn_no_change
from captum_idg.attr._path_integral import ModelOnPath
from captum_idg.attr._references import several_references

EPSILON = 1e-9


class GuidedIntegratedGradients(Attribution):
    r"""
    Guided IG follows an adaptive path from the baseline to the input instead
    of the straight line. At each of ``n_steps`` steps it moves the features
    with the smallest absolute gradient (``fraction`` of the features, by a
    per-example quantile) towards the input, until the L1 distance to the
    input has shrunk by ``1 / n_steps`` of the total. No feature may run ahead
    of or fall behind the straight line by more than ``max_dist`` (in units of
    the path, ``max_dist=0`` is straight-line IG with the left Riemann rule,
    ``max_dist=1`` is unbounded). The attribution accumulates
    ``gradient * change`` of every feature along the way.

    This follows PAIR's ``saliency.core.GuidedIG`` step for step (and matches
    it to float64 rounding), but runs a batch at once, every example with its
    own quantiles and L1 budget, on the device of the input. Tuple inputs are
    treated as one feature vector per example.

    More details: https://arxiv.org/abs/2106.09788
    """

    def __init__(
        self, forward_func: Callable[..., Tensor], multiply_by_inputs: bool = True
    ) -> None:
        r"""
        Args:

            forward_func (Callable): The forward function of the model or any
                    modification of it.
            multiply_by_inputs (bool, optional): True: ``sum gradient * change``
                    along the path (global, like IG's). False: the mean
                    gradient along the path, weighted by how far each feature
                    moves at each step (local; times ``x - x'`` it gives the
                    global attributions, as IG's does). Default: True
        """
        Attribution.__init__(self, forward_func, multiply_by_inputs)

    @log_usage()
    @documented
    @several_references
    def attribute(  # type: ignore[override]
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        baselines: BaselineType = None,
        target: TargetType = None,
        additional_forward_args: Optional[object] = None,
        n_steps: int = 200,
        fraction: float = 0.25,
        max_dist: float = 0.02,
        internal_batch_size: Optional[int] = None,
    ) -> TensorOrTupleOfTensorsGeneric:
        r"""
        Args:

            {inputs}
            {baselines}
            {target}
            {additional_forward_args}
            n_steps (int, optional): Number of steps (gradient evaluations),
                        at least 1. Default: 200 (PAIR's default; the IDG paper
                        used 50)
            fraction (float, optional): Share of the features, in ``(0, 1]``,
                        moved at each inner iteration. Default: 0.25 (the IDG
                        paper used 0.5)
            max_dist (float, optional): Largest deviation from the straight
                        line, in ``[0, 1]``. Default: 0.02 (the IDG paper used
                        1.0)
            internal_batch_size (int, optional): Most examples per forward
                        pass; the path is sequential, so a pass holds one step
                        of at most this many examples. Default: None

        Returns:
            **attributions** (*Tensor* or *tuple[Tensor, ...]*) of the shape
            of ``inputs``.
        """
        arguments = take_arguments(
            self.forward_func, inputs, baselines, target, additional_forward_args,
            internal_batch_size, n_steps, minimum_steps=1, maximum_steps=MAX_SEQUENTIAL_STEPS)
        check_real("fraction", fraction, 0.0, 1.0, low_open=True)
        check_real("max_dist", max_dist, 0.0, 1.0)
        formatted_inputs, formatted_baselines = arguments.inputs, arguments.baselines
        batch_size, args = arguments.batch_size, arguments.additional_forward_args
        shapes = [x.shape for x in formatted_inputs]
        dtype = formatted_inputs[0].dtype
        # the path's bookkeeping runs in float64, as PAIR's does; the model
        # sees points in the inputs' dtype
        x_input = _flatten(formatted_inputs).double()
        x_baseline = _flatten(formatted_baselines).double()
        attributions = torch.zeros_like(x_input)
        seen = torch.zeros(batch_size, dtype=torch.bool, device=x_input.device)
        for rows in row_slices(batch_size, internal_batch_size):

            def grad_func(x: Tensor, step: int, rows: slice = rows) -> Tensor:
                return self._gradient(x, shapes, dtype, take_examples(target, rows, batch_size),
                                      take_forward_args(args, rows, batch_size), step / n_steps)

            sums = StepSums((x_input[rows],), self.multiplies_by_inputs)
            guided_ig_path(x_input[rows], x_baseline[rows], grad_func, n_steps, fraction,
                           max_dist, sums)
            attributions[rows], seen[rows] = sums.result()[0], sums.seen
        if not seen.all():  # did the output change on the paths whose samples saw none?
            unseen = (~seen).nonzero().flatten()
            model = ModelOnPath.of(self, StraightLinePath(arguments.inputs, arguments.baselines),
                                   arguments)
            ends = model.select(unseen).logits(
                torch.tensor([[0.0], [1.0]], dtype=dtype).expand(2, len(unseen)))
            warn_no_change(torch.zeros_like(seen).index_put((unseen,), ends[0] != ends[1]))
        attributions = attributions.to(dtype)
        return _format_output(_is_tuple(inputs), _unflatten(attributions, shapes))

    def _gradient(
        self, x: Tensor, shapes: list, dtype: torch.dtype, target: TargetType, args: object,
        progress: float,
    ) -> Tensor:
        outputs: List[Tensor] = []
        grads = self.gradient_func(
            checked_forward(self.forward_func, target, outputs),
            tuple(t.to(dtype).requires_grad_() for t in _unflatten(x, shapes)),
            target,
            args,
        )
        flat = _flatten(grads).detach().double()
        where = torch.full((1, len(x)), progress)
        for name, values in (("outputs", outputs[-1].detach()), ("gradients", flat)):
            check_finite(f"forward_func's {name}", values[None], where, "on the guided path",
                         "progress")
        return flat


def guided_ig_path(
    x_input: Tensor,
    x_baseline: Tensor,
    grad_func: Callable[[Tensor, int], Tensor],
    n_steps: int,
    fraction: float,
    max_dist: float,
    sums: StepSums,
) -> None:
    r"""
    Guided IG on flat ``(batch, features)`` tensors; ``grad_func(x, step)``
    maps points of that shape to the target's gradients there, and every
    move of the path is added to ``sums``. PAIR's algorithm, with the inner
    loop run until every example of the batch has met its L1 target.
    """
    x = x_baseline.clone()
    total_diff = x_input - x_baseline
    l1_total = total_diff.abs().sum(dim=1)
    n_features = x_input.shape[1]
    kth = math.floor(fraction * (n_features - 1)) + 1  # numpy's 'lower' quantile
    for step in range(n_steps):
        grad_actual = grad_func(x, step)
        grad = grad_actual.clone()
        alpha = (step + 1.0) / n_steps
        alpha_min, alpha_max = max(alpha - max_dist, 0.0), min(alpha + max_dist, 1.0)
        x_min = x_baseline + total_diff * alpha_min
        x_max = x_baseline + total_diff * alpha_max
        l1_target = l1_total * (1 - (step + 1) / n_steps)
        active = l1_total > 0
        while active.any():
            x_old = x.clone()
            x_alpha = torch.where(total_diff != 0, (x - x_baseline) / total_diff, alpha_max)
            behind = (x_alpha < alpha_min) & active[:, None]
            x = torch.where(behind, x_min, x)
            l1_current = (x - x_input).abs().sum(dim=1)
            moving = active & ~_isclose(l1_target, l1_current)
            if moving.any():  # else the clamp alone met every L1 target
                grad = torch.where(x == x_max, torch.inf, grad)
                threshold = grad.abs().kthvalue(kth, dim=1, keepdim=True).values
                selected = (grad.abs() <= threshold) & (grad != torch.inf) & moving[:, None]
                l1_s = ((x - x_max).abs() * selected).sum(dim=1)
                gamma = torch.where(l1_s > 0, safe_div(l1_current - l1_target, l1_s), torch.inf)
                partial = (gamma <= 1.0)[:, None]
                moved = torch.where(partial, x + (x_max - x) * gamma[:, None], x_max)
                x = torch.where(selected, moved, x)
                moving &= (gamma > 1.0) & (l1_s > 0)  # PAIR would spin forever at l1_s = 0
            sums.add((grad_actual[None],), ((x - x_old)[None],))
            active = moving


def _isclose(a: Tensor, b: Tensor) -> Tensor:
    """``math.isclose(a, b, rel_tol=EPSILON, abs_tol=EPSILON)`` elementwise."""
    return (a - b).abs() <= torch.maximum(
        EPSILON * torch.maximum(a.abs(), b.abs()), torch.full_like(a, EPSILON)
    )


def _flatten(tensors: Tuple[Tensor, ...]) -> Tensor:
    return torch.cat([t.reshape(t.shape[0], -1) for t in tensors], dim=1)


def _unflatten(flat: Tensor, shapes: list) -> Tuple[Tensor, ...]:
    sizes = [math.prod(s[1:]) for s in shapes]
    return tuple(
        part.reshape(flat.shape[0], *s[1:])
        for part, s in zip(flat.split(sizes, dim=1), shapes)
    )
