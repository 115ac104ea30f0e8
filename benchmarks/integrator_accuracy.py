"""Integration error against gradient evaluations: fixed rules, adaptive sampling, tolerance.

For every case and method, the relative error ``||A - A_ref|| / ||A_ref||`` of
the attributions (IG's or IDG's) against a dense reference, and the cost in
gradient evaluations with the probe's forward passes counted as
``schedules.PROBE_COST`` (half) of one each, as adaptive sampling charges them.

- ``--suite``: float64 models of ``captum_idg.testing.saturating_suite`` (logistic
  gates anywhere on the path, two-gate staircases, softplus MLPs, tanh nets),
  reference: 20 000 midpoint samples of the exact integrand.
- ``--suite --fresh``: the families of ``captum_idg.testing.fresh_suite`` (deep
  softplus nets with large weights, single sharp gates, ReLU MLPs, residual
  SiLU MLPs), which the adaptive defaults were not built on; same reference.
- ``--photos``: the scikit-image photos with EfficientNet-Lite0/1, reference:
  1024 midpoint steps (float32, as the models run).

Rows are appended to ``OUT/rows.jsonl`` as they finish and a rerun skips them;
``--report`` rebuilds the tables and plots from that file.

    python benchmarks/integrator_accuracy.py --suite --out docs/integrator
    python benchmarks/integrator_accuracy.py --photos --out docs/integrator
    python benchmarks/integrator_accuracy.py --report --out docs/integrator
"""

import argparse
import json
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from captum.attr import IntegratedGradients  # noqa: E402
from torch import Tensor, nn  # noqa: E402
from tqdm import tqdm  # noqa: E402

from captum_idg import AdaptiveIntegratedGradients, IntegratedDecisionGradients  # noqa: E402
from captum_idg.attr.schedules import PROBE_COST  # noqa: E402
from captum_idg.testing import (  # noqa: E402
    FRESH_KINDS,
    KINDS,
    dense_path_reference,
    fresh_suite,
    saturating_suite,
)

STEPS = (8, 16, 32, 64)
TOLERANCES = (1e-2, 1e-3, 1e-4)
METHODS = {  # name: (integrand, explainer class, attribute keywords)
    "IG midpoint": ("IG", IntegratedGradients, dict(method="riemann_middle")),
    "IG Gauss-Legendre": ("IG", IntegratedGradients, dict(method="gausslegendre")),
    "IG adaptive": ("IG", AdaptiveIntegratedGradients, {}),
    "IDG midpoint": ("IDG", IntegratedDecisionGradients, dict(method="riemann_middle")),
    "IDG Gauss-Legendre": ("IDG", IntegratedDecisionGradients, dict(method="gausslegendre")),
    "IDG adaptive": ("IDG", IntegratedDecisionGradients, {}),
}
UNIFORM = {"IG": "IG midpoint", "IDG": "IDG midpoint"}
GAUSS = {"IG": "IG Gauss-Legendre", "IDG": "IDG Gauss-Legendre"}
FLOOR = 1e-6  # errors below this count as equal (float32 rounding, the references' own error)
REACH = {"suite": (1e-2, 1e-4), "photos": (1e-1, 1e-2)}  # error targets of the cost table


