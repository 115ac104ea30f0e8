"""Tolerance mode: integrate until the estimated error of the map is small.

On a network :func:`~captum_idg.attr._regions.region_edges` can walk (linear
layers, ReLU-type functions and max pools) within ``n_steps`` regions, the map
is exact: one gradient per linear region. Elsewhere, rounds of a randomized rule
whose spread estimates the map's error (:class:`Tolerance`).
"""

import math
from dataclasses import dataclass, replace
from typing import Callable, List, Optional, Tuple

import torch
from captum._utils.common import safe_div
from torch import Tensor

from captum_idg._warnings import some_examples, warn
from captum_idg.attr._path import flat_features
from captum_idg.attr._path_integral import (
    GROUP,
    Adaptive,
    Integral,
    Known,
    ModelOnPath,
    PathSums,
    RefinementReport,
    Sampler,
    Schedule,
    Spread,
    Weight,
    joined_rows,
)
from captum_idg.attr._regions import NotPiecewiseLinear, Regions, region_edges, region_samples
from captum_idg.attr.schedules import PAIRS, randomized_strata, variance_edges

FIRST_ROUND = 16  # gradient evaluations of the first round of tolerance mode (4 strata)
PROBE = 8  # adaptive sampling's probe points for the strata, where none are given
COVERAGE = 2.0  # the estimate is COVERAGE standard errors (see Tolerance)
ORDERS = (1.0, 3.0)  # the orders of convergence a round size is planned for
MARGIN = 1.25  # a planned round is this much larger than the order predicts
GROWTH = 4  # a round is at most this many times the last
FIRST_ROUND_MARGIN = 8  # the first round stops an example at tolerance / this


