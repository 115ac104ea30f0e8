"""The template every straight-line path method is: ``attribute`` written once.

A method of the form ``(x - x') * sum_k c_k grad F(z(a_k))`` on the path
``z(a) = x' + a (x - x')`` only says where to sample (:meth:`_schedule`) and
what the coefficient ``c_k`` of each sample is (:meth:`_coefficients`);
:meth:`PathIntegralAttribution._attribute_along_path` does the rest: check,
schedule, integrate, refine to a tolerance, rescale, format, delta.
"""

import warnings
from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple, Union

import torch
from captum._utils.common import _format_output, _is_tuple, safe_div
from captum._utils.typing import BaselineType, TargetType, TensorOrTupleOfTensorsGeneric
from torch import Tensor

from captum_idg.attr._base import Attribution
from captum_idg.attr._path import StraightLinePath
from captum_idg.attr._validation import (
    check_choice,
    check_count,
    check_real,
    check_steps_fit,
    warn_if_training,
)
from captum_idg.attr.schedules import (
    RIEMANN_METHODS,
    adaptive_schedule,
    default_probe_steps,
    refinement_points,
    riemann_schedule,
)

PROBE_ROUNDS = 2  # probe refinement rounds of adaptive sampling (see refinement_points)
FIRST_ROUND = 8  # gradient evaluations of the first round of tolerance mode


@dataclass
class Schedule:
    r"""Where a method samples: ``alphas`` and ``weights`` ``(n_steps, batch)``;
    the probe ``grid`` and its ``logits`` ``(M, batch)`` where one was run;
    the upper limit ``end`` ``(batch,)`` of the integral where it is not 1."""

    method: str
    alphas: Tensor
    weights: Tensor
    grid: Optional[Tensor] = None
    logits: Optional[Tensor] = None
    end: Optional[Tensor] = None


@dataclass
class PathSums:
    r"""What one pass over a schedule gives, per example: ``sum_k c_k g_k``
    (not yet multiplied by ``x - x'``), ``sum_k w_k dF/da(a_k)``,
    ``sum_k c_k dF/da(a_k)`` and the logits at the samples ``(n_steps, batch)``
    (None where the sums of several rounds were put together)."""

    attributions: Tuple[Tensor, ...]
    rate_integral: Tensor
    weighted_rate: Tensor
    logits: Optional[Tensor]


@dataclass
class RefinementReport:
    r"""
    What tolerance mode did, per example (all ``(batch,)``):
    ``evaluations``, the gradient evaluations (forward and backward);
    ``probe_evaluations``, the forward passes without grad;
    ``estimated_error``, ``|delta| / total variation of F`` on the path;
    ``converged``, whether that estimate met the tolerance.
    """

    evaluations: Tensor
    probe_evaluations: Tensor
    estimated_error: Tensor
    converged: Tensor


