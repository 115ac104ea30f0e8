"""Where to sample a path integral: fixed rules, adaptive panels, the authors' schedule.

Pure tensor functions, no model. A schedule is a pair ``(alphas, weights)`` of
shape ``(n_steps, batch)``: column ``b`` holds the sample points of example
``b`` in ``[0, 1]`` and their quadrature weights, which sum to 1 (the
authors' ``reference`` schedule excepted, see :func:`reference_schedule`).

Adaptive sampling reads the target logit ``F`` on a probe grid (forward passes
without grad) and turns it into a schedule in three steps:

1. a sampling density on ``[0, 1]``: ``|dF/da| ** power`` per probe interval,
   graded so that neighbouring intervals differ by at most a factor
   ``grading``, mixed with a uniform share ``uniform_mix``;
2. panels: the ``n_steps // nodes_per_panel`` cells of equal mass under that
   density, so panels are narrow where the logit moves and wide where it is
   flat (saturated); where the logit moves evenly (the density is nowhere
   above twice its mean), one panel, Captum's Gauss-Legendre rule (up to
   128 steps; equal panels beyond);
3. a Gauss-Legendre rule inside every panel.

The integrand is smooth inside a panel even where the density is not, so each
panel integrates at order ``2 * nodes_per_panel``. On a piecewise-linear
network it is piecewise constant instead, and where its logit moves evenly
:func:`switch_cells` places midpoint cells by the switches of its units, and
:func:`refined_gaps` cuts the gaps where the integrand jumped, to be summed with
:func:`nearest_sample_weights`.
``benchmarks/integrator_accuracy.py`` measured the defaults against dense
float64 references (docs/integrator.md).
"""

import math
from functools import lru_cache
from typing import Optional, Tuple

import numpy as np
import torch
from captum._utils.common import safe_div
from captum.attr._utils.approximation_methods import approximation_parameters
from torch import Tensor

CAPTUM_RIEMANN = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")
RIEMANN_METHODS = CAPTUM_RIEMANN + ("trapezoid", "gausslegendre")
UNIFORM_MIX = 0.2
POWER = 0.5
GRADING = 2.0
EVEN_PEAK = 2.0  # the density never above twice its mean: one Gauss-Legendre panel
SWITCH_POWER = 1 / 3  # piecewise-linear networks: density (switch rate * |dF/da|) ** this
SWITCH_EVEN_PEAK = 1.5  # ... where the density is never above this times its mean
REFINE_FIRST = 1 / 3  # ... the share of the gradients placed by the switches, then
REFINE_ROUNDS = 4  # ... rounds that subdivide the gaps where the integrand jumped
REFINE_MIN_STEPS = 32  # ... where at least this many gradients are placed
REFINE_MAX_SWITCHES = 100  # ... and the probe saw at most this many switches per gradient
MAX_SINGLE_PANEL = 128  # beyond this, equal panels instead (the nodes cost O(n^3) to find)
MIN_PROBE_STEPS = 6
PROBE_DIVISOR = 8  # default probe: n_steps // PROBE_DIVISOR points, at least MIN_PROBE_STEPS
PROBE_COST = 1 / 2  # a forward pass without grad, in forward and backward passes (measured)
REFINE_POINTS = 3  # probe points added inside an interval that is refined
MAX_REFINED = 4  # intervals refined per example and round
PROBE_ROUNDS = 3  # rounds of refinement_points before adaptive panels are placed
STEEP = 8.0  # a narrow jump: slope ratio to a neighbour (see refinement_points)
PAIRS = 2  # antithetic pairs per stratum of a randomized rule (see randomized_strata)


