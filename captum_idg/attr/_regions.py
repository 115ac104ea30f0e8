"""The linear regions of a piecewise-linear network along a path, and a sampler exact on them.

A network of linear layers and ReLU / LeakyReLU modules is linear between the
points of the path where a pre-activation changes sign, so its gradient, and
the integrand of IG and IDG, is constant there. :func:`region_edges` walks the
path from 0 to 1: at the start of a region one forward-mode pass gives every
pre-activation and its slope along the path, and the region ends at the
nearest zero ahead; each region is checked to be linear, so a nonlinearity the
hooks cannot see (``torch.relu`` in a forward) raises. :class:`Regions` samples
each region once at its midpoint, weighted by its length, which integrates such
a network exactly.
"""

from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn

from captum_idg._warnings import some_examples, warn
from captum_idg.attr._path_integral import (
    Known,
    ModelOnPath,
    PathMethod,
    Sampler,
    Schedule,
    register_method,
)
from captum_idg.attr.schedules import riemann_schedule

SWITCHES = (nn.ReLU, nn.LeakyReLU)  # where a region ends: a pre-activation's zero
LINEAR = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Flatten, nn.Unflatten, nn.Identity,
          nn.Dropout, nn.modules.batchnorm._BatchNorm, nn.AvgPool1d, nn.AvgPool2d,
          nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)
REGIONS_PER_STEP = 4  # an example with more regions than this times n_steps is not walked on


def switch_modules(forward_func: object) -> List[nn.Module]:
    r"""The ReLU / LeakyReLU modules of ``forward_func`` (an ``nn.Module`` or its
    bound method), after checking that every other leaf module is linear."""
    module = forward_func if isinstance(forward_func, nn.Module) else getattr(
        forward_func, "__self__", None)
    if not isinstance(module, nn.Module):
        raise ValueError("method: 'regions' reads the pre-activations of forward_func's modules: "
                         "forward_func must be an nn.Module or its bound method")
    leaves = [m for m in module.modules() if not list(m.children())]
    other = sorted({type(m).__name__ for m in leaves if not isinstance(m, SWITCHES + LINEAR)})
    if other:
        raise ValueError(f"method: 'regions' integrates networks of linear layers and ReLU or "
                         f"LeakyReLU modules exactly; this one has {', '.join(other)}")
    return [m for m in leaves if isinstance(m, SWITCHES)]


def region_edges(model: ModelOnPath, most: int) -> Tuple[Tensor, Tensor]:
    r"""
    The edges of the linear regions along every example's path: ``(R + 1,
    batch)`` float64, each column from 0 to 1 and padded with 1, and which
    examples were walked to the end within ``most`` regions ``(batch,)``.
    Each region is checked to be linear: the logit at its end must be where
    its start's logit and slope say. A nonlinearity computed outside a module
    (``torch.relu`` in a forward) fails that check, and raises.
    """
    switches = switch_modules(model.forward_func)
    batch, device = model.path.batch_size, model.path.inputs[0].device
    dtype = model.path.schedule_dtype
    step = max(1e-12, 8 * torch.finfo(dtype).eps)  # past a zero
    at = torch.zeros(batch, dtype=torch.float64, device=device)
    edges = [at.clone()]
    walking = torch.ones(batch, dtype=torch.bool, device=device)
    # each example's region: where it starts, and F and dF/da there
    start, logit, rate = (torch.zeros(batch, dtype=torch.float64, device=device)
                          for _ in range(3))
    for walked in range(most):
        index = walking.nonzero().flatten()
        if len(index) == 0:
            break
        values, slopes, new_logit, new_rate = model.select(index).tangents(
            (at[index] + step)[None], switches)
        if walked:
            _check_linear(start[index], logit[index], rate[index], at[index] + step,
                          new_logit.to(torch.float64), dtype)
        start[index] = at[index] + step
        logit[index], rate[index] = new_logit.to(torch.float64), new_rate.to(torch.float64)
        ahead = torch.where((slopes != 0) & (-values / slopes > 0), -values / slopes, torch.inf)
        nearest = ahead.amin(dim=1).to(torch.float64) if ahead.shape[1] else torch.full_like(
            index, torch.inf, dtype=torch.float64)
        at[index] = torch.clamp(at[index] + step + nearest, max=1.0)
        walking[index] = at[index] < 1.0
        edges.append(at.clone())
    done = (~walking).nonzero().flatten()
    if len(done):  # the last region, up to the input
        end = model.select(done).logits(torch.ones(1, len(done), dtype=dtype, device=device))[0]
        _check_linear(start[done], logit[done], rate[done], at[done], end.to(torch.float64),
                      dtype)
    return torch.stack(edges), ~walking


def _check_linear(start: Tensor, logit: Tensor, rate: Tensor, end: Tensor, end_logit: Tensor,
                  dtype: torch.dtype) -> None:
    r"""Raises unless ``end_logit`` is on the line from ``(start, logit)`` with slope ``rate``."""
    predicted = logit + (end - start) * rate
    scale = logit.abs() + end_logit.abs() + ((end - start) * rate).abs()
    off = (end_logit - predicted).abs() > torch.finfo(dtype).eps ** 0.5 * scale + 1e-30
    if off.any():
        raise ValueError(
            "method: 'regions' found the target output nonlinear between two switches of its "
            "ReLU modules: forward_func computes a nonlinearity outside nn.ReLU / nn.LeakyReLU "
            "modules (torch.relu, F.gelu, a max...); use method='adaptive'")


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
        for b in walked.nonzero().flatten().tolist():
            column = edges[:, b].unique()  # sorted, the padding folded away
            alphas[:, b], weights[:, b] = _samples_of(column, n_steps)
        if not walked.all():
            missed = (~walked).nonzero().flatten().tolist()
            warn(f"method='regions': the paths of {some_examples(missed, len(walked))} cross "
                 f"more than {REGIONS_PER_STEP * n_steps} linear regions; they use the midpoint "
                 "rule instead")
        like = model.like()
        return Schedule(alphas.to(**like), weights.to(**like))


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