class PathIntegralAttribution(Attribution):
    r"""
    Base of attributions of the form ``(x - x') * sum_k c_k grad F(z(a_k))``
    along the straight path ``z(a) = x' + a (x - x')``. A subclass picks the
    schedule ``(a_k, w_k)`` and says what the coefficient ``c_k`` of a sample
    is; ``methods`` lists the schedules its ``method`` argument takes.
    Gradients come from one backward pass of the summed outputs per chunk
    (:func:`~captum_idg.attr._path.summed_gradients`).

    After a call with ``tolerance``, :attr:`refinement` holds a
    :class:`RefinementReport`; after any other call it is None.
    """

    methods: Tuple[str, ...] = RIEMANN_METHODS + ("adaptive",)

    def __init__(
        self, forward_func: Callable[..., Tensor], multiply_by_inputs: bool = True
    ) -> None:
        r"""
        Args:

            forward_func (Callable): The forward function of the model or any
                    modification of it. Its target output is differentiated
                    as it is (for IDG, pass logits, not probabilities, to
                    follow the paper).
            multiply_by_inputs (bool, optional): Indicates whether to factor
                    model inputs' multiplier in the final attribution scores
                    (global attribution). If True, attributions are multiplied
                    by (inputs - baselines), as in IG. Default: True
        """
        Attribution.__init__(self, forward_func, multiply_by_inputs)
        self.refinement: Optional[RefinementReport] = None

    # attributions that sum to F(x) - F(x'): the delta is Captum's
    # compute_convergence_delta of them, as Captum's IG returns it
    complete = False

    def has_convergence_delta(self) -> bool:
        return True

    def _attribute_along_path(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        baselines: BaselineType,
        target: TargetType,
        additional_forward_args: Any,
        n_steps: int,
        method: str,
        internal_batch_size: Optional[int],
        return_convergence_delta: bool,
        n_probe_steps: Optional[int] = None,
        rescale: bool = False,
        tolerance: Optional[float] = None,
        **schedule_options: Any,
    ) -> Union[TensorOrTupleOfTensorsGeneric, Tuple[TensorOrTupleOfTensorsGeneric, Tensor]]:
        r"""The body of every subclass's ``attribute``: see their docstrings."""
        warn_if_training(self.forward_func)
        path = StraightLinePath.from_arguments(
            inputs, baselines, target, additional_forward_args, n_steps, internal_batch_size
        )
        check_choice("method", method, self.methods)
        if n_probe_steps is not None:
            check_count("n_probe_steps", n_probe_steps, 2)
            check_steps_fit(path.inputs, n_probe_steps, "n_probe_steps")
        self.refinement = None
        if tolerance is None:
            schedule = self._schedule(path, method, n_steps, n_probe_steps, **schedule_options)
            sums = self._integrate(path, schedule)
            probe_logits, end_alpha = schedule.logits, schedule.end
        else:
            check_real("tolerance", tolerance, 0.0, low_open=True)
            if method != "adaptive":
                raise ValueError(f"tolerance needs method='adaptive', got method={method!r}")
            probe_logits, sums = self._refine(path, n_steps, n_probe_steps, tolerance)
            end_alpha = None
        attributions = sums.attributions
        unseen = sums.weighted_rate == 0
        if rescale or return_convergence_delta or unseen.any():
            start, end = self._endpoint_logits(path, probe_logits, end_alpha)
            _warn_unseen(unseen & (end != start), rescale)
        if rescale:
            attributions = self._rescaled(attributions, sums.weighted_rate, end - start)
        if self.multiplies_by_inputs:
            attributions = tuple(a * d for a, d in zip(attributions, path.directions))
        formatted = _format_output(_is_tuple(inputs), attributions)
        if return_convergence_delta and self.complete:  # Captum IG's delta, computed as it does
            return formatted, self.compute_convergence_delta(
                attributions, path.baselines, path.inputs, target, additional_forward_args)
        if return_convergence_delta:
            return formatted, sums.rate_integral - (end - start)
        return formatted

    def _schedule(
        self, path: StraightLinePath, method: str, n_steps: int, n_probe_steps: Optional[int]
    ) -> Schedule:
        r"""The schedule of ``method``: a fixed rule, or adaptive sampling on
        a probe of ``n_probe_steps`` points (refined where the logit jumps)."""
        x = path.inputs[0]
        if method in RIEMANN_METHODS:
            alphas, weights = riemann_schedule(method, n_steps, path.batch_size, x.dtype, x.device)
            return Schedule(method, alphas, weights)
        grid, logits = self._probe(path, n_probe_steps or default_probe_steps(n_steps), n_steps)
        alphas, weights = adaptive_schedule(grid, logits, n_steps)
        return Schedule(method, alphas, weights, grid, logits)

    def _probe(
        self, path: StraightLinePath, n_probe_steps: int, n_steps: Optional[int] = None
    ) -> Tuple[Tensor, Tensor]:
        r"""
        Forward-only logits on ``linspace(0, 1, n_probe_steps)``, each
        ``(M, batch)``. With ``n_steps``, up to ``PROBE_ROUNDS`` rounds of
        :func:`~captum_idg.attr.schedules.refinement_points` follow, one
        batched pass each; the grids come back sorted per example.
        """
        x = path.inputs[0]
        grid = torch.linspace(0, 1, n_probe_steps, dtype=x.dtype, device=x.device)
        grid = grid[:, None].expand(-1, path.batch_size)
        logits = path.logits(self.forward_func, grid)
        for _ in range(PROBE_ROUNDS if n_steps is not None else 0):
            new = refinement_points(grid, logits, n_steps)
            if new is None:
                break
            new = new.to(x.dtype)
            grid, logits = _merged(grid, logits, new, path.logits(self.forward_func, new))
        return grid, logits

    def _coefficients(
        self, schedule: Schedule, steps: slice, rate: Tensor, slope: Tensor
    ) -> Tensor:
        r"""
        The multiplier of each sample's gradient, ``(k, batch)``, for the
        samples ``steps`` of ``schedule``; ``rate`` is ``dF/dalpha`` there
        (exact, from the gradient) and ``slope`` its backward finite
        difference from consecutive samples' logits (0 for the first).
        """
        return schedule.weights[steps]

    def _integrate(self, path: StraightLinePath, schedule: Schedule) -> PathSums:
        r"""Runs the gradient passes of ``schedule`` and sums them."""
        alphas = schedule.alphas
        totals = [torch.zeros_like(x) for x in path.inputs]
        rate_integral = torch.zeros_like(alphas[0])
        weighted_rate = torch.zeros_like(alphas[0])
        logits = torch.zeros_like(alphas)
        for steps, grads, chunk_logits in path.gradients(
            self.gradient_func, self.forward_func, alphas
        ):
            logits[steps] = chunk_logits
            rate = path.rate_of_change(grads)
            coefficients = self._coefficients(
                schedule, steps, rate, _backward_slope(alphas, logits, steps)
            )
            for total, grad in zip(totals, grads):
                total += torch.einsum("kb,kb...->b...", coefficients, grad)
            rate_integral += (schedule.weights[steps] * rate).sum(dim=0)
            weighted_rate += (coefficients * rate).sum(dim=0)
        return PathSums(tuple(totals), rate_integral, weighted_rate, logits)

    def _refine(
        self, path: StraightLinePath, n_steps: int, n_probe_steps: Optional[int], tolerance: float
    ) -> Tuple[Tensor, PathSums]:
        r"""
        Tolerance mode. Rounds of adaptive sampling, each one batched pass
        over the examples still refining: ``FIRST_ROUND`` samples, then twice
        as many as the round before (at most what is left of ``n_steps``).
        Each round builds its schedule from every logit known so far, the
        probe's and those of all earlier samples, so it is placed better than
        the last, and replaces the last round's estimate (no point is
        evaluated twice). From the second round on, an example stops when
        both its round's ``|delta|`` (the exact error of the quadrature of
        ``dF/da``) relative to the total variation of ``F`` along the path
        (``|F(x) - F(x')|`` where ``F`` is monotone), and the relative change
        of ``sum_k c_k dF/da(a_k)`` since the last round (``integral (dF/da)^2``
        for IDG), are at most ``tolerance``. The second is an estimate of the
        last round's error, so it errs on the safe side; the first alone can
        be met by luck with a few samples. Returns the probe logits and the sums.
        """
        first = min(FIRST_ROUND, n_steps)
        probe_grid, probe_logits = self._probe(
            path, n_probe_steps or default_probe_steps(first), first)
        grid, logits = probe_grid, probe_logits
        change = logits[-1] - logits[0]
        variation = logits.diff(dim=0).abs().sum(dim=0)
        results = [torch.zeros_like(x) for x in path.inputs]
        rate_integral, weighted_rate = torch.zeros_like(change), torch.zeros_like(change)
        error = torch.zeros_like(change)
        evaluations = torch.zeros(path.batch_size, dtype=torch.long, device=change.device)
        active = torch.arange(path.batch_size, device=change.device)
        used, size = 0, first
        while True:
            alphas, weights = adaptive_schedule(grid, logits, size)
            sums = self._integrate(path.select(active), Schedule("adaptive", alphas, weights))
            evaluations[active] += size
            used += size
            error[active] = _relative(sums.rate_integral - change[active], variation[active])
            if used > size:  # from the second round on, the change since the last counts too
                error[active] = torch.maximum(error[active], _relative(
                    sums.weighted_rate - weighted_rate[active], sums.weighted_rate))
            for result, attribution in zip(results, sums.attributions):
                result[active] = attribution
            rate_integral[active], weighted_rate[active] = sums.rate_integral, sums.weighted_rate
            refining = (error[active] > tolerance) | (used == size)  # always two rounds
            size, previous = min(2 * size, n_steps - used), size
            if not refining.any() or size <= previous:
                break
            grid, logits = _merged(grid, logits, alphas, sums.logits)
            grid, logits, active = grid[:, refining], logits[:, refining], active[refining]
        converged = (error <= tolerance) & (evaluations > first)
        self.refinement = RefinementReport(
            evaluations, torch.full_like(evaluations, probe_grid.shape[0]), error, converged)
        if not converged.all():
            missed = converged.logical_not().nonzero().flatten().tolist()
            warnings.warn(
                f"tolerance={tolerance} not met within n_steps={n_steps} for examples "
                f"{missed}: estimated errors {[float(f'{error[i]:.3g}') for i in missed]}; "
                "pass a larger n_steps",
                UserWarning,
                stacklevel=4,
            )
        return probe_logits, PathSums(tuple(results), rate_integral, weighted_rate, None)

    def _endpoint_logits(
        self, path: StraightLinePath, probe_logits: Optional[Tensor], end: Optional[Tensor]
    ) -> Tuple[Tensor, Tensor]:
        r"""``(F(x'), F(z(end)))`` per example (``end`` None: 1), read off the
        probe logits (on a grid from 0 to 1) where there are some."""
        if probe_logits is not None and end is None:
            return probe_logits[0], probe_logits[-1]
        x = path.inputs[0]
        end = torch.ones(path.batch_size, dtype=x.dtype, device=x.device) if end is None else end
        both = path.logits(self.forward_func, torch.stack([torch.zeros_like(end), end]))
        return both[0], both[1]

    @staticmethod
    def _rescaled(
        attributions: Tuple[Tensor, ...], weighted_rate: Tensor, change: Tensor
    ) -> Tuple[Tensor, ...]:
        r"""Scales each example so that its attributions, multiplied by
        ``x - x'``, sum to ``change`` (0 where the samples saw no change)."""
        seen = weighted_rate != 0
        scale = torch.where(seen, safe_div(change, weighted_rate), 0.0)
        return tuple(a * scale.view(-1, *[1] * (a.dim() - 1)) for a in attributions)


