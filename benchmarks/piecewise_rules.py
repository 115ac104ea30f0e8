"""Which placement of 50 evaluations integrates IDG best on piecewise-linear networks?

On a ReLU-type network the IDG integrand ``dF/da * grad F`` is piecewise
constant along the path, with tens (MLPs) to thousands (CNNs) of jumps, and
every rule converges at first order; what a rule can still choose is where its
samples go. Per case (one example, float64, path from 0) this measures the
relative L2 error of raw IDG against a dense midpoint reference
(``--points``) for:

- ``adaptive``: the library's default (a probe of 6 forward passes, then 47
  gradients; on these evenly moving logits, cells that follow the switches the
  probe counted, refined where the integrand jumped); ``gl50``/``mid50``: Gauss-Legendre
  and the midpoint rule with 50 gradients, and ``gl45``/``mid45``/``mid49`` with
  fewer (what a probe's cost leaves), to show how much a family's median moves
  with a few samples;
- ``blend49``: the midpoint rule on cells a quarter of the way from uniform to
  Chebyshev (crowded at both ends, as Gauss-Legendre's nodes are);
- ``curvature45``: the midpoint rule on cells of equal mass under a density
  read off a 16-point probe of the logit: ``sqrt`` of its second differences
  (where the slope changes), a 30% uniform share;
- ``trisect49``: 25 midpoint cells, then two rounds that split in three the
  cells whose integrand differs most from their neighbours' (times the cell's
  width squared), reusing every sample: 49 gradients;
- ``oracle49``: the midpoint rule on cells of equal mass under ``sqrt`` of the
  integrand's jump activity (squared differences on a 4096-point scan, in 64
  bins, a 30% uniform share): what knowing where the gradient jumps would buy;
  not a rule one can afford.

Suites: ``captum_idg.testing.piecewise_linear_suite`` and
``held_out_piecewise_suite``, ``unseen`` (:func:`unseen_suite`, two families
no choice saw until the probe's size of 2026-12-07 was chosen on seeds 5-7 of
it) and ``fresh-cnn`` (:func:`fresh_cnn_suite`, two more that no choice saw),
and ``fresh-relu``: the deep ReLU MLPs of
``fresh_suite``. The table gives each rule's median error over the family's
cases divided by the better median of ``gl50`` and ``mid50``. ``--ig``: the
same for IG (``adaptive`` is :class:`AdaptiveIntegratedGradients`).

    python benchmarks/piecewise_rules.py --seeds 8,9 --cases 12
    python benchmarks/piecewise_rules.py --seeds 0 --suites unseen --cases 8 --points 4096
    python benchmarks/piecewise_rules.py --seeds 0 --suites fresh-cnn --points 4096 --probes 10
"""

import argparse
import json
import math
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from tolerance_honesty import BOOTSTRAP_LEVEL, ratio_to_better  # benchmarks/ is on sys.path
from torch import Tensor, nn
from torchvision.models import alexnet, resnet18, squeezenet1_1

from captum_idg import AdaptiveIntegratedGradients, IntegratedDecisionGradients
from captum_idg.attr.schedules import riemann_schedule
from captum_idg.testing import (
    PathCase,
    dense_path_reference,
    fresh_suite,
    held_out_piecewise_suite,
    piecewise_linear_suite,
)


