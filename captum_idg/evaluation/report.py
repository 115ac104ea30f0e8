"""Results as a table, a CSV, and pictures (curves and heatmaps) saved as PNG."""

import csv
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from captum.attr import visualization  # noqa: E402
from torch import Tensor  # noqa: E402


@dataclass
class Record:
    """One method on one image of one model."""

    model: str
    image: str
    method: str
    target: int
    class_name: str
    probability: float
    insertion: float
    deletion: float
    seconds: float


def write_csv(records: Sequence[Record], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[x.name for x in fields(Record)])
        writer.writeheader()
        writer.writerows(asdict(r) for r in records)


def read_csv(paths: Sequence[Path]) -> List[Record]:
    """Records of one or more CSVs (e.g. the shards of one run)."""
    records = []
    for path in paths:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                records.append(Record(
                    row["model"], row["image"], row["method"], int(row["target"]),
                    row["class_name"], float(row["probability"]), float(row["insertion"]),
                    float(row["deletion"]), float(row["seconds"]),
                ))
    return records


def mean_interval(values: Sequence[float], resamples: int = 4000) -> Tuple[float, float, float]:
    """Mean and 95% bootstrap percentile interval of the mean."""
    data = np.asarray(values, dtype=np.float64)
    if len(data) < 2:
        return float(data.mean()), math.nan, math.nan
    draws = np.random.default_rng(0).choice(data, size=(resamples, len(data))).mean(axis=1)
    low, high = np.percentile(draws, [2.5, 97.5])
    return float(data.mean()), float(low), float(high)


def summary_table(records: Sequence[Record]) -> str:
    """Mean insertion and deletion AUC with 95% intervals, per model and method,
    best first by insertion - deletion; the best of each column is starred."""
    groups: Dict[Tuple[str, str], List[Record]] = {}
    for r in records:
        groups.setdefault((r.model, r.method), []).append(r)
    lines = [f"{'model':20} {'method':17} {'n':>3} {'insertion (95% CI)':>24} "
             f"{'deletion (95% CI)':>24} {'ins-del':>7} {'s/image':>8}"]
    for model in dict.fromkeys(m for m, _ in groups):
        rows = []
        for (m, method), group in groups.items():
            if m != model:
                continue
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
                f"{model:20} {method:17} {n:3d} {_cell(ins, ins[0] == best_ins):>24} "
                f"{_cell(dele, dele[0] == best_del):>24} {ins[0] - dele[0]:7.3f} {seconds:8.2f}"
            )
    return "\n".join(lines)


def _cell(stat: Tuple[float, float, float], best: bool) -> str:
    mean, low, high = stat
    return f"{'*' if best else ''}{mean:.3f} [{low:.3f}, {high:.3f}]"


def plot_curves(curves: Dict[str, Tuple[List[Tensor], List[Tensor]]], title: str,
                path: Path) -> None:
    """Mean insertion and deletion curves of each method, side by side."""
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = plt.get_cmap("tab20").colors
    for k, (method, (insertions, deletions)) in enumerate(curves.items()):
        style = dict(label=method, color=colours[2 * k % 20 + k // 10],
                     linewidth=2.2 if method == "IDG" else 1.2)
        for axis, runs in zip(axes, (insertions, deletions)):
            mean = torch.stack(runs).mean(dim=0).cpu().numpy()
            axis.plot(np.linspace(0, 1, len(mean)), mean, **style)
    for axis, name in zip(axes, ("Insertion (higher is better)", "Deletion (lower is better)")):
        axis.set_title(name)
        axis.set_xlabel("fraction of pixels")
        axis.set_ylabel("probability of the predicted class")
        axis.grid(alpha=0.3)
    axes[1].legend(fontsize=8, loc="upper right")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_heatmaps(pixels: Tensor, attributions: Dict[str, Tensor], titles: Dict[str, str],
                  suptitle: str, path: Path) -> None:
    """The image, then each method's |attribution| heatmap drawn by Captum."""
    image = pixels.permute(1, 2, 0).cpu().numpy()
    panels = len(attributions) + 1
    columns = min(panels, 6)
    rows = -(-panels // columns)
    figure, axes = plt.subplots(rows, columns, squeeze=False,
                                figsize=(max(2.6 * columns, 8.0), 0.4 + 3.0 * rows))
    axes = axes.flatten()
    axes[0].imshow(image)
    axes[0].set_title("image", fontsize=9)
    for axis, (method, attribution) in zip(axes[1:], attributions.items()):
        values = attribution.detach().permute(1, 2, 0).cpu().numpy()
        if np.abs(values).sum() > 0:  # Captum's visualisation rejects all-zero maps
            visualization.visualize_image_attr(
                values, image, method="heat_map", sign="absolute_value",
                plt_fig_axis=(figure, axis), use_pyplot=False,
            )
        axis.set_title(titles[method], fontsize=9)
    for axis in axes:
        axis.axis("off")
    figure.suptitle(suptitle, fontsize=9)
    figure.tight_layout(rect=(0, 0, 1, 0.97))
    figure.savefig(path, dpi=100)
    plt.close(figure)
