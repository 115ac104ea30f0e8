"""How many probe points adaptive sampling needs: accuracy against probe cost.

A probe of M points costs M forward passes without grad, about M / 3 gradient
evaluations; the schedule it yields is only as good as the logit change it
sees. For each ``n_steps`` and probe size, prints the error of adaptive IDG
(and IG) against a dense reference, divided by the error of the uniform
midpoint rule with the same ``n_steps`` (below 1: adaptive is closer).

- saturating float64 MLPs (tests/models.py), reference: dense float64 path;
- a real ImageNet model (EfficientNet-Lite0 on two bundled photos),
  reference: uniform IDG with ``--reference-steps`` steps.

The default probe, ``default_probe_steps(n_steps)``, comes from this table.

    python benchmarks/probe_size.py              # both (a few minutes on CPU)
    python benchmarks/probe_size.py --no-real    # saturating models only
"""

import argparse
import math
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from schedule_accuracy import GAINS, SEEDS, quadrature, saturating_cases  # noqa: E402

from captum_idg import (  # noqa: E402
    IntegratedDecisionGradients,
    adaptive_schedule,
    default_probe_steps,
    uniform_schedule,
)

STEPS = (16, 32, 50, 128)


def probe_sizes(n_steps: int) -> List[int]:
    return sorted({4, 6, 8, default_probe_steps(n_steps), n_steps // 2, n_steps})


def geomean(values: List[float]) -> float:
    return math.exp(sum(map(math.log, values)) / len(values))


def saturating_models() -> Dict[Tuple[str, int, int], List[float]]:
    ratios: Dict[Tuple[str, int, int], List[float]] = {}
    for model, x, target, references in saturating_cases():
        for n in STEPS:
            alphas, weights = uniform_schedule(n, 1)
            uniform = quadrature(model, x, target, alphas[:, 0], weights[:, 0])
            for m in probe_sizes(n):
                grid = torch.linspace(0, 1, m, dtype=torch.float64)
                probe = model(grid[:, None] * x)[:, target : target + 1].detach()
                alphas, weights = adaptive_schedule(probe, n)
                adaptive = quadrature(model, x, target, alphas[:, 0], weights[:, 0])
                for name, ref, a, u in zip(("IG", "IDG"), references, adaptive, uniform):
                    ratio = ((a - ref).norm() / (u - ref).norm()).item()
                    ratios.setdefault((name, n, m), []).append(ratio)
    return ratios


def real_model(reference_steps: int) -> Dict[Tuple[str, int, int], List[float]]:
    from captum_idg.evaluation.images import demo_images, prepare
    from captum_idg.evaluation.models import load_model

    model = load_model("efficientnet_lite0")
    photos = [im for im in demo_images() if im.name in ("chelsea", "rocket")]
    x = model.normalise(torch.stack([prepare(im.pixels, model.size) for im in photos]))
    with torch.no_grad():
        target = model.module(x).argmax(dim=1)
    idg = IntegratedDecisionGradients(model.module)

    def error(attributions: torch.Tensor) -> torch.Tensor:
        return (attributions - reference).flatten(1).norm(dim=1)

    reference = idg.attribute(x, target=target, n_steps=reference_steps,
                              sampling="uniform", internal_batch_size=64)
    ratios: Dict[Tuple[str, int, int], List[float]] = {}
    for n in (16, 50):
        uniform = error(idg.attribute(x, target=target, n_steps=n, sampling="uniform",
                                      internal_batch_size=64))
        for m in probe_sizes(n):
            adaptive = error(idg.attribute(x, target=target, n_steps=n, n_probe_steps=m,
                                           internal_batch_size=64))
            ratios[("IDG", n, m)] = (adaptive / uniform).tolist()
    return ratios


def print_table(title: str, ratios: Dict[Tuple[str, int, int], List[float]]) -> None:
    print(title)
    print(f"{'method':6} {'n':>4} {'probe':>5} {'probe cost':>10} {'geomean':>8} {'worst':>7}")
    for (name, n, m), values in sorted(ratios.items()):
        marker = "  <- default" if m == default_probe_steps(n) else ""
        print(f"{name:6} {n:4d} {m:5d} {m / n / 3:9.0%} {geomean(values):8.3f} "
              f"{max(values):7.2f}{marker}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-real", action="store_true", help="skip EfficientNet-Lite0")
    parser.add_argument("--reference-steps", type=int, default=512)
    args = parser.parse_args()
    print_table(f"{len(GAINS) * len(SEEDS)} saturating MLPs: error / uniform error "
                "(probe cost ~ probe / n_steps / 3 of the gradient passes)",
                saturating_models())
    if not args.no_real:
        print_table(f"EfficientNet-Lite0, chelsea and rocket, reference: uniform IDG "
                    f"with {args.reference_steps} steps", real_model(args.reference_steps))


if __name__ == "__main__":
    main()