class Counting(nn.Module):
    """Counts rows through the model with grad (gradient evaluations) and without."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.grad_rows, self.probe_rows = model, 0, 0

    def forward(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled():
            self.grad_rows += x.shape[0]
        else:
            self.probe_rows += x.shape[0]
        return self.model(x)


def runs(cap: int = 512) -> Iterator[Tuple[str, str, int, Dict]]:
    """``(method label, integrand, n_steps or cap, keywords)`` of every run."""
    for name, (integrand, _, kwargs) in METHODS.items():
        for n in STEPS:
            yield name, integrand, n, kwargs
    for integrand in ("IG", "IDG"):
        for tolerance in TOLERANCES:
            yield f"{integrand} tolerance {tolerance:g}", integrand, cap, dict(tolerance=tolerance)


def explainer_class(label: str, integrand: str) -> Callable:
    if label in METHODS:
        return METHODS[label][1]
    return IntegratedDecisionGradients if integrand == "IDG" else AdaptiveIntegratedGradients


def measure(counting: Counting, x: Tensor, target: int, references: Dict[str, Tensor],
            done: set, key: Tuple, cap: int) -> Iterator[Dict]:
    """The rows of every run on one example ``x`` (batch of 1)."""
    for label, integrand, n, kwargs in runs(cap):
        if (*key, label, n) in done:
            continue
        explainer = explainer_class(label, integrand)(counting)
        counting.grad_rows = counting.probe_rows = 0
        start = time.perf_counter()
        raw = dict(rescale=False) if integrand == "IDG" else {}  # the references are raw
        attribution = explainer.attribute(x, target=target, n_steps=n, **raw,
                                          **kwargs).detach()[0]
        seconds = time.perf_counter() - start
        reference = references[integrand]
        error = float((attribution - reference).norm() / reference.norm())
        cosine = float(torch.nn.functional.cosine_similarity(
            attribution.flatten().double(), reference.flatten().double(), dim=0))
        yield dict(label=label, integrand=integrand, n_steps=n, error=error, cosine=cosine,
                   cost=counting.grad_rows + PROBE_COST * counting.probe_rows,
                   evaluations=counting.grad_rows, probe=counting.probe_rows, seconds=seconds)


def suite_cases(seed: int, count: int, fresh: bool = False
                ) -> Iterator[Tuple[Tuple, Counting, Tensor, int, Dict]]:
    for i, case in enumerate((fresh_suite if fresh else saturating_suite)(seed, count)):
        ig, idg = dense_path_reference(case.model, case.x, torch.zeros_like(case.x), case.target)
        yield ("suite", case.kind, f"{seed}-{i}"), Counting(case.model), case.x[None], \
            case.target, {"IG": ig, "IDG": idg}


def photo_cases(models: List[str], reference_steps: int, photos: int) -> Iterator[Tuple]:
    from captum_idg.attr.schedules import riemann_schedule
    from captum_idg.evaluation.images import demo_images, prepare
    from captum_idg.evaluation.models import load_model
    from captum_idg.paths import ModelOnPath, StraightLinePath, summed_gradients

    for name in models:
        model = load_model(name)
        for photo in demo_images()[:photos]:
            x = model.normalise(prepare(photo.pixels, model.size)[None])
            with torch.no_grad():
                target = int(model.module(x).argmax())
            path = StraightLinePath((x,), (torch.zeros_like(x),))
            on_path = ModelOnPath(model.module, summed_gradients, path, target=target, rows=32)
            alphas, weights = riemann_schedule("riemann_middle", reference_steps, 1)
            ig, idg = torch.zeros_like(x[0], dtype=torch.float64), torch.zeros_like(
                x[0], dtype=torch.float64)
            for steps, grads, _ in on_path.gradients(alphas):
                rate = path.rate_of_change(grads, path.directions).double()
                g = grads[0][:, 0].double()
                w = weights[steps, 0].view(-1, 1, 1, 1)
                ig += (w * g).sum(0)
                idg += (w * rate[:, 0].view(-1, 1, 1, 1) * g).sum(0)
            d = x[0].double()
            yield ("photos", name, photo.name), Counting(model.module), x, target, \
                {"IG": (d * ig).float(), "IDG": (d * idg).float()}


def collect(out: Path, cases: Iterator, total: int, cap: int) -> None:
    path = out / "rows.jsonl"
    done = set()
    if path.exists():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            done.add((row["suite"], row["kind"], row["case"], row["label"], row["n_steps"]))
    per_case = sum(1 for _ in runs(cap))
    with open(path, "a") as f, tqdm(total=total * per_case, desc="runs") as bar:
        for key, counting, x, target, references in cases:
            for row in measure(counting, x, target, references, done, key, cap):
                f.write(json.dumps(dict(suite=key[0], kind=key[1], case=key[2], **row)) + "\n")
                f.flush()
                bar.update()


def load(out: Path) -> List[Dict]:
    return [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]


def report(rows: List[Dict], suite: str) -> str:
    """Medians, win shares and tolerance rows of one suite, as text."""
    rows = [r for r in rows if r["suite"] == suite]
    if not rows:
        return ""
    by: Dict[Tuple[str, int], Dict[str, Dict]] = {}
    for r in rows:
        by.setdefault((r["label"], r["n_steps"]), {})[(r["kind"], r["case"])] = r
    kinds = sorted({r["kind"] for r in rows},
                   key=lambda k: (KINDS + FRESH_KINDS + (k,)).index(k))
    lines = [f"{suite}: {len({(r['kind'], r['case']) for r in rows})} cases",
             f"{'method':20} {'n':>3} {'cost':>6} {'median':>8} {'p90':>8} "
             f"{'<=1.05 uniform':>14} {'<=GL*':>6} {'cosine':>7}  "
             + " ".join(f"{k:>9}" for k in kinds)]
    for label in METHODS:
        integrand = METHODS[label][0]
        for n in STEPS:
            mine = by.get((label, n))
            if not mine:
                continue
            keys = sorted(mine)
            error = np.array([mine[k]["error"] for k in keys])
            uniform = np.array([by[(UNIFORM[integrand], n)][k]["error"] for k in keys])
            gauss = np.array([by[(GAUSS[integrand], n)][k]["error"] for k in keys])
            per_kind = " ".join(
                f"{np.median([mine[k]['error'] for k in keys if k[0] == kind]):9.1e}"
                for kind in kinds)
            lines.append(
                f"{label:20} {n:3d} {np.mean([mine[k]['cost'] for k in keys]):6.1f} "
                f"{np.median(error):8.1e} {np.quantile(error, 0.9):8.1e} "
                f"{np.mean(error <= 1.05 * uniform):14.2f} "
                f"{np.mean(error <= np.maximum(1.05 * gauss, FLOOR)):6.2f} "
                f"{np.mean([mine[k]['cosine'] for k in keys]):7.3f}  {per_kind}")
    lines.append(f"{'tolerance':20} {'cap':>3} {'cost':>6} {'median':>8} {'p90':>8} "
                 f"{'max':>8} {'med cost':>8}")
    for (label, n), mine in sorted(by.items()):
        if "tolerance" in label:
            error = np.array([r["error"] for r in mine.values()])
            cost = np.array([r["cost"] for r in mine.values()])
            lines.append(f"{label:20} {n:3d} {cost.mean():6.1f} {np.median(error):8.1e} "
                         f"{np.quantile(error, 0.9):8.1e} {error.max():8.1e} "
                         f"{np.median(cost):8.1f}")
    seconds = {label: np.median([r["seconds"] / r["cost"] for (m, _), rows_ in by.items()
                                 if m == label for r in rows_.values()]) for label in METHODS}
    for target in REACH[suite]:
        lines.append(f"{'cost to reach':20} {f'{target:g} median error':>18} "
                     f"{'x midpoint':>11} {'x Captum IG':>12} {'time x Captum IG':>17}")
        reach = {label: _cost_to_reach(by, label, target) for label in METHODS}
        for label, (cost, extrapolated) in reach.items():
            integrand = METHODS[label][0]
            uniform, gauss = reach[UNIFORM[integrand]][0], reach[GAUSS[integrand]][0]
            time_ratio = cost * seconds[label] / (gauss * seconds[GAUSS[integrand]])
            lines.append(f"{label:20} {('~' if extrapolated else '') + f'{cost:.0f}':>18} "
                         f"{cost / uniform:11.2f} {cost / gauss:12.2f} {time_ratio:17.2f}")
    lines.append(f"cost: gradient evaluations + probe forward passes x {PROBE_COST:g} (mean); "
                 "<=1.05 uniform: share of cases within 5% of the midpoint rule's error or better; "
                 f"<=GL*: the same against Gauss-Legendre, errors below {FLOOR:g} counting "
                 "as equal; cost to reach: '~' where extrapolated from the last two step "
                 "counts; Captum IG is Gauss-Legendre; time from the seconds per evaluation "
                 "measured in the same runs")
    return "\n".join(lines)


def _cost_to_reach(by: Dict, label: str, target: float) -> Tuple[float, bool]:
    """Cost at which ``label``'s median error crosses ``target``, interpolated
    log-log between measured step counts (extrapolated from the last two when
    none reaches it, marked True); Captum IG's figure is the Gauss-Legendre one."""
    points = [(np.mean([r["cost"] for r in by[(label, n)].values()]),
               np.median([r["error"] for r in by[(label, n)].values()]))
              for n in STEPS if (label, n) in by]
    for (c0, e0), (c1, e1) in zip(points, points[1:]):
        if e0 > target >= e1:
            t = (np.log(target) - np.log(e0)) / (np.log(e1) - np.log(e0))
            return float(np.exp(np.log(c0) + t * (np.log(c1) - np.log(c0)))), False
    if points[0][1] <= target:
        return float(points[0][0]), False
    (c0, e0), (c1, e1) = points[-2], points[-1]
    slope = (np.log(e1) - np.log(e0)) / (np.log(c1) - np.log(c0))
    return float(np.exp(np.log(c1) + (np.log(target) - np.log(e1)) / slope)), True


