"""The linear regions of a piecewise-linear network along a path, and a sampler exact on them.

A network of linear layers, ReLU-type functions (``relu``, ``leaky_relu``,
``hardtanh``, ``relu6``) and max pools is linear between the points of the path
where a unit reaches a kink or a pool's window changes its maximum, so its
gradient, and the integrand of IG and IDG, is constant there.
:func:`region_edges` walks the path from 0 to 1: at the start of a region one
forward-mode pass, under a ``TorchFunctionMode`` that reads those functions'
inputs and slopes however they are called, finds the nearest switch ahead;
each region is checked to be linear, so a nonlinearity the walk does not read
raises. :class:`Regions` samples each region once at its midpoint, weighted by
its length, which integrates such a network exactly.
"""

from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional, Tuple

import torch
import torch.autograd.forward_ad as fwAD
from torch import Tensor
from torch.overrides import TorchFunctionMode

from captum_idg._warnings import some_examples, warn
from captum_idg.attr._path_integral import (
    Known,
    ModelOnPath,
    PathMethod,
    Sampler,
    Schedule,
    register_method,
)
from captum_idg.attr._piecewise import (
    KINKS,
    POOLS,
    SMOOTH,
    NotPiecewiseLinear,
    function_kind,
    pool_windows,
)
from captum_idg.attr.schedules import riemann_schedule

REGIONS_PER_STEP = 4  # an example with more regions than this times n_steps is not walked on
HOPELESS, HOPELESS_AFTER = 4, 16  # from this many regions on, stop at HOPELESS x most projected
FEW = 256  # ... or HOPELESS x FEW where most is fewer (a short walk costs little anyway)


class _Switches(TorchFunctionMode):
    r"""Records, during a forward-mode pass, how far along the path each
    piecewise-linear function's input switches next (:meth:`nearest`), and
    refuses smooth functions by name."""

    def __init__(self, batch: int, device: torch.device) -> None:
        super().__init__()
        self.batch, self.device = batch, device
        self.ahead: List[Tensor] = []

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (),
                           kwargs: Optional[dict] = None) -> Any:
        kwargs = kwargs or {}
        kind = function_kind(func)
        if kind in SMOOTH:
            raise NotPiecewiseLinear(
                f"method: 'regions' integrates networks of linear layers, ReLU-type "
                f"functions and max pools exactly; forward_func calls {kind}")
        if kind in KINKS or kind in POOLS:
            value, slope = fwAD.unpack_dual(args[0] if args else kwargs["input"])
            if value.shape[0] != self.batch:
                raise NotPiecewiseLinear(f"method: 'regions' reads each example's units: an "
                                         f"input of {kind} has {value.shape[0]} rows for "
                                         f"{self.batch} examples")
            slope = torch.zeros_like(value) if slope is None else slope
            if kind in KINKS:
                levels = KINKS[kind](*args, **kwargs)
                self.ahead.append(_next_kink(value.detach(), slope.detach(), levels))
            else:
                windows = pool_windows(POOLS[kind], *args[1:],
                                       **{k: v for k, v in kwargs.items() if k != "input"})
                self.ahead.append(_next_maximum(windows(value.detach()),
                                                windows(slope.detach())))
        return func(*args, **kwargs)

    def nearest(self) -> Tensor:
        r"""How far along the path ``(batch,)`` the first switch is (inf: none)."""
        nearest = torch.full((self.batch,), torch.inf, dtype=torch.float64, device=self.device)
        for ahead in self.ahead:
            nearest = torch.minimum(nearest, ahead.to(torch.float64))
        return nearest