def default_probe_steps(n_steps: int) -> int:
    r"""
    Probe points of adaptive sampling when none are given: ``n_steps // 8``,
    at least 6 and at most ``n_steps``. Their cost is taken out of the
    gradient evaluations (see :func:`gradient_steps`).
    """
    return min(n_steps, max(MIN_PROBE_STEPS, n_steps // PROBE_DIVISOR))


def gradient_steps(n_steps: int, probe_steps: int) -> int:
    r"""
    The gradient evaluations adaptive sampling places when its probe had
    ``probe_steps`` points: ``n_steps`` less the probe's cost
    (``ceil(probe_steps * PROBE_COST)``, a forward pass without grad costing
    about half a forward and backward: the backward pass of an input
    gradient costs about one forward), at least 1. So a call costs what
    Captum IG's does at the same ``n_steps`` (the refinement rounds' few
    points aside): 13 gradients and 6 probe points at 16 steps, 47 and 6
    at 50.
    """
    return max(1, n_steps - math.ceil(probe_steps * PROBE_COST))


def default_nodes_per_panel(n_steps: int) -> int:
    r"""
    Gauss-Legendre nodes per adaptive panel: ``round(sqrt(n_steps)) - 1``,
    from 2 to 8 (2 at 8 steps, 3 at 16, 5 at 32, 6 at 50, 8 from 72). More
    samples buy both narrower panels (for sharp saturation) and a higher
    order inside each (for smooth paths, where Gauss-Legendre excels).
    """
    return max(2, min(8, round(n_steps**0.5) - 1))


def riemann_schedule(
    method: str,
    n_steps: int,
    batch_size: int,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> Tuple[Tensor, Tensor]:
    r"""
    The fixed rule ``method``, the same for every example: Captum's
    ``riemann_*`` rules exactly as Captum's ``IntegratedGradients`` samples and
    weights them (its ``riemann_trapezoid`` weights sum to ``(n - 1) / n``),
    ``trapezoid``, the trapezoid rule with exact weights, or ``gausslegendre``.

    Args:
        method (str): ``riemann_left``, ``riemann_right``, ``riemann_middle``,
                    ``riemann_trapezoid``, ``trapezoid`` or ``gausslegendre``.
        n_steps (int): Number of sample points, at least 2.
        batch_size (int): Number of examples (columns).

    Returns:
        ``(alphas, weights)``, each of shape ``(n_steps, batch_size)``.
    """
    if method in CAPTUM_RIEMANN:
        step_sizes, alpha_points = approximation_parameters(method)
        alphas = torch.tensor(alpha_points(n_steps), dtype=torch.float64)
        weights = torch.tensor(step_sizes(n_steps), dtype=torch.float64)
    elif method == "trapezoid":
        alphas = torch.arange(n_steps, dtype=torch.float64) / (n_steps - 1)
        weights = torch.full((n_steps,), 1.0 / (n_steps - 1), dtype=torch.float64)
        weights[[0, -1]] /= 2
    elif method == "gausslegendre":
        alphas, weights = _gauss_legendre(n_steps)
    else:
        raise ValueError(f"method must be one of {list(RIEMANN_METHODS)}, got {method!r}")
    shape = (n_steps, batch_size)
    return (
        alphas[:, None].expand(shape).to(dtype=dtype, device=device),
        weights[:, None].expand(shape).to(dtype=dtype, device=device),
    )


@lru_cache(maxsize=64)
def _gauss_legendre_cached(n: int) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
    nodes, weights = np.polynomial.legendre.leggauss(n)
    return tuple((nodes + 1) / 2), tuple(weights / 2)


def _gauss_legendre(n: int) -> Tuple[Tensor, Tensor]:
    r"""Gauss-Legendre nodes and weights on ``[0, 1]``, float64."""
    nodes, weights = _gauss_legendre_cached(n)
    return torch.tensor(nodes, dtype=torch.float64), torch.tensor(weights, dtype=torch.float64)


def interval_mass(
    grid: Tensor,
    logits: Tensor,
    uniform_mix: float = UNIFORM_MIX,
    power: float = POWER,
    grading: float = GRADING,
) -> Tensor:
    r"""
    The sampling density's mass on each probe interval: ``(M - 1, batch)``,
    float64, each column summing to 1 (see the module docstring).

    Args:
        grid (Tensor): ``(M, batch)`` probe points, sorted, from 0 to 1 (a
                    repeated point is an empty interval).
        logits (Tensor): ``(M, batch)`` target logits there.
        uniform_mix (float, optional): Share of the mass spread uniformly, in
                    ``(0, 1]``. Default: 0.2
        power (float, optional): Exponent of ``|dF/da|``, > 0. Default: 0.5
        grading (float, optional): Largest density ratio of neighbouring
                    intervals, > 1, or ``inf`` for none. Default: 2.0
    """
    if grid.shape != logits.shape or grid.dim() != 2 or grid.shape[0] < 2:
        raise ValueError(
            "grid and logits must have the same shape (M, batch) with M >= 2, got "
            f"{tuple(grid.shape)} and {tuple(logits.shape)}"
        )
    if not 0.0 < uniform_mix <= 1.0:
        raise ValueError(f"uniform_mix must be in (0, 1], got {uniform_mix}")
    if not power > 0.0:
        raise ValueError(f"power must be > 0, got {power}")
    if not grading > 1.0:
        raise ValueError(f"grading must be > 1, got {grading}")
    width, slope = _widths_and_slopes(grid, logits)
    log_density = (slope**power).log()  # -inf where flat
    if grading != float("inf"):
        log_density = _graded(log_density, width > 0, float(np.log(grading)))
    return _mixed_mass(log_density.exp(), width, uniform_mix)


def _mixed_mass(density: Tensor, width: Tensor, uniform_mix: float) -> Tensor:
    r"""The mass of each interval of ``width`` under ``density`` (by width where
    the density is 0 everywhere), each column summing to 1, mixed with a
    uniform share ``uniform_mix``."""
    total = (density * width).sum(dim=0, keepdim=True)
    share = torch.where(total > 0, safe_div(density * width, total), width)
    return (1.0 - uniform_mix) * share + uniform_mix * width


def _widths_and_slopes(grid: Tensor, logits: Tensor) -> Tuple[Tensor, Tensor]:
    r"""Width and ``|dF/da|`` of each probe interval, float64 (0 where empty)."""
    width = grid.detach().to(torch.float64).diff(dim=0)
    change = logits.detach().to(torch.float64).diff(dim=0).abs()
    return width, torch.where(width > 0, safe_div(change, width), 0.0)


def _graded(log_density: Tensor, nonempty: Tensor, log_ratio: float) -> Tensor:
    r"""``max_i (log d_i - |s_i - s_j| log_ratio)`` along dim 0, ``s`` counting
    the non-empty intervals: every interval's density is at least its
    neighbour's divided by the ratio (empty intervals do not count)."""
    steps = nonempty.to(log_density.dtype).cumsum(dim=0) * log_ratio
    forward = (log_density + steps).cummax(dim=0).values - steps
    backward = (log_density - steps).flip(0).cummax(dim=0).values.flip(0) + steps
    return torch.maximum(forward, backward)


def refinement_points(
    grid: Tensor, logits: Tensor, n_steps: int, nodes_per_panel: Optional[int] = None
) -> Optional[Tuple[Tensor, Tensor]]:
    r"""
    Probe points that resolve a jump of the logit: ``REFINE_POINTS`` evenly
    spaced points inside each (of at most ``MAX_REFINED``, heaviest first)
    probe interval that is a jump: its slope is more than ``GRADING ** (1 /
    POWER)`` times a neighbour's and it would hold more than one panel, or
    its slope is more than ``STEEP`` times a neighbour's and it holds more
    than one panel's share of the logit's change (a narrow jump, whose
    mass the grading gives to its flat neighbours). So the jump's width,
    not the probe's spacing, sets the panels there. A logit that moves
    evenly needs none.

    Returns:
        ``(points, new)``, each ``(k, batch)``: the points, and whether each
        is new (the examples that need fewer than ``k`` are padded with
        their first known point, which needs no evaluation); or None where
        no example needs any.
    """
    mass = interval_mass(grid, logits)
    panel = 1.0 / max(n_steps // (nodes_per_panel or default_nodes_per_panel(n_steps)), 1)
    width, slope = _widths_and_slopes(grid, logits)
    change = slope * width
    share = safe_div(change, change.sum(dim=0, keepdim=True))
    padded = torch.nn.functional.pad(
        torch.where(width > 0, slope, float("inf")).T, (1, 1), value=float("inf")).T
    flattest_neighbour = torch.minimum(padded[:-2], padded[2:])  # empty: no neighbour
    needs = ((mass > panel) & (slope > GRADING ** (1 / POWER) * flattest_neighbour)) | (
        (share > panel) & (slope > STEEP * flattest_neighbour))
    needed = int(needs.sum(dim=0).max())
    if needed == 0:
        return None
    chosen = torch.where(needs, mass, -1.0).topk(min(needed, MAX_REFINED), dim=0)
    grid = grid.detach().to(torch.float64)
    low, high = grid.gather(0, chosen.indices), grid.gather(0, chosen.indices + 1)
    fractions = torch.arange(1, REFINE_POINTS + 1, dtype=torch.float64, device=grid.device)
    fractions = fractions / (REFINE_POINTS + 1)
    points = low[:, None] + (high - low)[:, None] * fractions[None, :, None]
    new = (chosen.values >= 0)[:, None].expand_as(points)
    points = torch.where(new, points, grid[0])
    return points.reshape(-1, grid.shape[1]), new.reshape(-1, grid.shape[1])


def adaptive_schedule(
    grid: Tensor,
    logits: Tensor,
    n_steps: int,
    nodes_per_panel: Optional[int] = None,
    uniform_mix: float = UNIFORM_MIX,
    power: float = POWER,
    grading: float = GRADING,
) -> Tuple[Tensor, Tensor]:
    r"""
    Adaptive sampling: Gauss-Legendre panels of equal mass under the density
    that :func:`interval_mass` reads off the probe (see the module
    docstring). Every panel has ``nodes_per_panel`` nodes (the first
    ``n_steps % panels`` panels one more); the panels tile ``[0, 1]``, so the
    weights of each example sum to 1. With the default ``nodes_per_panel``,
    an example whose logit moves evenly (density at most ``EVEN_PEAK`` times
    its mean everywhere) gets one panel: Gauss-Legendre over the whole path.

    Args:
        grid (Tensor): ``(M, batch)`` probe points, sorted, from 0 to 1.
        logits (Tensor): ``(M, batch)`` target logits at ``grid``.
        n_steps (int): Number of samples per example, at least 1.
        nodes_per_panel (int, optional): Gauss-Legendre nodes per panel.
                    Default: None (:func:`default_nodes_per_panel`, or one
                    panel where the logit moves evenly)
        uniform_mix, power, grading: as in :func:`interval_mass`.

    Returns:
        ``(alphas, weights)``, each ``(n_steps, batch)``, in the dtype and on
        the device of ``logits``.
    """
    per_panel = default_nodes_per_panel(n_steps) if nodes_per_panel is None else nodes_per_panel
    if isinstance(per_panel, bool) or not isinstance(per_panel, int) or per_panel < 1:
        raise ValueError(f"nodes_per_panel must be an integer >= 1, got {nodes_per_panel!r}")
    mass = interval_mass(grid, logits, uniform_mix, power, grading)
    edges = _equal_mass_edges(grid.detach().to(torch.float64), mass, max(1, n_steps // per_panel))
    panel, nodes, node_weights = _panel_rule(n_steps, edges.shape[0] - 1)
    panel, nodes, node_weights = (t.to(edges.device) for t in (panel, nodes, node_weights))
    low, width = edges[panel], edges.diff(dim=0)[panel]  # (n_steps, batch)
    alphas, weights = low + width * nodes[:, None], width * node_weights[:, None]
    if nodes_per_panel is None and n_steps <= MAX_SINGLE_PANEL:
        even = _even(grid, mass)
        if even.any():
            gauss = riemann_schedule("gausslegendre", n_steps, len(even), device=mass.device)
            alphas = torch.where(even, gauss[0], alphas)
            weights = torch.where(even, gauss[1], weights)
    out = dict(dtype=logits.dtype, device=logits.device)
    return alphas.to(**out), weights.to(**out)


def moves_evenly(grid: Tensor, logits: Tensor, peak: float = EVEN_PEAK) -> Tensor:
    r"""Whether the logit of each example ``(batch,)`` moves evenly on the probe
    ``grid`` ``(M, batch)``: the sampling density (:func:`interval_mass`) is
    nowhere above ``peak`` times its mean."""
    return _even(grid, interval_mass(grid, logits), peak)


def _even(grid: Tensor, mass: Tensor, peak: float = EVEN_PEAK) -> Tensor:
    widths = grid.detach().to(torch.float64).diff(dim=0)
    return torch.where(widths > 0, safe_div(mass, widths), 0.0).amax(dim=0) <= peak


def switch_cells(grid: Tensor, logits: Tensor, switches: Tensor, n_steps: int
                 ) -> Tuple[Tensor, Tensor]:
    r"""
    The midpoint rule on ``n_steps`` cells for a piecewise-linear network,
    whose integrand is constant between switches of its units: cells of
    equal mass under the density ``(switches per unit alpha * |dF/da|) **
    SWITCH_POWER`` on each probe interval, mixed with a uniform share
    ``UNIFORM_MIX``. Where no unit switches, the midpoint rule.

    Args:
        grid (Tensor): ``(M, batch)`` probe points, sorted, from 0 to 1.
        logits (Tensor): ``(M, batch)`` target logits at ``grid``.
        switches (Tensor): ``(M - 1, batch)`` switches between neighbouring
                    points (see :class:`~captum_idg.attr._piecewise.SwitchCounter`).
        n_steps (int): Number of cells.

    Returns:
        ``(alphas, weights)``, each ``(n_steps, batch)``, float64.
    """
    width, slope = _widths_and_slopes(grid, logits)
    rate = torch.where(width > 0, safe_div(switches.to(torch.float64), width), 0.0)
    mass = _mixed_mass((rate * slope) ** SWITCH_POWER, width, UNIFORM_MIX)
    edges = _equal_mass_edges(grid.detach().to(torch.float64), mass, n_steps)
    return (edges[1:] + edges[:-1]) / 2, edges.diff(dim=0)


def refined_gaps(alphas: Tensor, jumps: Tensor, n_new: int) -> Tensor:
    r"""
    ``n_new`` points that subdivide the gaps between the samples ``alphas``
    ``(n, batch)`` (sorted, inside ``(0, 1)``) of a piecewise-constant
    integrand, where ``jumps`` ``(n - 1, batch)``, the squared norm of its
    change between neighbouring samples, says it jumps.

    A gap of width ``h`` cut into ``m + 1`` equal parts by ``m`` points
    leaves an error whose square is about ``rate * h^3 / (m + 1)^2``
    (``rate``: its squared jumps per unit alpha; an end gap counts twice its
    width, as the nearest sample stands for all of it). Points go one at a
    time where they remove the most, so the gaps where the integrand jumped
    are cut finest (the end gaps take their neighbour's rate; where nothing
    jumped, every gap the same rate). Use the samples with
    :func:`nearest_sample_weights`.

    Returns:
        ``(n_new, batch)``, float64: evenly spaced inside each gap they cut
        (in an end gap, the first half a space from the end of the path).
    """
    alphas = alphas.to(torch.float64)
    n, batch = alphas.shape
    like = dict(dtype=torch.float64, device=alphas.device)
    edges = torch.cat([torch.zeros(1, batch, **like), alphas, torch.ones(1, batch, **like)])
    width = edges.diff(dim=0)  # (n + 1, batch): the end gaps first and last
    rate = torch.ones(n + 1, batch, **like)
    if n > 1:
        rate[1:-1] = safe_div(jumps.to(torch.float64), width[1:-1])
        rate[0], rate[-1] = rate[1], rate[-2]
        rate = torch.where(rate.sum(dim=0) > 0, rate, 1.0)
    reach = width.clone()
    reach[0], reach[-1] = 2 * width[0], 2 * width[-1]
    error = rate * reach ** 3
    cuts = torch.zeros(n + 1, batch, **like)
    for _ in range(n_new):
        gain = error * ((cuts + 1) ** -2 - (cuts + 2) ** -2)
        cuts.scatter_add_(0, gain.argmax(dim=0, keepdim=True), torch.ones(1, batch, **like))
    total = cuts.cumsum(dim=0)
    order = torch.arange(n_new, **like)[:, None].expand(-1, batch)
    gap = torch.searchsorted(total.T.contiguous(), order.T.contiguous(), right=True).T
    count = cuts.gather(0, gap)
    rank = order - (total.gather(0, gap) - count)
    low, high = edges.gather(0, gap), edges.gather(0, gap + 1)
    inside = low + (high - low) * (rank + 1) / (count + 1)
    first = high * (rank + 0.5) / (count + 0.5)
    last = high - (high - low) * (rank + 0.5) / (count + 0.5)
    return torch.where(gap == 0, first, torch.where(gap == n, last, inside))


def nearest_sample_weights(alphas: Tensor) -> Tensor:
    r"""
    Weights ``(n, batch)`` of the samples ``alphas`` ``(n, batch)`` (any
    order, distinct) under the rule that takes the integrand on ``[0, 1]``
    to be that of the nearest sample: each sample weighs the span from the
    midpoint with its left neighbour (or 0) to that with its right (or 1).
    On midpoint cells it is the midpoint rule.
    """
    ordered, order = alphas.to(torch.float64).sort(dim=0)
    ends = torch.zeros_like(ordered[:1]), torch.ones_like(ordered[:1])
    borders = torch.cat([ends[0], (ordered[1:] + ordered[:-1]) / 2, ends[1]])
    return torch.empty_like(ordered).scatter_(0, order, borders.diff(dim=0))


def equal_mass_edges(grid: Tensor, logits: Tensor, cells: int) -> Tensor:
    r"""
    Edges ``(cells + 1, batch)``, float64, of ``cells`` cells of equal mass
    under adaptive sampling's density (:func:`interval_mass`) read off the
    logits known at the sorted points ``grid`` ``(M, batch)``.
    """
    mass = interval_mass(grid, logits)
    return _equal_mass_edges(grid.detach().to(torch.float64), mass, cells)


def variance_edges(base: Tensor, edges: Tensor, variance: Tensor, cells: int,
                   share: float = 0.5) -> Tensor:
    r"""
    Edges ``(cells + 1, batch)`` of equal mass under a mix of two densities:
    ``1 - share`` of equal mass in each cell of ``base`` ``(B + 1, batch)``
    (the sampler's strata), ``share`` in proportion to ``variance ** (1/3)``
    on the strata ``edges`` ``(S + 1, batch)`` of the last round (the
    estimated squared error each contributed). A stratum of width ``h`` in
    which a piecewise constant integrand jumps contributes a variance
    ``~ c h^3``; cells of width ``~ c^(-1/3)`` minimise the total for a given
    number of cells (Neyman allocation), so the next round gets narrow
    strata where the last one's error came from.
    """
    grid = torch.cat([base, edges]).to(torch.float64).sort(dim=0).values
    width = grid.diff(dim=0)
    middle = (grid[:-1] + grid[1:]) / 2

    def density(boundaries: Tensor, mass: Tensor) -> Tensor:
        cell = torch.searchsorted(boundaries.T.contiguous(), middle.T.contiguous()).T - 1
        cell = cell.clamp(0, mass.shape[0] - 1)
        size = boundaries.diff(dim=0)
        return safe_div(mass, size).gather(0, cell)

    rough = variance.to(torch.float64).clamp(min=0) ** (1 / 3)
    total = rough.sum(dim=0, keepdim=True)
    rough = torch.where(total > 0, safe_div(rough, total), 1.0 / rough.shape[0])
    even = torch.full_like(base[1:], 1.0 / (base.shape[0] - 1), dtype=torch.float64)
    mass = width * ((1 - share) * density(base.to(torch.float64), even)
                    + share * density(edges.to(torch.float64), rough))
    edges = _equal_mass_edges(grid, mass / mass.sum(dim=0, keepdim=True), cells)
    edges[0], edges[-1] = grid[0], grid[-1]  # the span of base (Left-IG's ends at a*)
    return edges


def randomized_strata(edges: Tensor, shifts: Tensor) -> Tuple[Tensor, Tensor]:
    r"""
    A randomized rule: in each stratum ``[e_s, e_{s+1}]`` of ``edges``
    ``(S + 1, batch)``, ``PAIRS`` antithetic pairs ``e_s + u h`` and
    ``e_s + (1 - u) h`` (``h`` the stratum's width, one ``u`` per pair from
    ``shifts`` ``(S, PAIRS)``, uniform on ``[0, 1)``), each point weighted
    ``h / (2 PAIRS)``. Every pair alone is an unbiased estimate of the
    stratum's integral, exact for a linear integrand, so the spread of the
    pairs of a stratum estimates the error honestly, however rough the
    integrand (a jump of a ReLU network included).

    Returns:
        ``(alphas, weights)``, each ``(2 PAIRS S, batch)``, stratum-major:
        rows ``4s .. 4s + 3`` are stratum ``s``, its first pair first.
    """
    strata, pairs = shifts.shape
    if edges.dim() != 2 or edges.shape[0] != strata + 1 or pairs != PAIRS:
        raise ValueError(
            f"edges must be (S + 1, batch) and shifts (S, {PAIRS}), got "
            f"{tuple(edges.shape)} and {tuple(shifts.shape)}")
    low, width = edges[:-1], edges.diff(dim=0)  # (S, batch)
    u = shifts.to(edges)
    offsets = torch.stack([u, 1 - u], dim=2).reshape(strata, 2 * pairs)  # (S, 4)
    alphas = low[:, None] + width[:, None] * offsets[:, :, None]
    weights = (width / (2 * pairs))[:, None].expand_as(alphas)
    return alphas.reshape(-1, edges.shape[1]), weights.reshape(-1, edges.shape[1])


def _equal_mass_edges(grid: Tensor, mass: Tensor, panels: int) -> Tensor:
    r"""Edges ``(panels + 1, batch)`` of the cells of equal ``mass``, the
    mass being uniform inside each probe interval."""
    cdf = torch.cat([torch.zeros_like(mass[:1]), mass.cumsum(dim=0)]).T.contiguous()
    cdf[:, -1] = 1.0
    levels = torch.linspace(0, 1, panels + 1, dtype=torch.float64, device=mass.device)
    levels = levels.expand(cdf.shape[0], -1).contiguous()
    index = torch.searchsorted(cdf, levels, right=True).sub_(1).clamp_(0, len(mass) - 1)
    cell_mass = mass.T.gather(1, index)
    offset = safe_div(levels - cdf.gather(1, index), cell_mass)
    low, high = grid.T.gather(1, index), grid.T.gather(1, index + 1)
    edges = low + offset.clamp(0.0, 1.0) * (high - low)
    edges[:, 0], edges[:, -1] = 0.0, 1.0
    return edges.T


@lru_cache(maxsize=64)
def _panel_rule(n_steps: int, panels: int) -> Tuple[Tensor, Tensor, Tensor]:
    r"""For each of ``n_steps`` samples: its panel, its Gauss-Legendre node on
    ``[0, 1]`` and weight; the first ``n_steps % panels`` panels get one
    node more than the others."""
    counts = [n_steps // panels + (j < n_steps % panels) for j in range(panels)]
    rules = [_gauss_legendre(c) for c in counts]
    panel = torch.cat([torch.full((c,), j) for j, c in enumerate(counts)])
    return panel, torch.cat([r[0] for r in rules]), torch.cat([r[1] for r in rules])


def reference_schedule(probe_logits: Tensor, n_steps: int) -> Tuple[Tensor, Tensor]:
    r"""
    The IDG authors' adaptive schedule as their released code computes it
    (``util/attribution_methods/saliencyMethods.py``, ``getSlopes`` and
    ``getAlphaParameters``, commit cde6c73), per example: slopes by backward
    difference on the probe (the first set to 0), min-max normalised, the
    first reset to 0, scaled to sum to ``n_steps``, truncated to integers;
    the leftover samples go one each to the intervals with the largest
    fractions among those that got none. Interval ``j`` then gets its
    ``n_j`` samples at ``start + (0, 1, ..., n_j - 1) * width / n_j`` with
    weight ``width / n_j``, and ``start`` advances by one probe interval only
    after an interval that got samples. That last rule is the released code's
    placement bug: intervals without samples do not move the start, so the
    samples drift towards the baseline and the weights can sum to less than
    1. It is reproduced on purpose; :func:`adaptive_schedule` does not have it.

    Args:
        probe_logits (Tensor): ``(n_steps, batch)`` logits on
                    ``linspace(0, 1, n_steps)``.
        n_steps (int): Number of samples, the probe size.

    Returns:
        ``(alphas, weights)``, each ``(n_steps, batch)``, increasing alphas.
    """
    if probe_logits.dim() != 2 or probe_logits.shape[0] != n_steps or n_steps < 2:
        raise ValueError(
            f"probe_logits must have shape (n_steps, batch) = ({n_steps}, batch), got "
            f"{tuple(probe_logits.shape)}"
        )
    width = 1.0 / (n_steps - 1)
    columns = [_reference_column(column, n_steps, width) for column in probe_logits.detach().T]
    out = dict(dtype=probe_logits.dtype, device=probe_logits.device)
    return (torch.stack([c[0] for c in columns], dim=1).to(**out),
            torch.stack([c[1] for c in columns], dim=1).to(**out))


def _reference_column(logits: Tensor, n_steps: int, width: float) -> Tuple[Tensor, Tensor]:
    logits = logits.to(torch.float64).cpu()
    slopes = torch.zeros(n_steps, dtype=torch.float64)
    slopes[1:] = logits.diff() / width
    spread = slopes.max() - slopes.min()
    if spread == 0:  # a flat logit: the released code divides 0 by 0 here
        normalised = torch.full_like(slopes, 1.0)
    else:
        normalised = (slopes - slopes.min()) / spread
    normalised[0] = 0.0
    fractions = normalised / normalised.sum() * n_steps
    counts = fractions.to(torch.int64)
    leftover = n_steps - int(counts.sum())
    fractions[counts != 0] = -1
    order = torch.flip(torch.sort(fractions)[1], dims=[0])  # as released: not stable
    counts[order[:leftover]] = 1
    alphas, weights, start = [], [], 0.0
    for count in counts.tolist():
        if count == 0:
            continue
        alphas.append(torch.linspace(start, start + width, count + 1, dtype=torch.float64)[:count])
        weights.append(torch.full((count,), width / count, dtype=torch.float64))
        start += width
    return torch.cat(alphas), torch.cat(weights)


SATURATION_RULES = ("max", "relative")


def saturation_point(
    probe_logits: Tensor, threshold: float = 0.9, rule: str = "max"
) -> Tensor:
    r"""
    Where the path saturates: the first ``alpha`` at which the logit reaches a
    threshold, linearly interpolated between probe points.

    Args:
        probe_logits (Tensor): ``(M, batch)`` logits on ``linspace(0, 1, M)``.
        threshold (float, optional): Fraction in ``(0, 1]``. Default: 0.9
        rule (str, optional): ``"max"``: the logit reaches ``threshold`` times
                    the largest logit on the path (the IDG paper's code; a
                    path whose largest logit is negative never reaches it).
                    ``"relative"``: the logit has covered ``threshold`` of
                    the way from ``F(x')`` to ``F(x)`` (Miglani et al. 2020;
                    if ``F(x) = F(x')`` it never does). Default: ``"max"``

    Returns:
        ``(batch,)`` saturation points in ``[0, 1]``; 1 where the threshold is
        never reached, 0 where the baseline already reaches it.
    """
    probe = probe_logits.detach()
    if rule == "max":
        level = threshold * probe.max(dim=0).values
    elif rule == "relative":  # progress from F(x') (0) to F(x) (1); -1 if none
        change = probe[-1] - probe[0]
        moved = change != 0
        probe = torch.where(moved, safe_div(probe - probe[0], change), -1.0)
        level = torch.full_like(change, threshold)
    else:
        raise ValueError(f"rule must be one of {list(SATURATION_RULES)}, got {rule!r}")
    reached = probe >= level
    first = reached.to(torch.uint8).argmax(dim=0)
    before = (first - 1).clamp(min=0)
    low, high = probe.gather(0, before[None])[0], probe.gather(0, first[None])[0]
    fraction = safe_div(level - low, high - low).clamp(0, 1)
    point = (before + torch.where(first > 0, fraction, 0.0)) / (probe.shape[0] - 1)
    return torch.where(reached.any(dim=0), point, 1.0)