def plot(rows: List[Dict], suite: str, path: Path) -> None:
    """Median (solid) and 90th-percentile (dashed) error against mean cost, IG and
    IDG side by side."""
    rows = [r for r in rows if r["suite"] == suite]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for axis, integrand in zip(axes, ("IG", "IDG")):
        labels = [m for m in METHODS if METHODS[m][0] == integrand]
        labels += [f"{integrand} tolerance {t:g}" for t in TOLERANCES]
        for label in labels:
            points = sorted({r["n_steps"] for r in rows if r["label"] == label})
            mine = [[r for r in rows if r["label"] == label and r["n_steps"] == n]
                    for n in points]
            if not mine or not mine[0]:
                continue
            if "tolerance" in label:
                cost = np.mean([r["cost"] for r in mine[0]])
                axis.plot(cost, np.median([r["error"] for r in mine[0]]), "*", ms=11,
                          label=label)
            else:
                cost = [np.mean([r["cost"] for r in m]) for m in mine]
                line, = axis.plot(cost, [np.median([r["error"] for r in m]) for m in mine],
                                  "o-", label=label)
                axis.plot(cost, [np.quantile([r["error"] for r in m], 0.9) for m in mine],
                          "--", color=line.get_color(), alpha=0.7)
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel(f"gradient evaluations (probe included at {PROBE_COST:g} each)")
        axis.set_title(f"{integrand}: relative error, median (solid) and 90th percentile "
                       "(dashed)", fontsize=10)
        axis.grid(alpha=0.3, which="both")
        axis.legend(fontsize=7)
    axes[0].set_ylabel("||A - A_ref|| / ||A_ref||")
    figure.suptitle(f"Integration error against cost ({suite})")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", action="store_true", help="the saturating float64 models")
    parser.add_argument("--fresh", action="store_true",
                        help="with --suite: the fresh families (testing.fresh_suite)")
    parser.add_argument("--photos", action="store_true", help="EfficientNet-Lite on photos")
    parser.add_argument("--report", action="store_true", help="tables and plots only")
    parser.add_argument("--seed", type=int, default=11, help="suite seed (tuning used 0-5)")
    parser.add_argument("--cases", type=int, default=120)
    parser.add_argument("--models", nargs="+", default=["efficientnet_lite0",
                                                        "efficientnet_lite1"])
    parser.add_argument("--reference-steps", type=int, default=1024)
    parser.add_argument("--photos-per-model", type=int, default=3,
                        help="scikit-image photos per model (a CPU run takes ~1 h for 3)")
    parser.add_argument("--cap", type=int, default=512,
                        help="n_steps of the tolerance runs (the photos use half)")
    parser.add_argument("--out", type=Path, default=Path("integrator-out"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.suite:
        collect(args.out, suite_cases(args.seed, args.cases, args.fresh), args.cases, args.cap)
    if args.photos:
        collect(args.out, photo_cases(args.models, args.reference_steps, args.photos_per_model),
                args.photos_per_model * len(args.models), args.cap // 2)
    rows = load(args.out)
    text = "\n\n".join(t for t in (report(rows, s) for s in ("suite", "photos")) if t)
    (args.out / "table.txt").write_text(text + "\n")
    print(text)
    for suite in ("suite", "photos"):
        if any(r["suite"] == suite for r in rows):
            plot(rows, suite, args.out / f"{suite}.png")


if __name__ == "__main__":
    main()