def region_edges(model: ModelOnPath, most: int) -> Tuple[Tensor, Tensor]:
    r"""
    The edges of the linear regions along every example's path: ``(R + 1,
    batch)`` float64, each column from 0 to 1 and padded with 1, and which
    examples were walked to the end within ``most`` regions ``(batch,)``
    (an example stops early where its regions so far project many times
    more, see :func:`_hopeless`). Each region is checked to be
    linear: the logit at its end must be where its start's logit and slope
    say. A smooth function (by name) or a nonlinearity the walk does not
    read raises :class:`NotPiecewiseLinear`.
    """
    batch, device = model.path.batch_size, model.path.inputs[0].device
    dtype = model.path.schedule_dtype
    step = max(1e-12, 8 * torch.finfo(dtype).eps)  # past a zero
    at = torch.zeros(batch, dtype=torch.float64, device=device)
    edges = [at.clone()]
    walking = torch.ones(batch, dtype=torch.bool, device=device)
    finished = torch.zeros_like(walking)
    # each example's region: where it starts, and F and dF/da there
    start, logit, rate = (torch.zeros(batch, dtype=torch.float64, device=device)
                          for _ in range(3))
    for walked in range(most):
        index = walking.nonzero().flatten()
        if len(index) == 0:
            break
        switches = _Switches(len(index), device)
        try:
            new_logit, new_rate = model.select(index).tangents((at[index] + step)[None],
                                                               switches)
        except RuntimeError as error:  # an operation without forward-mode derivatives
            if "forward AD" not in str(error):
                raise
            raise NotPiecewiseLinear(f"method: 'regions' needs forward-mode derivatives: "
                                     f"{error}") from error
        if walked:
            _check_linear(start[index], logit[index], rate[index], at[index] + step,
                          new_logit.to(torch.float64), dtype)
        start[index] = at[index] + step
        logit[index], rate[index] = new_logit.to(torch.float64), new_rate.to(torch.float64)
        at[index] = torch.clamp(at[index] + step + switches.nearest(), max=1.0)
        finished[index] = at[index] >= 1.0
        edges.append(at.clone())
        walking &= ~finished & ~_hopeless(edges, most)
    done = finished.nonzero().flatten()
    if len(done):  # the last region, up to the input
        end = model.select(done).logits(torch.ones(1, len(done), dtype=dtype, device=device))[0]
        _check_linear(start[done], logit[done], rate[done], at[done], end.to(torch.float64),
                      dtype)
    return torch.stack(edges), finished


