"""The league table: every method of a run against every metric, paired against IDG.

For each model, each method's mean of every metric it was scored on, and its
image-by-image difference from the reference method (IDG) on the images both
have, with 95% bootstrap intervals over images and over photos (views of a
photo resampled together), wins and losses. Differences are oriented so that
above 0 is always better than the reference: for deletion and the
randomisation test, where lower is better, the sign is turned.
"""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")  # files, never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from captum_idg.evaluation.results import Record  # noqa: E402
from captum_idg.evaluation.stats import group_records, mean_interval, photo  # noqa: E402

REFERENCE = "IDG"


@dataclass(frozen=True)
class Metric:
    name: str
    value: Callable[[Record], float]
    higher_is_better: bool


LEAGUE_METRICS = (
    Metric("insertion", lambda r: r.insertion, True),
    Metric("deletion", lambda r: r.deletion, False),
    Metric("ins-del", lambda r: r.insertion - r.deletion, True),
    Metric("road", lambda r: r.road, True),
    Metric("mprt", lambda r: r.mprt, False),
)
NOTE = ("League table: each method's mean per metric, then its paired difference from {ref} "
        "image by image, turned so that\nabove 0 is better than {ref} for every metric "
        "(insertion, ins-del, road: higher is better; deletion, mprt: lower is better).\n"
        "+ / -: the 95% interval over photos (views of a photo resampled together) is above / "
        "below 0; s/image: attribution time.")


@dataclass
class Cell:
    """One method on one metric of one model."""

    mean: float
    count: int  # images scored
    pairs: int = 0
    difference: Tuple[float, float, float] = (math.nan, math.nan, math.nan)  # over images
    by_photo: Tuple[float, float, float] = (math.nan, math.nan, math.nan)
    wins: int = 0
    losses: int = 0

    @property
    def verdict(self) -> str:
        """``+`` / ``-`` when the interval over photos is above / below 0."""
        low, high = self.by_photo[1:]
        return "+" if low > 0 else "-" if high < 0 else ""


League = Dict[str, Dict[str, Dict[str, Cell]]]  # model -> method -> metric -> cell


def league(records: Sequence[Record], reference: str = REFERENCE) -> League:
    """Every method's :class:`Cell` per metric it was scored on, per model;
    methods in the order of their first row."""
    table: League = {}
    for model, methods in group_records(records).items():
        base = methods.get(reference, {})
        table[model] = {}
        for method, by_image in methods.items():
            cells = {}
            for metric in LEAGUE_METRICS:
                values = {i: metric.value(r) for i, r in by_image.items()}
                values = {i: v for i, v in values.items() if math.isfinite(v)}
                if not values:
                    continue
                cell = Cell(float(np.mean(list(values.values()))), len(values))
                sign = 1.0 if metric.higher_is_better else -1.0
                shared = [i for i in values if i in base and math.isfinite(metric.value(base[i]))]
                if method != reference and shared:
                    diffs = [sign * (values[i] - metric.value(base[i])) for i in shared]
                    cell.pairs = len(shared)
                    cell.difference = mean_interval(diffs)
                    cell.by_photo = mean_interval(diffs, [photo(i) for i in shared])
                    cell.wins = sum(d > 0 for d in diffs)
                    cell.losses = sum(d < 0 for d in diffs)
                cells[metric.name] = cell
            if cells:
                table[model][method] = cells
    return table


def seconds_per_image(records: Sequence[Record]) -> Dict[Tuple[str, str], float]:
    """Mean attribution seconds per image of each (model, method)."""
    times: Dict[Tuple[str, str], List[float]] = {}
    for r in records:
        times.setdefault((r.model, r.method), []).append(r.seconds)
    return {key: float(np.mean(v)) for key, v in times.items()}


