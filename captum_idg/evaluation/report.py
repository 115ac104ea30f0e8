"""Tables with paired intervals and pictures, rebuilt from a run's rows
(:mod:`captum_idg.evaluation.results`) whenever asked."""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from captum.attr import visualization  # noqa: E402
from torch import Tensor  # noqa: E402

from captum_idg.evaluation.results import (  # noqa: E402
    Curves,
    Record,
    read_rows,
    read_run_curves,
)
from captum_idg.evaluation.stats import (  # noqa: E402
    group_records,
    mean_interval,
    photo,
    sign_test,
)

BASELINE_METHOD = "IG"  # paired differences are taken against it
TABLE_NOTE = ("Mean AUC over images with 95% bootstrap intervals. Insertion: higher is better; "
              "deletion: lower is better;\n* marks the best of a column; rows sorted by "
              "insertion - deletion (higher is better).")
PAIRED_NOTE = ("Image by image, (insertion - deletion) of the method minus that of {baseline}: "
               "above 0 the method is better.\nIntervals: 95% bootstrap over images and over "
               "photos (views of a photo resampled together); d ins, d del: mean differences; "
               "sign p: two-sided sign test.")
PHOTO_NOTE = ("Mean paired difference against {baseline} on each photo's views (their number in "
              "brackets): above 0 the method is better.")


def summary_table(records: Sequence[Record]) -> str:
    """Mean insertion and deletion AUC with 95% intervals, per model and method,
    best first by insertion - deletion; the best of each column is starred."""
    lines = [f"{'model':20} {'method':22} {'n':>4} {'insertion (95% CI)':>24} "
             f"{'deletion (95% CI)':>24} {'ins-del':>7} {'s/image':>8}"]
    for model, methods in group_records(records).items():
        rows = []
        for method, by_image in methods.items():
            group = list(by_image.values())
            ins = mean_interval([r.insertion for r in group])
            dele = mean_interval([r.deletion for r in group])
            seconds = float(np.mean([r.seconds for r in group]))
            rows.append((method, len(group), ins, dele, seconds))
        rows.sort(key=lambda row: row[3][0] - row[2][0])
        best_ins = max(row[2][0] for row in rows)
        best_del = min(row[3][0] for row in rows)
        lines.append("-" * len(lines[0]))
        for method, n, ins, dele, seconds in rows:
            lines.append(
                f"{model:20} {method:22} {n:4d} {_cell(ins, ins[0] == best_ins):>24} "
                f"{_cell(dele, dele[0] == best_del):>24} {ins[0] - dele[0]:7.3f} {seconds:8.2f}"
            )
    return "\n".join(lines)


@dataclass
class Paired:
    """One method against the baseline on the images both have."""

    model: str
    method: str
    scores: Dict[str, float]  # image -> insertion - deletion, method minus baseline
    d_ins: float
    d_del: float
    interval: Tuple[float, float, float]  # mean, 95% bootstrap interval over images
    photo_interval: Tuple[float, float, float]  # whole photos resampled

    @property
    def wins(self) -> int:
        return sum(s > 0 for s in self.scores.values())

    @property
    def losses(self) -> int:
        return sum(s < 0 for s in self.scores.values())


def paired(records: Sequence[Record], baseline: str = BASELINE_METHOD) -> List[Paired]:
    """Every method against ``baseline`` on the images both have, per model,
    best mean paired difference first."""
    result = []
    for model, methods in group_records(records).items():
        reference = methods.get(baseline, {})
        rows = []
        for method, by_image in methods.items():
            images = [i for i in by_image if i in reference and method != baseline]
            if not images:
                continue
            scores = {i: by_image[i].insertion - by_image[i].deletion
                      - (reference[i].insertion - reference[i].deletion) for i in images}
            rows.append(Paired(
                model, method, scores,
                float(np.mean([by_image[i].insertion - reference[i].insertion for i in images])),
                float(np.mean([by_image[i].deletion - reference[i].deletion for i in images])),
                mean_interval(list(scores.values())),
                mean_interval(list(scores.values()), [photo(i) for i in images]),
            ))
        result += sorted(rows, key=lambda row: -row.interval[0])
    return result


