"""How close adaptive schedules get to a dense float64 reference, against uniform.

For random saturating models (tests/models.py) of several steepnesses, computes
IDG and IG of one example with the uniform midpoint rule and with adaptive
schedules of several ``power`` / ``uniform_mix`` settings, each from a probe of
``n_steps`` points, and prints the error ratio adaptive / uniform (geometric
mean and worst over models; below 1 means adaptive is closer). This is where
the defaults of ``adaptive_schedule`` come from.

    python benchmarks/schedule_accuracy.py
"""

import itertools
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from models import SaturatingNet, dense_path_reference  # noqa: E402

from captum_idg import adaptive_schedule, uniform_schedule  # noqa: E402

GAINS = (3, 6, 12, 24)
SEEDS = range(6)
STEPS = (16, 32, 64)
SETTINGS = list(itertools.product((1.0, 0.5), (0.1, 0.25, 0.5)))  # (power, mix)


def quadrature(model, x, target, alphas, weights):
    """IG and IDG of one example on the schedule (alphas, weights)."""
    points = (alphas[:, None] * x).requires_grad_()
    (grads,) = torch.autograd.grad(model(points)[:, target].sum(), points)
    rate = grads @ x
    ig = x * (weights[:, None] * grads).sum(0)
    idg = x * ((weights * rate)[:, None] * grads).sum(0)
    return ig, idg


def saturating_cases():
    """``(model, x, target, (IG, IDG) references)`` of every gain and seed."""
    for gain, seed in itertools.product(GAINS, SEEDS):
        model = SaturatingNet(seed=seed, gain=gain)
        x = torch.randn(6, generator=torch.Generator().manual_seed(100 + seed),
                        dtype=torch.float64)
        target = int(model(x[None]).argmax())
        yield model, x, target, dense_path_reference(model, x, torch.zeros_like(x), target)


def main() -> None:
    ratios = {}
    for model, x, target, references in saturating_cases():
        for n in STEPS:
            alphas, weights = uniform_schedule(n, 1)
            uniform = quadrature(model, x, target, alphas[:, 0], weights[:, 0])
            grid = torch.linspace(0, 1, n, dtype=torch.float64)
            probe = model(grid[:, None] * x)[:, target : target + 1].detach()
            for power, mix in SETTINGS:
                alphas, weights = adaptive_schedule(probe, n, mix, power)
                adaptive = quadrature(model, x, target, alphas[:, 0], weights[:, 0])
                for name, ref, a, u in zip(("IG", "IDG"), references, adaptive, uniform):
                    ratio = ((a - ref).norm() / (u - ref).norm()).item()
                    ratios.setdefault((name, power, mix, n), []).append(ratio)
    print(f"{len(GAINS) * len(SEEDS)} saturating models; error ratio adaptive / uniform")
    print(f"{'method':6} {'power':>5} {'mix':>5} {'n':>4} {'geomean':>8} {'worst':>7} {'wins':>6}")
    for (name, power, mix, n), values in sorted(ratios.items()):
        geomean = math.exp(sum(map(math.log, values)) / len(values))
        wins = sum(v < 1 for v in values)
        print(f"{name:6} {power:5.2f} {mix:5.2f} {n:4d} {geomean:8.3f} {max(values):7.2f} "
              f"{wins:3d}/{len(values)}")


if __name__ == "__main__":
    main()