def league_table(records: Sequence[Record], reference: str = REFERENCE) -> str:
    """:func:`league` as text: a table of means with verdicts per model, then
    every paired difference with both intervals; "" if nothing was scored."""
    table, seconds = league(records, reference), seconds_per_image(records)
    table = {model: methods for model, methods in table.items() if methods}
    if not table:
        return ""
    lines = [NOTE.format(ref=reference), ""]
    for model, methods in table.items():
        names = [m.name for m in LEAGUE_METRICS if any(m.name in c for c in methods.values())]
        width = max(18, *(len(m) for m in methods))
        header = f"{model:20} {'method':{width}} {'n':>4}" + "".join(f"{n:>12}" for n in names)
        lines += [header + f"{'s/image':>9}", "-" * (len(header) + 9)]
        for method, cells in methods.items():
            row = f"{'':20} {method:{width}} {max(c.count for c in cells.values()):>4}"
            for name in names:
                cell = cells.get(name)
                row += f"{cell.mean:>11.3f}{cell.verdict or ' '}" if cell else f"{'-':>12}"
            lines.append(row + f"{seconds[model, method]:9.2f}")
        lines.append("")
    lines.append(f"Paired against {reference}, above 0 better than {reference}:")
    width = max([18] + [len(m) for methods in table.values() for m in methods])
    lines.append(f"{'model':20} {'method':{width}} {'metric':10} {'pairs':>5} "
                 f"{'difference (95% CI, images)':>30} {'CI by photo':>18} {'wins':>5} "
                 f"{'losses':>6}")
    for model, methods in table.items():
        for method, cells in methods.items():
            for name, cell in cells.items():
                if cell.pairs:
                    mean, low, high = cell.difference
                    lines.append(
                        f"{model:20} {method:{width}} {name:10} {cell.pairs:5d} "
                        f"{f'{mean:+.4f} [{low:+.4f}, {high:+.4f}]':>30} "
                        f"{f'[{cell.by_photo[1]:+.4f}, {cell.by_photo[2]:+.4f}]':>18} "
                        f"{cell.wins:5d} {cell.losses:6d}")
    return "\n".join(lines)


def plot_league(records: Sequence[Record], model: str, path: Path,
                reference: str = REFERENCE) -> None:
    """One picture of :func:`league` for ``model``: a cell per method and
    metric, green where the method beats the reference and red where it loses
    (paired mean difference, scaled per metric), the method's mean written in
    it, a frame where the interval over photos excludes 0; seconds per image
    on the right."""
    methods = league(records, reference).get(model, {})
    if not methods:
        return
    seconds = seconds_per_image(records)
    names = [m.name for m in LEAGUE_METRICS if any(m.name in c for c in methods.values())]
    grid = np.full((len(methods), len(names)), np.nan)
    for i, cells in enumerate(methods.values()):
        for j, name in enumerate(names):
            if name in cells and cells[name].pairs:
                grid[i, j] = cells[name].difference[0]
    scale = np.nanmax(np.abs(grid), axis=0, initial=0.0)
    shown = grid / np.where(scale > 0, scale, 1.0)
    figure, axis = plt.subplots(figsize=(2.0 + 1.25 * len(names), 1.4 + 0.42 * len(methods)))
    # grey: not paired (the reference itself, or not scored)
    colours = plt.get_cmap("RdYlGn").with_extremes(bad="0.93")
    image = axis.imshow(np.ma.masked_invalid(shown), cmap=colours, vmin=-1, vmax=1,
                        aspect="auto")
    for i, (method, cells) in enumerate(methods.items()):
        for j, name in enumerate(names):
            cell = cells.get(name)
            if cell is None:
                continue
            axis.text(j, i, f"{cell.mean:.3f}", ha="center", va="center", fontsize=8,
                      fontweight="bold" if method == reference else "normal")
            if cell.verdict:
                axis.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False,
                                             edgecolor="black", linewidth=1.5))
        axis.text(len(names) - 0.35, i, f"{seconds[model, method]:.2f} s", va="center",
                  fontsize=8)
    better = {m.name: "higher" if m.higher_is_better else "lower" for m in LEAGUE_METRICS}
    axis.set_xticks(range(len(names)), [f"{n}\n({better[n]} better)" for n in names],
                    fontsize=8)
    axis.set_yticks(range(len(methods)), list(methods), fontsize=8)
    axis.set_xlim(-0.5, len(names) + 0.6)
    bar = figure.colorbar(image, ax=axis, fraction=0.04, pad=0.02)
    bar.set_label(f"paired difference from {reference}, scaled per metric\n"
                  f"green: better than {reference}, red: worse", fontsize=8)
    axis.set_title(f"{model}: every method against {reference}\nnumbers: means; framed: 95% "
                   "interval over photos excludes 0; right: seconds per image", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