def _hopeless(edges: List[Tensor], most: int) -> Tensor:
    r"""Which examples ``(batch,)`` project more than ``HOPELESS * max(most,
    FEW)`` regions, from ``HOPELESS_AFTER`` regions walked on: the walked ones
    plus the rest of the path at the density of the last half of them (regions
    crowd near the start, where many units cross zero, so this overestimates,
    by up to 8x on the ReLU MLPs)."""
    walked = len(edges) - 1
    if walked < HOPELESS_AFTER:
        return torch.zeros_like(edges[0], dtype=torch.bool)
    at, half = edges[-1], edges[walked - walked // 2]
    projected = walked + (1 - at) * (walked // 2) / (at - half).clamp(min=1e-300)
    return (at < 1) & (projected > HOPELESS * max(most, FEW))


def _next_kink(value: Tensor, slope: Tensor, levels: Tuple[float, ...]) -> Tensor:
    r"""How far ``(batch,)`` until a unit's ``value``, moving at ``slope``,
    reaches one of the kinks ``levels`` (inf: never)."""
    ahead = torch.full_like(value, torch.inf)
    for level in levels:
        to = torch.where(slope != 0, (level - value) / slope, torch.inf)
        ahead = torch.minimum(ahead, torch.where(to > 0, to, torch.inf))
    return _per_example(ahead)


def _next_maximum(value: Tensor, slope: Tensor) -> Tensor:
    r"""How far ``(batch,)`` until a pool's window ``(..., window size)`` gets
    a new maximum (inf: never). Where values tie, the one that rises fastest
    is the maximum."""
    top = value.amax(dim=-1, keepdim=True)
    finite = torch.where(torch.isfinite(value), value.abs(), 0.0).amax(dim=-1, keepdim=True)
    tied = value >= top - 64 * torch.finfo(value.dtype).eps * finite
    lead = torch.where(tied, slope, -torch.inf).argmax(dim=-1, keepdim=True)
    gap = value.gather(-1, lead) - value
    closing = slope - slope.gather(-1, lead)
    ahead = torch.where(closing > 0, gap / closing, torch.inf)
    return _per_example(torch.where(ahead > 0, ahead, torch.inf))


def _per_example(ahead: Tensor) -> Tensor:
    return ahead.flatten(1).amin(dim=1) if ahead[0].numel() else ahead.new_full(
        (ahead.shape[0],), torch.inf)


def _check_linear(start: Tensor, logit: Tensor, rate: Tensor, end: Tensor, end_logit: Tensor,
                  dtype: torch.dtype) -> None:
    r"""Raises unless ``end_logit`` is on the line from ``(start, logit)`` with slope ``rate``."""
    predicted = logit + (end - start) * rate
    scale = logit.abs() + end_logit.abs() + ((end - start) * rate).abs()
    off = (end_logit - predicted).abs() > torch.finfo(dtype).eps ** 0.5 * scale + 1e-30
    if off.any():
        raise NotPiecewiseLinear(
            "method: 'regions' found the target output nonlinear between two switches of its "
            "ReLU-type functions and max pools: forward_func computes a nonlinearity the walk "
            "does not read; use method='adaptive'")


@dataclass
class Regions(Sampler):
    r"""
    Exact for piecewise-linear networks: walks the linear regions of the
    path (:func:`region_edges`, one forward-mode pass per region, counted as
    probe evaluations) and puts one sample in the middle of each region,
    weighted by its length; samples left over split the longest regions, so a
    call is exact whenever ``n_steps`` is at least the number of regions.
    With more regions than ``n_steps``, consecutive regions are joined into
    ``n_steps`` groups of as many regions each; with more than
    ``REGIONS_PER_STEP * n_steps`` the example is not walked further and gets
    the midpoint rule (one warning says which).
    """

    _edges: Optional[Tuple[Tensor, Tensor]] = field(default=None, init=False, repr=False)

    def start(self, model: ModelOnPath, n_steps: int) -> Known:
        self._edges = region_edges(model, REGIONS_PER_STEP * n_steps)
        return Known()

    def place(self, model: ModelOnPath, known: Known, n_steps: int) -> Schedule:
        assert self._edges is not None, "start() walks the regions before place()"
        edges, walked = self._edges
        alphas, weights = riemann_schedule("riemann_middle", n_steps, model.path.batch_size,
                                           dtype=torch.float64, device=edges.device)
        alphas, weights = alphas.clone(), weights.clone()
        if walked.any():
            alphas[:, walked], weights[:, walked] = region_samples(edges[:, walked], n_steps)
        if not walked.all():
            missed = (~walked).nonzero().flatten().tolist()
            warn(f"method='regions': the paths of {some_examples(missed, len(walked))} cross "
                 f"more than {REGIONS_PER_STEP * n_steps} linear regions (walked, or projected "
                 "from the first ones); they use the midpoint rule instead")
        like = model.like()
        return Schedule(alphas.to(**like), weights.to(**like))


def region_samples(edges: Tensor, n_steps: Optional[int] = None) -> Tuple[Tensor, Tensor]:
    r"""Samples and weights ``(n_steps, batch)`` on the regions between
    ``edges`` ``(R + 1, batch)`` (each column sorted, padded with 1): the
    midpoints of the regions, split or joined to make ``n_steps`` (None: as
    many as the example with most regions has, so that every one is exact)."""
    columns = [column.unique() for column in edges.T]  # sorted, the padding folded away
    if n_steps is None:
        n_steps = max(len(column) - 1 for column in columns)
    samples = [_samples_of(column, n_steps) for column in columns]
    return tuple(torch.stack(t, dim=1) for t in zip(*samples))  # type: ignore[return-value]


def _samples_of(edges: Tensor, n_steps: int) -> Tuple[Tensor, Tensor]:
    r"""``n_steps`` samples and weights on the regions between sorted ``edges``:
    midpoints of the regions, split or joined to make ``n_steps``."""
    regions = len(edges) - 1
    if regions > n_steps:  # join runs of consecutive regions
        edges = edges[torch.linspace(0, regions, n_steps + 1).round().long()]
        regions = n_steps
    lengths = edges.diff()
    share = lengths / lengths.sum() * (n_steps - regions)
    counts = 1 + share.floor().long()
    left = n_steps - int(counts.sum())
    counts[(share - share.floor()).argsort(descending=True)[:left]] += 1
    starts = edges[:-1].repeat_interleave(counts)
    widths = (lengths / counts).repeat_interleave(counts)
    within = torch.cat([torch.arange(int(c), dtype=edges.dtype) for c in counts])
    return starts + (within + 0.5) * widths, widths


register_method("regions", PathMethod(lambda n_steps, n_probe_steps: Regions()))