def paired_table(rows: Sequence[Paired]) -> str:
    """The rows of :func:`paired`: per-image paired differences of insertion -
    deletion (method minus baseline, so above 0 is better than it): mean with a 95%
    bootstrap interval over images and one over photos (views of a photo
    resampled together), the mean differences of insertion and of deletion,
    wins / losses, and a two-sided sign test (over images)."""
    lines = [f"{'model':20} {'method':22} {'pairs':>5} {'d(ins-del) (95% CI)':>26} "
             f"{'CI by photo':>18} {'d ins':>7} {'d del':>7} {'wins':>5} {'losses':>6} "
             f"{'sign p':>8}"]
    model = None
    for row in rows:
        if row.model != model:
            lines.append("-" * len(lines[0]))
            model = row.model
        (mean, low, high), (_, p_low, p_high) = row.interval, row.photo_interval
        interval = f"{mean:+.4f} [{low:+.4f}, {high:+.4f}]"
        lines.append(f"{row.model:20} {row.method:22} {len(row.scores):5d} {interval:>26} "
                     f"{f'[{p_low:+.4f}, {p_high:+.4f}]':>18} {row.d_ins:+7.3f} "
                     f"{row.d_del:+7.3f} {row.wins:5d} {row.losses:6d} "
                     f"{sign_test(row.wins, row.losses):8.2g}")
    return "\n".join(lines)


def photo_table(rows: Sequence[Paired]) -> str:
    """The mean paired difference of the rows of :func:`paired` on each photo's
    views (their number in brackets), one column per method: shows whether a
    verdict is carried by a few photos."""
    lines: List[str] = []
    for model in dict.fromkeys(row.model for row in rows):
        mine = [row for row in rows if row.model == model]
        width = max(13, *(len(row.method) for row in mine)) + 3
        lines.append(f"{model:20}" + "".join(f"{row.method:>{width}}" for row in mine))
        for name in sorted({photo(i) for row in mine for i in row.scores}):
            cells = []
            for row in mine:
                views = [s for i, s in row.scores.items() if photo(i) == name]
                cells.append(f"{np.mean(views):+.4f} ({len(views)})" if views else "-")
            lines.append(f"  {name:18}" + "".join(f"{cell:>{width}}" for cell in cells))
    return "\n".join(lines)


