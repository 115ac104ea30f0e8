"""Can the probe choose between Gauss-Legendre and the midpoint rule? A measurement.

On paths whose logit moves evenly the adaptive schedule is Gauss-Legendre. For
every case of the float64 suites and every ``n_steps``, this script measures
the relative error of IG and IDG with both rules against a dense reference, and
the statistic the probe could decide by: on the default probe's uniform grid,
the largest third difference of the logits over the largest second difference
(about ``h F'''/F''`` for a smooth logit, near 1 at a kink). It then prints, per
``n_steps``, the largest ratios of the paths where Gauss-Legendre is 10x more
accurate, the smallest of those where the midpoint rule is more accurate, and
what a switch at ``--threshold`` would gain and lose per family. Rows go to
``OUT/rule_choice.jsonl`` as they finish; a rerun appends.

A second candidate: a switch where the probe shows the logit piecewise linear,
as a ReLU network's is (:func:`straight_and_bent`). The report gives, per
family, how often it fires and what it would gain; ``--photos`` shows where it
fires on the demo photos with EfficientNet-Lite0 (ReLU6, float32).

    python benchmarks/rule_choice.py --out docs/integrator     # fresh seeds 0-1, project seed 0
    python benchmarks/rule_choice.py --report --out docs/integrator
    python benchmarks/rule_choice.py --photos
"""

import argparse
import json
import statistics
from pathlib import Path
from typing import Dict, Iterator, List

import torch
from tqdm import tqdm

from captum_idg.attr.schedules import (
    EVEN_PEAK,
    default_probe_steps,
    interval_mass,
    riemann_schedule,
)
from captum_idg.testing import PathCase, dense_path_reference, fresh_suite, saturating_suite

STEPS = (16, 32, 48, 72, 96, 128)
RULES = {"GL": "gausslegendre", "mid": "riemann_middle"}
LINEAR_TOLERANCE = 64  # straight: within this many units of the dtype's resolution


def straight_and_bent(logits: torch.Tensor) -> torch.Tensor:
    """Per column of ``logits`` ``(M, batch)`` on a uniform grid: whether some
    three neighbouring points lie on one sloped straight line (to
    ``LINEAR_TOLERANCE`` times the dtype's resolution of the largest logit)
    and some three do not: a piecewise linear logit with a kink."""
    tolerance = LINEAR_TOLERANCE * torch.finfo(logits.dtype).eps * logits.abs().amax(dim=0)
    values = logits.double()
    straight = (values[1:-1] - (values[:-2] + values[2:]) / 2).abs() <= tolerance
    sloped = (values[2:] - values[:-2]).abs() > tolerance
    return (straight & sloped).any(dim=0) & (~straight).any(dim=0)


def errors(case: PathCase, n_steps: int, references: Dict[str, torch.Tensor]) -> Dict:
    """Both rules' relative errors for IG and IDG, and the probe's statistics."""
    grid = torch.linspace(0, 1, default_probe_steps(n_steps), dtype=torch.float64)
    with torch.no_grad():
        logits = case.model(grid[:, None] * case.x)[:, case.target]
    mass = interval_mass(grid[:, None], logits[:, None])[:, 0]
    second = logits.diff(n=2).abs().max()
    third = logits.diff(n=3).abs().max()
    row = dict(n_steps=n_steps, probe=len(grid),
               even=bool((mass / grid.diff()).max() <= EVEN_PEAK),
               ratio=float(third / second) if second > 0 else 0.0,
               straight=bool(straight_and_bent(logits[:, None])))
    for name, rule in RULES.items():
        alphas, weights = (t[:, 0] for t in riemann_schedule(rule, n_steps, 1))
        points = (alphas[:, None] * case.x).requires_grad_()
        (grads,) = torch.autograd.grad(case.model(points)[:, case.target].sum(), points)
        rate = grads @ case.x
        ig = case.x * (weights[:, None] * grads).sum(dim=0)
        idg = case.x * (weights[:, None] * rate[:, None] * grads).sum(dim=0)
        for integrand, value in (("IG", ig), ("IDG", idg)):
            reference = references[integrand]
            row[f"{integrand} {name}"] = float((value - reference).norm() / reference.norm())
    return row


def cases(fresh_seeds: List[int], project_seeds: List[int], count: int) -> Iterator[tuple]:
    for seed in fresh_seeds:
        for i, case in enumerate(fresh_suite(seed, count)):
            yield f"fresh {seed}-{i}", case
    for seed in project_seeds:
        for i, case in enumerate(saturating_suite(seed, count)):
            yield f"project {seed}-{i}", case


