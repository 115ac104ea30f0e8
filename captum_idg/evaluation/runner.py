"""Runs methods over models and images and scores them by insertion and deletion.

Every finished (model, image, method) is appended to ``results.csv`` and
``curves.jsonl`` at once, and a rerun with the same output folder skips what is
there, so a stopped run resumes where it stopped.
"""

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import torch
from torch import Tensor
from tqdm import tqdm

from captum_idg.evaluation.images import LabeledImage, prepare
from captum_idg.evaluation.methods import (
    Explain,
    check_methods,
    make_method,
    method_label,
    method_spec,
)
from captum_idg.evaluation.models import ImageModel, categories, load_model
from captum_idg.evaluation.report import (
    Record,
    append_rows,
    plot_heatmaps,
    read_csv,
    rebuild,
)
from captum_idg.metrics import curve_auc, deletion_curve, insertion_curve

CURVE_BATCH = 64
PREDICT_BATCH = 32


@dataclass
class BenchmarkResult:
    records: List[Record] = field(default_factory=list)  # this run's, in order
    skipped: Dict[str, List[str]] = field(default_factory=dict)  # model -> misclassified
    resumed: int = 0  # rows found in the output folder and not run again


@dataclass
class ScoredAttribution:
    """One method's explanation of one image and its insertion/deletion scores."""

    attribution: Tensor
    insertion_curve: Tensor
    deletion_curve: Tensor
    seconds: float

    @property
    def insertion(self) -> float:
        return float(curve_auc(self.insertion_curve))

    @property
    def deletion(self) -> float:
        return float(curve_auc(self.deletion_curve))

    def title(self, label: str) -> str:
        return heatmap_title(label, self.insertion, self.deletion)


def heatmap_title(label: str, insertion: float, deletion: float) -> str:
    return f"{label}\nins {insertion:.3f}  del {deletion:.3f}"


def score_method(model: ImageModel, explain: Explain, x: Tensor, target: Tensor,
                 pixels_per_step: Optional[int] = None) -> ScoredAttribution:
    """Explains one image ``x`` (1, C, H, W) for ``target``, timed, and scores
    it (``pixels_per_step`` None: the protocol's, the image width)."""
    start = time.perf_counter()
    attribution = explain(x, target).detach()
    if x.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    insertion, deletion = (
        fn(model.module, x, attribution, target, pixels_per_step=pixels_per_step,
           max_examples_per_batch=CURVE_BATCH)[0]
        for fn in (insertion_curve, deletion_curve)
    )
    return ScoredAttribution(attribution[0], insertion, deletion, seconds)


def full_view(image: LabeledImage) -> bool:
    """An image of the user's or the whole-photo view (``name@1-c``): the ones drawn."""
    return "@" not in image.name or image.name.endswith("@1-c")


def shard(items: Sequence, index: int, count: int) -> list:
    """Every ``count``-th item from ``index``: the part of shard ``index``."""
    if not 0 <= index < count:
        raise ValueError(f"shard index must be in [0, {count}), got {index}")
    return list(items[index::count])


def predict(model: ImageModel, images: Sequence[LabeledImage], device: str) -> Tensor:
    """Softmax probabilities ``(len(images), classes)`` of ``model``."""
    outputs = []
    with torch.no_grad():
        for start in range(0, len(images), PREDICT_BATCH):
            part = images[start : start + PREDICT_BATCH]
            x = model.normalise(torch.stack([prepare(im.pixels, model.size) for im in part]))
            outputs.append(model.module(x.to(device)).softmax(dim=1).cpu())
    return torch.cat(outputs)


def run_benchmark(
    models: Sequence[Union[str, ImageModel]],
    images: Sequence[LabeledImage],
    method_specs: Sequence[str],
    n_steps: int = 50,
    out_dir: Optional[Path] = None,
    device: str = "cpu",
    progress: bool = True,
    heatmaps: bool = True,
    pixels_per_step: Optional[int] = None,
    max_images: Optional[int] = None,
) -> BenchmarkResult:
    """
    ``models`` are names for :func:`load_model` or :class:`ImageModel` objects;
    ``method_specs`` registry names (see :func:`~captum_idg.evaluation.methods.
    parse_method`). Explains every correctly classified image (all images whose
    labels are unknown) with every method, for the predicted class, and scores
    each explanation by insertion and deletion AUC. With ``out_dir``, appends
    each row as it finishes (skipping rows already there), draws a heatmap grid
    per image (``heatmaps``, full views only) with every method that has a row
    (again when this run adds one or the picture is missing; methods of earlier
    runs are explained again, with their own steps or ``n_steps``) and rebuilds the tables and
    curves at the end. ``max_images``: at most this many correctly classified
    images per model, the first in ``images``' order.
    """
    check_methods(method_specs)
    names = categories()
    result = BenchmarkResult()
    done: Dict[tuple, Record] = {}
    if out_dir is not None:
        (out_dir / "heatmaps").mkdir(parents=True, exist_ok=True)
        if (out_dir / "results.csv").exists():
            done = {r.key: r for r in read_csv([out_dir / "results.csv"])}
    bar = tqdm(total=len(models) * len(images) * len(method_specs), disable=not progress,
               desc="benchmark", unit="run", dynamic_ncols=True)
    for spec in models:
        model = load_model(spec, device) if isinstance(spec, str) else spec
        probabilities = predict(model, images, device)
        predicted = probabilities.argmax(dim=1)
        kept = [i for i, im in enumerate(images)
                if im.labels is None or int(predicted[i]) in im.labels][:max_images]
        result.skipped[model.name] = [images[i].name for i in range(len(images))
                                      if i not in kept and images[i].labels is not None
                                      and int(predicted[i]) not in images[i].labels]
        bar.update((len(images) - len(kept)) * len(method_specs))
        explainers = {m: make_method(m, model, n_steps) for m in method_specs}
        for i in kept:
            image, target = images[i], predicted[i : i + 1].to(device)
            pixels = prepare(image.pixels, model.size).to(device)
            x = model.normalise(pixels[None])
            maps, titles = {}, {}
            for method in method_specs:
                label = method_label(method)
                bar.set_postfix_str(f"{model.name} {image.name} {label}")
                if (model.name, image.name, label) in done:
                    result.resumed += 1
                    bar.update()
                    continue
                scored = score_method(model, explainers[method], x, target, pixels_per_step)
                record = Record(model.name, image.name, label, int(target), names[int(target)],
                                float(probabilities[i, target]), scored.insertion,
                                scored.deletion, scored.seconds)
                result.records.append(record)
                if out_dir is not None:
                    append_rows(out_dir, record, scored.insertion_curve, scored.deletion_curve)
                maps[label], titles[label] = scored.attribution, scored.title(label)
                bar.update()
            if out_dir is None or not heatmaps or not full_view(image):
                continue
            path = out_dir / "heatmaps" / f"{model.name}_{image.name}.png"
            if maps or not path.exists():  # every method with a row, this run's last
                drawn = {}
                for record in done.values():
                    if (record.model, record.image) == (model.name, image.name):
                        spec = method_spec(record.method)
                        explain = explainers.get(spec) or make_method(spec, model, n_steps)
                        drawn[record.method] = explain(x, target).detach()[0]
                        titles[record.method] = heatmap_title(record.method, record.insertion,
                                                              record.deletion)
                plot_heatmaps(
                    pixels, {**drawn, **maps}, titles,
                    f"{model.name}: {image.name}, predicted {names[int(target)]} "
                    f"({float(probabilities[i, target]):.2f})", path,
                )
    bar.close()
    if out_dir is not None:
        rebuild(out_dir)
    return result