def plot_paired(rows: Sequence[Paired], path: Path, baseline: str = BASELINE_METHOD) -> None:
    """Each method's mean paired difference against ``baseline`` with its 95%
    intervals over images (thick) and over photos (thin), a panel per model."""
    models = list(dict.fromkeys(row.model for row in rows))
    most = max(sum(row.model == model for row in rows) for model in models)
    figure, axes = plt.subplots(1, len(models), squeeze=False, sharex=True,
                                figsize=(6.5 * len(models), 2.6 + 0.45 * most))
    for axis, model in zip(axes[0], models):
        mine = [row for row in rows if row.model == model][::-1]  # best on top
        for y, row in enumerate(mine):
            axis.plot(row.interval[1:], [y, y], color="tab:blue", linewidth=7, alpha=0.45,
                      solid_capstyle="butt", label="95% CI over images" if y == 0 else None)
            axis.plot(row.photo_interval[1:], [y, y], color="black", linewidth=1.2,
                      marker="|", markersize=10, zorder=3,
                      label="95% CI over photos" if y == 0 else None)
            axis.plot(row.interval[0], y, "o", color="tab:red", markersize=5, zorder=4,
                      label="mean" if y == 0 else None)
        axis.axvline(0.0, color="0.3", linewidth=1, linestyle="--")
        axis.set_ylim(-0.6, most - 0.4)  # the same spacing in every panel
        axis.set_yticks(range(len(mine)), [f"{row.method} ({len(row.scores)})" for row in mine])
        axis.set_xlabel(f"insertion - deletion, method minus {baseline}\n"
                        f"right of the dashed line: better than {baseline}")
        axis.set_title(model, fontsize=10)
        axis.grid(axis="x", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    figure.suptitle(f"Each method paired against {baseline}, image by image:\nmean and 95% "
                    "bootstrap intervals (images per method in brackets)", fontsize=9)
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _cell(stat: Tuple[float, float, float], best: bool) -> str:
    mean, low, high = stat
    return f"{'*' if best else ''}{mean:.3f} [{low:.3f}, {high:.3f}]"


def plot_curves(curves: Curves, model: str, path: Path,
                methods: Optional[Sequence[str]] = None) -> None:
    """Mean insertion and deletion curves of each method of ``model``, side by side."""
    mine: Dict[str, List[Tuple[List[float], List[float]]]] = {}
    for (m, _, method), named in curves.items():
        if (m == model and (methods is None or method in methods)
                and "insertion" in named and "deletion" in named):
            mine.setdefault(method, []).append((named["insertion"], named["deletion"]))
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = plt.get_cmap("tab20").colors
    n_images = max((len(v) for v in mine.values()), default=0)
    for k, (method, pairs) in enumerate(sorted(mine.items())):
        style = dict(label=f"{method} ({len(pairs)})", color=colours[2 * k % 20 + k // 10],
                     linewidth=2.2 if method == "IDG" else 1.2)
        for axis, index in zip(axes, (0, 1)):
            mean = np.mean([p[index] for p in pairs], axis=0)
            axis.plot(np.linspace(0, 1, len(mean)), mean, **style)
    for axis, name in zip(axes, ("Insertion (higher is better)", "Deletion (lower is better)")):
        axis.set_title(name)
        axis.set_xlabel("fraction of pixels")
        axis.set_ylabel("probability of the predicted class")
        axis.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="upper right")
    figure.suptitle(f"{model}: mean over up to {n_images} images")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_heatmaps(pixels: Tensor, attributions: Dict[str, Tensor], titles: Dict[str, str],
                  suptitle: str, path: Path, legend: Sequence[str] = ()) -> None:
    """The image, then each method's absolute attribution drawn by Captum over the
    image in grey with its colour bar; the titles carry the insertion and
    deletion scores, ``legend`` one line per method under the panels."""
    image = pixels.permute(1, 2, 0).cpu().numpy()
    panels = len(attributions) + 1
    columns = min(panels, 5)
    rows = -(-panels // columns)
    figure, axes = plt.subplots(rows, columns, squeeze=False,
                                figsize=(max(3.2 * columns, 8.0), 1.2 + 3.2 * rows))
    axes = axes.flatten()
    axes[0].imshow(image)
    axes[0].set_title("image", fontsize=9)
    for axis, (method, attribution) in zip(axes[1:], attributions.items()):
        values = attribution.detach().permute(1, 2, 0).cpu().numpy()
        if np.abs(values).sum() > 0:  # Captum's visualisation rejects all-zero maps
            visualization.visualize_image_attr(
                values, image, method="blended_heat_map", sign="absolute_value",
                show_colorbar=True, plt_fig_axis=(figure, axis), use_pyplot=False,
                alpha_overlay=0.6,
            )
        axis.set_title(titles[method], fontsize=9)
    for axis in axes:
        axis.axis("off")
    figure.suptitle(suptitle, fontsize=9)
    notes = ["colour over the image: |attribution| summed over channels, normalised per map; "
             "ins: insertion AUC (higher is better), del: deletion AUC (lower is better)",
             *legend]
    height = figure.get_figheight()
    figure.text(0.5, 0.01, "\n".join(notes), ha="center", va="bottom", fontsize=7.5)
    bottom = (0.25 + 0.14 * len(notes)) / height  # room for the notes under the bars
    figure.tight_layout(rect=(0, bottom, 1, 0.97))
    figure.savefig(path, dpi=100)
    plt.close(figure)


def rebuild(out: Path, baseline: str = BASELINE_METHOD) -> str:
    """Tables and plots of ``out`` from its ``results.csv`` and ``curves.jsonl``:
    writes ``table.txt``, ``paired.txt``, ``photos.txt``, ``paired.png``,
    ``curves_MODEL.png``, and the league table of every metric against IDG
    (``league.txt``, ``league_MODEL.png``); returns the text. Against another
    ``baseline`` than IG
    (a method label), the paired files are ``paired_vs_LABEL.txt`` and so on.
    Returns "" if no row was scored by any metric."""
    from captum_idg.evaluation.league import league_table, plot_league

    everything = read_rows(out)
    league = league_table(everything)
    if not league:
        return ""
    (out / "league.txt").write_text(league + "\n")
    for model in dict.fromkeys(r.model for r in everything):
        plot_league(everything, model, out / f"league_{model}.png")
    records = [r for r in everything if r.scored]
    if not records:  # scored by ROAD or the randomisation test only
        return league
    if baseline != BASELINE_METHOD and baseline not in {r.method for r in records}:
        raise ValueError(f"no rows of the method {baseline!r} in {out / 'results.csv'}")
    suffix = "" if baseline == BASELINE_METHOD else "_vs_" + re.sub(r"\W+", "_", baseline)
    text = TABLE_NOTE + "\n" + summary_table(records)
    rows = paired(records, baseline)
    pairs = PAIRED_NOTE.format(baseline=baseline) + "\n" + paired_table(rows)
    by_photo = PHOTO_NOTE.format(baseline=baseline) + "\n" + photo_table(rows)
    (out / "table.txt").write_text(text + "\n")
    (out / f"paired{suffix}.txt").write_text(pairs + "\n")
    (out / f"photos{suffix}.txt").write_text(by_photo + "\n")
    if rows:
        plot_paired(rows, out / f"paired{suffix}.png", baseline)
    curves = read_run_curves(out)
    for model in dict.fromkeys(model for model, _, _ in curves):
        plot_curves(curves, model, out / f"curves_{model}.png")
    return (f"{text}\n\nPaired against {baseline}, per image:\n{pairs}\n\n"
            f"Per photo (views in brackets):\n{by_photo}\n\n{league}")