class TemporalCNN(nn.Module):
    r"""A 1-D CNN on a 2-channel series of 128 steps: convolution, leaky ReLU and
    average pooling, then convolution, hardtanh and max pooling, then a linear logit."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(2, 16, 7, padding=3), nn.LeakyReLU(0.2), nn.AvgPool1d(2),
            nn.Conv1d(16, 16, 5, padding=2), nn.Hardtanh(-2.0, 2.0), nn.MaxPool1d(2),
            nn.Flatten(), nn.Linear(16 * 32, 1))

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


def seeded(base: int, seed: int, case: int) -> torch.Generator:
    r"""The generator of a suite's case (its input), torch's global seed set the
    same way (its weights)."""
    torch.manual_seed(base + seed * 100_000 + case)
    return torch.Generator().manual_seed(base + seed * 100_000 + case)


def unseen_suite(seed: int, n_cases: int) -> List[PathCase]:
    r"""Families no default was chosen on, in turn: torchvision's ResNet-18 (random
    weights, batch norm in eval mode with random statistics, 10 classes, class 0)
    on a 32 x 32 image, and :class:`TemporalCNN` on a random walk; float64."""
    cases = []
    for i in range(n_cases):
        g = seeded(7_000_000, seed, i)
        if i % 2 == 0:
            model: nn.Module = resnet18(num_classes=10)
            for module in model.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.running_mean.normal_(0, 0.1)
                    module.running_var.uniform_(0.5, 1.5)
            x = torch.randn(3, 32, 32, generator=g, dtype=torch.float64)
            kind = "resnet18"
        else:
            model, kind = TemporalCNN(), "temporal-cnn"
            x = torch.randn(2, 128, generator=g, dtype=torch.float64).cumsum(dim=1) / 4
        cases.append(PathCase(kind, model.double().eval(), x, 0))
    return cases


def fresh_cnn_suite(seed: int, n_cases: int) -> List[PathCase]:
    r"""Two more families no default was chosen on, in turn: torchvision's AlexNet
    (its own random initialisation) and SqueezeNet 1.1 (biases drawn from N(0,
    0.05), which it initialises to 0: a network without biases is linear along a
    path from 0), 10 classes, on a 64 x 64 image, the class of the largest logit
    (SqueezeNet's logits pass a ReLU, and are 0 for most classes); float64."""
    cases = []
    for i in range(n_cases):
        g = seeded(8_000_000, seed, i)
        if i % 2 == 0:
            model: nn.Module = alexnet(num_classes=10)
            kind = "alexnet"
        else:
            model, kind = squeezenet1_1(num_classes=10), "squeezenet"
            for module in model.modules():
                if isinstance(module, nn.Conv2d):
                    nn.init.normal_(module.bias, 0, 0.05)
        x = torch.randn(3, 64, 64, generator=g, dtype=torch.float64)
        model = model.double().eval()
        with torch.no_grad():
            target = int(model(x[None]).argmax())
        cases.append(PathCase(kind, model, x, target))
    return cases


SUITES = {"piecewise": piecewise_linear_suite, "heldout": held_out_piecewise_suite,
          "unseen": unseen_suite, "fresh-cnn": fresh_cnn_suite,
          "fresh-relu": lambda seed, n: [c for c in fresh_suite(seed, n) if c.kind == "relu"]}
Rule = Tuple[Tensor, Tensor]  # (alphas, weights), float64


INTEGRAND = "idg"  # or "ig": see --ig


def integrand(case: PathCase, alphas: Tensor, chunk: int = 1024) -> Tensor:
    r"""The raw IDG integrand ``x * grad F * dF/da`` (IG's ``x * grad F`` where
    ``INTEGRAND`` is ``"ig"``) at ``alphas``, flattened ``(k, features)``."""
    rows = []
    for part in alphas.split(chunk):
        points = (part.view(-1, *[1] * case.x.dim()) * case.x).requires_grad_()
        (grads,) = torch.autograd.grad(case.model(points)[:, case.target].sum(), points)
        rate = (grads * case.x).flatten(1).sum(dim=1, keepdim=True)
        rows.append((grads * case.x).flatten(1) * (1.0 if INTEGRAND == "ig" else rate))
    return torch.cat(rows)


def cells(edges: Tensor) -> Rule:
    r"""The midpoint rule on the cells between ``edges``."""
    return (edges[1:] + edges[:-1]) / 2, edges.diff()


def uniform(n: int) -> Tensor:
    return torch.linspace(0, 1, n + 1, dtype=torch.float64)


def blended(n: int, share: float) -> Tensor:
    chebyshev = (1 - torch.cos(math.pi * torch.arange(n + 1, dtype=torch.float64) / n)) / 2
    return (1 - share) * uniform(n) + share * chebyshev


def equal_mass(grid: Tensor, density: Tensor, n: int) -> Tensor:
    r"""Edges of ``n`` cells of equal mass under ``density``, constant on the
    intervals of ``grid``, mixed with a 30% uniform share."""
    density = density / (density * grid.diff()).sum().clamp(min=1e-300)
    mass = (0.7 * density + 0.3) * grid.diff()
    cumulative = torch.cat([mass.new_zeros(1), mass.cumsum(0)])
    targets = torch.linspace(0, 1, n + 1, dtype=torch.float64) * cumulative[-1]
    return torch.from_numpy(np.interp(targets.numpy(), cumulative.numpy(), grid.numpy()))


def curvature(case: PathCase, n: int, probe: int = 16) -> Rule:
    grid = uniform(probe - 1)
    with torch.no_grad():
        logits = case.model(grid.view(-1, *[1] * case.x.dim()) * case.x)[:, case.target]
    bends = (logits.diff() / grid.diff()).diff().abs()
    activity = torch.zeros(probe - 1, dtype=torch.float64)
    activity[:-1] += bends / 2
    activity[1:] += bends / 2
    return cells(equal_mass(grid, (activity / grid.diff()).sqrt(), n))


def oracle(case: PathCase, n: int, scan: int = 4096, bins: int = 64) -> Rule:
    alphas = (torch.arange(scan, dtype=torch.float64) + 0.5) / scan
    jumps = integrand(case, alphas).diff(dim=0).pow(2).sum(dim=1)
    where = (alphas[:-1] * bins).long().clamp(max=bins - 1)
    activity = torch.zeros(bins, dtype=torch.float64).index_add_(0, where, jumps)
    return cells(equal_mass(uniform(bins), activity.sqrt(), n))


def trisected(case: PathCase, first: int, rounds: int, total: int) -> Tensor:
    r"""Raw IDG from ``first`` midpoint cells and ``rounds`` rounds of splitting the
    busiest cells in three (the middle third keeps its sample), ``total`` gradients."""
    low, width = uniform(first)[:-1].clone(), uniform(first).diff()
    alphas = low + width / 2
    values = integrand(case, alphas)
    left = total - first
    for done in range(rounds):
        order = alphas.argsort()
        steps = values[order].diff(dim=0).pow(2).sum(dim=1)
        activity = torch.zeros_like(alphas)
        activity[order[:-1]] += steps / 2
        activity[order[1:]] += steps / 2
        split = min(len(alphas), left // 2 // (rounds - done))
        chosen = (activity * width ** 2).topk(split).indices
        third = width[chosen] / 3
        new_low = torch.cat([low[chosen], low[chosen] + 2 * third])
        width[chosen], low[chosen] = third, low[chosen] + third
        low, width = torch.cat([low, new_low]), torch.cat([width, third, third])
        new = new_low + torch.cat([third, third]) / 2
        alphas, values = torch.cat([alphas, new]), torch.cat([values, integrand(case, new)])
        left -= 2 * split
    return (values * width[:, None]).sum(dim=0)


def errors(case: PathCase, points: int, probes: Tuple[int, ...] = ()) -> Dict[str, float]:
    reference = dense_path_reference(case.model, case.x, torch.zeros_like(case.x), case.target,
                                     points, 1024)[INTEGRAND == "idg"].flatten()
    scale = float(reference.norm())

    def error(estimate: Tensor) -> float:
        return float((estimate.flatten() - reference).norm()) / scale

    def by(rule: Rule) -> float:
        alphas, weights = rule
        return error((integrand(case, alphas) * weights[:, None]).sum(dim=0))

    gauss: Callable[[int], Rule] = lambda n: tuple(  # type: ignore[assignment]  # noqa: E731
        t[:, 0] for t in riemann_schedule("gausslegendre", n, 1))
    def adaptive(n_probe_steps: Optional[int] = None) -> float:
        explainer = (AdaptiveIntegratedGradients if INTEGRAND == "ig"
                     else IntegratedDecisionGradients)(case.model)
        raw = {} if INTEGRAND == "ig" else dict(rescale=False)
        return error(explainer.attribute(case.x[None], target=case.target, n_steps=50,
                                         n_probe_steps=n_probe_steps, **raw)[0])

    return dict(adaptive=adaptive(), **{f"probe{k}": adaptive(k) for k in probes},
                gl50=by(gauss(50)), mid50=by(cells(uniform(50))),
                gl45=by(gauss(45)), mid45=by(cells(uniform(45))), mid49=by(cells(uniform(49))),
                blend49=by(cells(blended(49, 0.25))), curvature45=by(curvature(case, 45)),
                trisect49=error(trisected(case, 25, 2, 49)), oracle49=by(oracle(case, 49)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="8,9")
    parser.add_argument("--suites", default="piecewise,heldout")
    parser.add_argument("--cases", type=int, default=12, help="cases per suite and seed")
    parser.add_argument("--points", type=int, default=16384,
                        help="midpoint samples of the dense reference")
    parser.add_argument("--rows", type=Path, default=None,
                        help="also write every case's errors to this JSON-lines file")
    parser.add_argument("--ig", action="store_true",
                        help="IG's integrand and adaptive IG instead of raw IDG")
    parser.add_argument("--probes", default="",
                        help="also adaptive with these n_probe_steps (comma-separated): "
                             "column probeK")
    args = parser.parse_args()
    probes = tuple(int(k) for k in args.probes.split(",") if k)
    global INTEGRAND
    INTEGRAND = "ig" if args.ig else "idg"
    torch.manual_seed(0)
    rows: Dict[str, List[Dict[str, float]]] = {}
    for seed in map(int, args.seeds.split(",")):
        for suite in args.suites.split(","):
            for case in SUITES[suite](seed, args.cases):
                rows.setdefault(case.kind, []).append(errors(case, args.points, probes))
                if args.rows is not None:
                    with args.rows.open("a") as out:
                        out.write(json.dumps(dict(seed=seed, kind=case.kind,
                                                  **rows[case.kind][-1])) + "\n")
    names = list(next(iter(rows.values()))[0])
    print(f"{INTEGRAND.upper()}, seeds {args.seeds}, suites {args.suites}: median error / the "
          "better of gl50 and mid50")
    print(f"{'family':13}" + "".join(f"{n:>12}" for n in names) + f"{'better':>9}{'n':>4}"
          + f"  adaptive's {BOOTSTRAP_LEVEL:.0%} bootstrap interval")
    for kind, runs in rows.items():
        medians = {n: float(np.median([r[n] for r in runs])) for n in names}
        better = min(medians["gl50"], medians["mid50"])
        _, low, high = ratio_to_better(np.array(
            [[r["adaptive"], r["gl50"], r["mid50"]] for r in runs]))
        print(f"{kind:13}" + "".join(f"{medians[n] / better:12.2f}" for n in names)
              + f"{better:9.1e}{len(runs):4d}  {low:.2f}-{high:.2f}")


if __name__ == "__main__":
    main()