def collect(out: Path, args: argparse.Namespace) -> None:
    total = (len(args.fresh_seeds) + len(args.project_seeds)) * args.cases
    with open(out / "rule_choice.jsonl", "a") as f:
        for name, case in tqdm(cases(args.fresh_seeds, args.project_seeds, args.cases),
                               total=total, desc="cases"):
            ig, idg = dense_path_reference(case.model, case.x, torch.zeros_like(case.x),
                                           case.target)
            for n in STEPS:
                row = dict(case=name, kind=case.kind, **errors(case, n, {"IG": ig, "IDG": idg}))
                f.write(json.dumps(row) + "\n")
                f.flush()


def report(rows: List[Dict], threshold: float) -> str:
    lines = ["n_steps probe  GL 10x better: largest ratios   midpoint better: smallest ratios"]
    for n in STEPS:
        even = [r for r in rows if r["n_steps"] == n and r["even"]]
        if not even:
            continue
        gauss = sorted(r["ratio"] for r in even
                       if r["IG mid"] > 10 * r["IG GL"] and r["IG mid"] > 1e-6)
        middle = sorted(r["ratio"] for r in even if r["IG mid"] < r["IG GL"])
        lines.append(f"{n:7d} {even[0]['probe']:5d}  "
                     f"{' '.join(f'{v:.2f}' for v in gauss[-4:]):32} "
                     f"{' '.join(f'{v:.2f}' for v in middle[:5])}   ({len(middle)} cases)")
    lines.append(f"\na switch to the midpoint rule where the ratio > {threshold} (IG, even paths, "
                 f"n_steps >= 72): GL error / midpoint error per family")
    chosen = [r for r in rows if r["n_steps"] >= 72 and r["even"] and r["ratio"] > threshold]
    for kind in sorted({r["kind"] for r in chosen}):
        gains = [r["IG GL"] / r["IG mid"] for r in chosen if r["kind"] == kind]
        better = sum(g > 1 for g in gains)
        lines.append(f"  {kind:14} {len(gains):3d} paths, midpoint better in {better:3d}: "
                     f"median {statistics.median(gains):.2f}x, best {max(gains):.3g}x, "
                     f"worst {min(gains):.3g}x")
    lines.append("\na switch to the midpoint rule where the probe shows the logit piecewise "
                 "linear (any path): paths flagged, and GL error / midpoint error there")
    for kind in sorted({r["kind"] for r in rows}):
        mine = [r for r in rows if r["kind"] == kind]
        flagged = {n: [r for r in mine if r["n_steps"] == n and r.get("straight")] for n in STEPS}
        shares = " ".join(f"{len(flagged[n]) / max(1, sum(r['n_steps'] == n for r in mine)):4.2f}"
                          for n in STEPS)
        gains = [r[f"{i} GL"] / r[f"{i} mid"] for n in STEPS for r in flagged[n]
                 for i in ("IG", "IDG") if r[f"{i} mid"] > 0]
        summary = (f"median {statistics.median(gains):.2f}x, best {max(gains):.3g}x, "
                   f"worst {min(gains):.3g}x" if gains else "")
        lines.append(f"  {kind:14} flagged at n_steps {STEPS}: {shares}   {summary}")
    return "\n".join(lines)


def photos() -> None:
    """Where the piecewise-linear test fires on the demo photos with Lite0."""
    from captum_idg.evaluation.images import demo_images, prepare
    from captum_idg.evaluation.models import load_model

    model = load_model("efficientnet_lite0")
    images = demo_images()[:5]
    x = torch.cat([model.normalise(prepare(p.pixels, model.size)[None]) for p in images])
    rows = torch.arange(len(images))
    with torch.no_grad():
        target = model.module(x).argmax(dim=1)
        for n in STEPS + (256,):
            grid = torch.linspace(0, 1, default_probe_steps(n))
            logits = torch.stack([model.module(a * x)[rows, target] for a in grid])
            flagged = [p.name for p, f in zip(images, straight_and_bent(logits)) if f]
            print(f"n_steps {n:3d} (probe {len(grid):2d}): flagged {flagged}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("integrator-out"))
    parser.add_argument("--fresh-seeds", type=int, nargs="*", default=[0, 1])
    parser.add_argument("--project-seeds", type=int, nargs="*", default=[0])
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--threshold", type=float, default=0.85)
    parser.add_argument("--report", action="store_true", help="the summary of saved rows only")
    parser.add_argument("--photos", action="store_true", help="the piecewise-linear test on photos")
    args = parser.parse_args()
    if args.photos:
        return photos()
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.report:
        collect(args.out, args)
    rows = [json.loads(line) for line in (args.out / "rule_choice.jsonl").read_text().splitlines()]
    print(report(rows, args.threshold))


if __name__ == "__main__":
    main()