@dataclass
class Tolerance:
    r"""
    Integrate each example until its estimated error is at most ``tolerance``,
    with at most ``n_steps`` gradient evaluations.

    Where the sampler is :class:`Adaptive` or
    :class:`~captum_idg.attr._regions.Regions` and the network's regions can
    be walked (:func:`~captum_idg.attr._regions.region_edges`), an example
    crossing at most ``n_steps`` regions gets one gradient per region: exact,
    its estimate the rounding of the sum.

    The others run rounds of a randomized rule (see
    :func:`~captum_idg.attr.schedules.randomized_strata`): ``FIRST_ROUND``
    samples in 4 strata, then twice as many, then as many as the observed
    order of convergence says the tolerance needs (:func:`_next_round`),
    within ``n_steps``; each round is one batched pass over the examples
    still refining. The sampler places the strata (equal ones for a fixed
    rule; for adaptive sampling, strata of equal mass under its density,
    read off a probe of ``PROBE`` points where none are given and the logits
    of all earlier samples), and from the second round on half the mass goes
    where the last round's error came from
    (:func:`~captum_idg.attr.schedules.variance_edges`). Each
    antithetic pair of a stratum is an unbiased estimate of the stratum's
    integral, so the spread of the two pairs gives an unbiased estimate of
    the round's squared error (:class:`Spread`), however rough the
    integrand. The rounds are independent: the result pools them, each
    weighted by the inverse of its squared error (:class:`_Pooled`). The
    error estimate is ``COVERAGE`` standard errors of the pooled map
    relative to its L2 norm (all inputs together; of the rescaled map where
    ``rescale``), at least the samples' completeness error relative to the
    logit's total variation and, from the second round on, the last estimate
    scaled at order 1 in the samples taken; the first round counts it
    ``FIRST_ROUND_MARGIN`` times. An example stops when it is at most
    ``tolerance``. The random shifts come from a generator seeded with
    ``seed``, the same draws for every example: results are reproducible, and
    an example's do not depend on the rest of the batch.
    """

    n_steps: int
    tolerance: float
    rescale: bool = False
    seed: int = 0

    def run(self, model: ModelOnPath, sampler: Sampler, weight: Weight) -> Integral:
        if self.n_steps < FIRST_ROUND:
            raise ValueError(f"n_steps: with tolerance, the most evaluations an example may "
                             f"take, at least {FIRST_ROUND}; got {self.n_steps}")
        batch = model.path.batch_size
        walked = _walk(model, sampler, self.n_steps)
        exact = torch.zeros(batch, dtype=torch.bool, device=model.path.inputs[0].device) \
            if walked is None else walked[1]
        on = lambda index: model if len(index) == batch else model.select(index)  # noqa: E731
        parts = []
        if exact.any():
            index = exact.nonzero().flatten()
            parts.append((index, _on_regions(on(index), walked[0][:, index], weight)))
        if not exact.all():
            index = (~exact).nonzero().flatten()
            parts.append((index, self._rounds(on(index), sampler, weight)))
        merged = _merged(parts, batch)
        converged = merged.error <= self.tolerance
        if not converged.all():
            missed = converged.logical_not().nonzero().flatten().tolist()
            warn(f"tolerance={self.tolerance} not met within n_steps={self.n_steps} for "
                 f"{some_examples(missed, batch)}; the largest estimated error is "
                 f"{float(merged.error.max()):.3g}: pass a larger n_steps")
        report = RefinementReport(merged.evaluations, model.probes.clone(), merged.error,
                                  converged)
        return Integral(merged.sums, merged.known, report)

    def _rounds(self, model: ModelOnPath, sampler: Sampler, weight: Weight) -> "_Part":
        r"""The randomized rounds, on every example of ``model``."""
        if isinstance(sampler, Adaptive) and sampler.n_probe_steps is None:
            sampler = replace(sampler, n_probe_steps=PROBE)
        known = sampler.start(model, FIRST_ROUND).with_endpoints(model)
        start, stop = known.endpoints()
        change = stop - start
        generator = torch.Generator().manual_seed(self.seed)
        batch, like = model.path.batch_size, model.like()
        pooled = _Pooled()
        error = torch.zeros(batch, dtype=torch.float64, device=like["device"])
        own = torch.zeros_like(error)  # the last round's own estimate
        pooled_estimate = torch.zeros_like(error)  # of the rounds so far, pooled
        evaluations = torch.zeros(batch, dtype=torch.long, device=like["device"])
        active = torch.arange(batch, device=like["device"])
        round_model, round_known = model, known
        used, size, previous = 0, FIRST_ROUND, FIRST_ROUND
        last_round: Optional[Tuple[Tensor, Tensor]] = None  # its strata and their errors
        while True:
            shifts = torch.rand(size // GROUP, PAIRS, generator=generator, dtype=torch.float64)
            schedule, sums, spread, edges = _round(round_model, round_known, sampler, weight,
                                                   shifts, last_round)
            variance = spread.variance(sums.attributions, sums.weighted_rate, self.rescale)
            evaluations[active] += size
            used, before = used + size, used
            round_known = round_known.merged(schedule.alphas, sums.logits)
            variation = round_known.variation()
            last, own[active] = own[active], self._estimate(
                sums, variance, change[active], variation).to(own.dtype)
            combined, combined_variance = pooled.add(active, sums, variance)
            last_pooled, pooled_estimate[active] = pooled_estimate[active], self._estimate(
                combined, combined_variance, change[active], variation).to(error.dtype)
            estimate = pooled_estimate[active]
            order = None
            if before:  # a lucky round cannot stop an example: the last estimate, at order 1
                order = _observed_order(last, own[active], previous / size)
                estimate = torch.maximum(estimate, last_pooled * before / used)
            else:  # the first round stops an example only far below the tolerance
                estimate = estimate * FIRST_ROUND_MARGIN
            error[active] = estimate
            refining = estimate > self.tolerance
            left = (self.n_steps - used) // GROUP * GROUP
            size, previous = min(_next_round(size, estimate[refining], self.tolerance,
                                             None if order is None else order[refining]),
                                 left), size
            if not refining.any() or size == 0:
                break
            keep = refining.nonzero().flatten()
            last_round = edges[:, keep], spread.per_stratum()[:, keep]
            round_known, round_model = round_known.select(keep), round_model.select(keep)
            active = active[keep]
        return _Part(pooled.sums(), known, evaluations, error)

    def _estimate(self, sums: PathSums, variance: Tensor, change: Tensor,
                  variation: Tensor) -> Tensor:
        r"""The error estimate of ``sums`` whose map has the estimated squared
        error ``variance``: ``COVERAGE`` standard errors relative to the map's
        norm, at least the completeness error of the samples relative to the
        logit's total ``variation``."""
        norm = sum(flat_features(a, 1).pow(2).sum(dim=1) for a in sums.attributions).sqrt()
        return torch.maximum(_relative(COVERAGE * variance.sqrt(), norm),
                             _relative(sums.rate_integral - change, variation))


class _Pooled:
    r"""The rounds of every example put together, each weighted by the inverse
    of its estimated squared error (the rounds are independent and each is
    unbiased): the pooled sums and their estimated squared error."""

    def __init__(self) -> None:
        self.totals: List[Tensor] = []  # sum_r w_r x_r of the attributions and both rates
        self.precision = torch.zeros(0)  # sum_r w_r, w_r = 1 / (round r's squared error)

    def add(self, index: Tensor, sums: PathSums, variance: Tensor) -> Tuple[PathSums, Tensor]:
        r"""Adds a round of the examples ``index`` (the first round: of all);
        returns their pooled sums and its estimated squared error."""
        parts = [*sums.attributions, sums.rate_integral, sums.weighted_rate]
        if not self.totals:
            self.totals = [torch.zeros_like(p) for p in parts]
            self.precision = torch.zeros_like(variance)
        norm = sum(flat_features(a, 1).pow(2).sum(dim=1) for a in sums.attributions)
        floor = (torch.finfo(sums.rate_integral.dtype).eps ** 2 * norm).to(variance.dtype)
        weight = 1 / torch.maximum(variance, floor.clamp(min=torch.finfo(variance.dtype).tiny))
        for total, part in zip(self.totals, parts):
            total[index] += part * _per_row(weight, part)
        self.precision[index] += weight
        return self.sums(index), 1 / self.precision[index]

    def sums(self, index: Optional[Tensor] = None) -> PathSums:
        r"""The pooled sums of the examples ``index`` (None: of all)."""
        precision = self.precision if index is None else self.precision[index]
        pooled = [(t if index is None else t[index]) / _per_row(precision, t)
                  for t in self.totals]
        return PathSums(tuple(pooled[:-2]), pooled[-2], pooled[-1])


def _per_row(values: Tensor, like: Tensor) -> Tensor:
    r"""``values`` ``(batch,)`` shaped to scale the rows of ``like``."""
    return values.view(-1, *[1] * (like.dim() - 1)).to(like.dtype)


def _round(model: ModelOnPath, known: Known, sampler: Sampler, weight: Weight, shifts: Tensor,
           last_round: Optional[Tuple[Tensor, Tensor]]
           ) -> Tuple[Schedule, PathSums, "Spread", Tensor]:
    r"""One round of the randomized rule with ``shifts`` ``(strata, PAIRS)``: its
    schedule, sums, spread and strata edges. The sampler places the strata; after
    a first round, half the mass goes where ``last_round`` (its strata and their
    errors) says the error came from."""
    strata = shifts.shape[0]
    base = sampler.strata(model, known, strata)
    edges = base if last_round is None else variance_edges(base, *last_round, strata)
    schedule = Schedule(*(t.to(**model.like()) for t in randomized_strata(edges, shifts)))
    spread = Spread(model.path.directions if model.multiply_by_inputs else None)
    return schedule, model.sums(schedule, weight, spread), spread, edges


def _observed_order(before: Tensor, after: Tensor, ratio: float) -> Tensor:
    r"""The order ``p`` of ``error ~ n^-p`` seen between two rounds whose sizes
    have ``ratio`` (< 1), within ``ORDERS`` (the lowest where it is unclear)."""
    seen = (before / after).log() / -math.log(ratio)
    seen = torch.where(torch.isfinite(seen), seen, ORDERS[0])
    return seen.clamp(*ORDERS)


def _next_round(size: int, errors: Tensor, tolerance: float, order: Optional[Tensor]) -> int:
    r"""The next round's size: as many samples as the examples still refining
    need to reach ``tolerance`` (times ``MARGIN``) if their errors fall as
    ``n^-order``, from twice to ``GROWTH`` times ``size`` (twice where no
    ``order`` was seen yet)."""
    if errors.numel() == 0 or order is None:
        return 2 * size
    needed = size * ((errors / tolerance) ** (1 / order)).max().item() * MARGIN
    return int(min(max(needed, 2 * size), GROWTH * size)) // GROUP * GROUP


def _relative(difference: Tensor, scale: Tensor) -> Tensor:
    r"""``|difference| / |scale|``: 0 where both are 0, inf where only ``scale`` is."""
    gap, scale = difference.abs(), scale.abs()
    return torch.where(scale > 0, safe_div(gap, scale),
                       torch.where(gap > 0, float("inf"), 0.0))




@dataclass
class _Part:
    r"""Tolerance mode's result on some examples: their sums, what is known of
    the logit (both ends included), gradient evaluations and estimated error."""

    sums: PathSums
    known: Known
    evaluations: Tensor
    error: Tensor


def _merged(parts: List[Tuple[Tensor, _Part]], batch: int) -> _Part:
    r"""The parts, each on the examples ``index``, as one part of ``batch``
    examples; a part of them all as it is (a saturation cut's end included),
    else with ``F`` at both ends of every path (the parts' paths end at 1)."""
    if len(parts) == 1 and len(parts[0][0]) == batch:
        return parts[0][1]

    def whole(pick: Callable[[_Part], Tensor]) -> Tensor:
        return joined_rows([(index, pick(part)) for index, part in parts], batch)

    sums = PathSums.joined([(index, part.sums) for index, part in parts], batch)
    ends = whole(lambda p: torch.stack(p.known.endpoints(), dim=1))  # (batch, 2)
    grid = torch.tensor([[0.0], [1.0]], dtype=parts[0][1].known.grid.dtype,
                        device=ends.device).expand(2, batch)
    return _Part(sums, Known(grid, ends.T.contiguous()), whole(lambda p: p.evaluations),
                 whole(lambda p: p.error))


def _walk(model: ModelOnPath, sampler: Sampler, most: int) -> Optional[Tuple[Tensor, Tensor]]:
    r"""The linear regions of the paths, and which examples have at most ``most``
    (see :func:`~captum_idg.attr._regions.region_edges`), where the sampler is
    :class:`~captum_idg.attr._regions.Regions` or :class:`Adaptive` and the
    network can be walked (None: it cannot)."""
    if isinstance(sampler, Regions):
        return region_edges(model, most)
    if isinstance(sampler, Adaptive):
        try:
            return region_edges(model, most)
        except NotPiecewiseLinear:
            return None
    return None


def _on_regions(model: ModelOnPath, edges: Tensor, weight: Weight) -> _Part:
    r"""The exact integral on the linear regions between ``edges`` ``(R + 1,
    batch)``: one sample per region, as many as the example with most regions
    has. Its estimated error is the rounding of that many terms, or the
    completeness error of the samples relative to the change of the logit,
    whichever is larger (they are exact, so that is rounding too)."""
    alphas, weights = region_samples(edges)
    schedule = Schedule(alphas.to(**model.like()), weights.to(**model.like()))
    sums = model.sums(schedule, weight)
    known = Known().with_endpoints(model)
    start, end = known.endpoints()
    rounding = torch.finfo(model.path.schedule_dtype).eps * len(alphas)
    scale = torch.maximum(sums.rate_integral.abs(), (end - start).abs())
    error = torch.maximum(_relative(sums.rate_integral - (end - start), scale).to(torch.float64),
                          torch.tensor(rounding, dtype=torch.float64))
    evaluations = torch.full_like(start, len(alphas), dtype=torch.long)
    return _Part(sums, known, evaluations, error)
