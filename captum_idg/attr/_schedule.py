"""Where to sample a path integral: uniform and adaptive Riemann schedules.

Pure tensor functions, no model. A schedule is a pair ``(alphas, weights)`` of
shape ``(n_steps, batch)``: column ``b`` holds the sample points of example
``b`` in ``(0, 1)`` and the widths of the cells they stand for. The cells tile
``[0, 1]``, so each column of ``weights`` sums to 1 and every sample lies
inside its own cell.
"""

from typing import Tuple

import torch
from torch import Tensor

UNIFORM_MIX = 0.25
POWER = 0.5
MIN_PROBE_STEPS = 6


def default_probe_steps(n_steps: int) -> int:
    r"""
    Probe points of adaptive sampling when none are given: ``n_steps // 4``,
    at least 6 and at most ``n_steps``. A forward pass without grad costs
    about a third of a forward+backward, so the probe adds 8-13% to the
    gradient passes (``benchmarks/probe_size.py`` measures what it buys).
    """
    return min(n_steps, max(MIN_PROBE_STEPS, n_steps // 4))


def uniform_schedule(
    n_steps: int,
    batch_size: int,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> Tuple[Tensor, Tensor]:
    r"""
    The midpoint rule: ``n_steps`` equal cells, each sampled at its centre.

    Returns:
        ``(alphas, weights)``, each of shape ``(n_steps, batch_size)``.
    """
    alphas = (torch.arange(n_steps, dtype=torch.float64) + 0.5) / n_steps
    weights = torch.full((n_steps,), 1.0 / n_steps, dtype=torch.float64)
    expand = (n_steps, batch_size)
    return (
        alphas[:, None].expand(expand).to(dtype=dtype, device=device),
        weights[:, None].expand(expand).to(dtype=dtype, device=device),
    )


def adaptive_schedule(
    probe_logits: Tensor,
    n_steps: int,
    uniform_mix: float = UNIFORM_MIX,
    power: float = POWER,
) -> Tuple[Tensor, Tensor]:
    r"""
    Adaptive sampling: place ``n_steps`` samples densely where the logit moves.

    ``probe_logits[j, b]`` is the target logit of example ``b`` at
    ``alpha = j / (M - 1)`` on a uniform probe grid of ``M`` points. Probe
    interval ``j`` gets a share of the samples proportional to
    ``|F(a_{j+1}) - F(a_j)| ** power``, mixed with a uniform share
    ``uniform_mix`` so that flat stretches keep a few samples and every cell
    narrows as ``n_steps`` grows. The shares define a piecewise-constant
    density on ``[0, 1]``; the cells are its ``n_steps`` equal-mass quantile
    cells, each sampled at its midpoint (a midpoint rule on unequal cells).
    Unlike the reference code's integer allocation, the cells cover all of
    ``[0, 1]`` (weights sum to 1) and no sample drifts out of its interval.
    A flat logit gives the uniform midpoint rule.

    The paper allocates in proportion to the slope (``power=1``). The
    defaults come from ``benchmarks/schedule_accuracy.py``: against a dense
    float64 reference, ``power=0.5`` beat ``power=1`` for IDG and for IG.

    Args:
        probe_logits (Tensor): ``(M, batch)`` logits on the probe grid, M >= 2.
        n_steps (int): Number of samples per example.
        uniform_mix (float, optional): Share of the samples spread uniformly,
                    in ``(0, 1]``. Default: 0.25
        power (float, optional): Exponent applied to the logit change of each
                    probe interval, > 0. Default: 0.5

    Returns:
        ``(alphas, weights)``, each of shape ``(n_steps, batch)``, in the dtype
        and on the device of ``probe_logits``.
    """
    if probe_logits.dim() != 2 or probe_logits.shape[0] < 2:
        raise ValueError(
            "probe_logits must have shape (M, batch) with M >= 2, "
            f"got {tuple(probe_logits.shape)}"
        )
    if not 0.0 < uniform_mix <= 1.0:
        raise ValueError(f"uniform_mix must be in (0, 1], got {uniform_mix}")
    if not power > 0.0:
        raise ValueError(f"power must be > 0, got {power}")
    n_intervals = probe_logits.shape[0] - 1
    change = probe_logits.detach().to(torch.float64).diff(dim=0).abs().T ** power
    total = change.sum(dim=1, keepdim=True)
    moving = total > 0
    share = torch.where(moving, change / total.clamp_min(1e-300), 1.0 / n_intervals)
    mass = (1.0 - uniform_mix) * share + uniform_mix / n_intervals
    cdf = torch.cat([torch.zeros_like(total), mass.cumsum(dim=1)], dim=1)
    cdf[:, -1] = 1.0

    levels = torch.arange(n_steps + 1, dtype=torch.float64, device=cdf.device)
    levels = (levels / n_steps).expand(cdf.shape[0], -1).contiguous()
    interval = torch.searchsorted(cdf, levels, right=True).sub_(1)
    interval = interval.clamp_(0, n_intervals - 1)
    offset = (levels - cdf.gather(1, interval)) / mass.gather(1, interval)
    edges = (interval + offset.clamp(0.0, 1.0)) / n_intervals  # (B, n_steps + 1)
    edges[:, 0], edges[:, -1] = 0.0, 1.0
    alphas = (edges[:, 1:] + edges[:, :-1]) / 2
    weights = edges.diff(dim=1)
    out = dict(dtype=probe_logits.dtype, device=probe_logits.device)
    return alphas.T.to(**out), weights.T.to(**out)


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
        probe = torch.where(moved, (probe - probe[0]) / torch.where(moved, change, 1.0), -1.0)
        level = torch.full_like(change, threshold)
    else:
        raise ValueError(f"rule must be one of {list(SATURATION_RULES)}, got {rule!r}")
    reached = probe >= level
    first = reached.to(torch.uint8).argmax(dim=0)
    before = (first - 1).clamp(min=0)
    low, high = probe.gather(0, before[None])[0], probe.gather(0, first[None])[0]
    fraction = ((level - low) / torch.where(high > low, high - low, 1.0)).clamp(0, 1)
    point = (before + torch.where(first > 0, fraction, 0.0)) / (probe.shape[0] - 1)
    return torch.where(reached.any(dim=0), point, 1.0)