def _warn_unseen(unseen: Tensor, rescale: bool) -> None:
    r"""Warns about the examples ``unseen`` whose samples saw no change of the
    logit although ``F(x) - F(x')`` is not 0."""
    missed = unseen.nonzero().flatten().tolist()
    if missed:
        warnings.warn(
            f"the samples of examples {missed} saw no change of the target output although "
            "F(x) - F(x') is not 0: it changes between samples (a step, or inputs and "
            f"baselines so large that the model saturates); their attributions are 0"
            f"{' after rescale' if rescale else ''}. Pass a larger n_steps, or check the "
            "scale of inputs and baselines.",
            UserWarning,
            stacklevel=4,
        )


def _relative(difference: Tensor, scale: Tensor) -> Tensor:
    r"""``|difference| / |scale|``: 0 where both are 0, inf where only ``scale`` is."""
    gap, scale = difference.abs(), scale.abs()
    return torch.where(scale > 0, safe_div(gap, scale),
                       torch.where(gap > 0, float("inf"), 0.0))


def _merged(grid: Tensor, logits: Tensor, new: Tensor, new_logits: Tensor) -> Tuple[Tensor, Tensor]:
    r"""Probe points and logits with ``new`` ones added, sorted per example."""
    grid, order = torch.cat([grid, new.to(grid.dtype)]).sort(dim=0)
    return grid, torch.cat([logits, new_logits.to(logits.dtype)]).gather(0, order)


def _backward_slope(alphas: Tensor, logits: Tensor, steps: slice) -> Tensor:
    r"""``(F(a_k) - F(a_{k-1})) / (a_k - a_{k-1})`` for the samples ``steps``
    (``logits`` filled up to ``steps.stop``), 0 for the first sample."""
    start = max(steps.start, 1)
    slope = torch.zeros_like(alphas[steps])
    rise = logits[start:steps.stop] - logits[start - 1:steps.stop - 1]
    run = alphas[start:steps.stop] - alphas[start - 1:steps.stop - 1]
    slope[start - steps.start:] = torch.where(run != 0, safe_div(rise, run), 0.0)
    return slope
