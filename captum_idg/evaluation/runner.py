"""Runs methods over models and images and scores them by insertion and deletion."""

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from tqdm import tqdm

from captum_idg.evaluation.images import LabeledImage, prepare
from captum_idg.evaluation.methods import Explain, check_methods, make_method, method_label
from captum_idg.evaluation.models import ImageModel, categories, load_model
from captum_idg.evaluation.report import Record, plot_curves, plot_heatmaps, write_csv
from captum_idg.metrics import curve_auc, deletion_curve, insertion_curve

CURVE_BATCH = 64


@dataclass
class BenchmarkResult:
    records: List[Record] = field(default_factory=list)
    # (model, method label) -> (insertion curves, deletion curves)
    curves: Dict[Tuple[str, str], Tuple[List[Tensor], List[Tensor]]] = field(
        default_factory=dict)
    skipped: Dict[str, List[str]] = field(default_factory=dict)  # model -> misclassified


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
        return f"{label}\nins {self.insertion:.3f}  del {self.deletion:.3f}"


def score_method(model: ImageModel, explain: Explain, x: Tensor,
                 target: Tensor) -> ScoredAttribution:
    """Explains one image ``x`` (1, C, H, W) for ``target``, timed, and scores it."""
    start = time.perf_counter()
    attribution = explain(x, target).detach()
    seconds = time.perf_counter() - start
    insertion, deletion = (
        fn(model.module, x, attribution, target, max_examples_per_batch=CURVE_BATCH)[0]
        for fn in (insertion_curve, deletion_curve)
    )
    return ScoredAttribution(attribution[0], insertion, deletion, seconds)


def shard(items: Sequence, index: int, count: int) -> list:
    """Every ``count``-th item from ``index``: the part of shard ``index``."""
    if not 0 <= index < count:
        raise ValueError(f"shard index must be in [0, {count}), got {index}")
    return list(items[index::count])


def run_benchmark(
    models: Sequence[Union[str, ImageModel]],
    images: Sequence[LabeledImage],
    method_names: Sequence[str],
    n_steps: int = 50,
    out_dir: Optional[Path] = None,
    device: str = "cpu",
    progress: bool = True,
) -> BenchmarkResult:
    """
    ``models`` are names for :func:`load_model` or :class:`ImageModel` objects.
    Explains every correctly classified image (all images whose labels are
    unknown) with every method, for the predicted class, and scores each
    explanation by insertion and deletion AUC. With ``out_dir``, writes
    ``results.csv``, ``curves_MODEL.png`` and ``heatmaps/MODEL_IMAGE.png``.
    """
    check_methods(method_names)
    names = categories()
    result = BenchmarkResult()
    if out_dir is not None:
        (out_dir / "heatmaps").mkdir(parents=True, exist_ok=True)
    for spec in models:
        model = load_model(spec, device) if isinstance(spec, str) else spec
        model_name = model.name
        explainers = {m: make_method(m, model, n_steps) for m in method_names}
        pixels = torch.stack([prepare(im.pixels, model.size) for im in images]).to(device)
        inputs = model.normalise(pixels)
        with torch.no_grad():
            probabilities = model.module(inputs).softmax(dim=1)
        predicted = probabilities.argmax(dim=1)
        kept = [i for i, im in enumerate(images)
                if im.labels is None or int(predicted[i]) in im.labels]
        result.skipped[model_name] = [images[i].name for i in range(len(images)) if i not in kept]
        bar = tqdm(total=len(kept) * len(method_names), desc=model_name, disable=not progress)
        for i in kept:
            x, target = inputs[i : i + 1], predicted[i : i + 1]
            maps, titles = {}, {}
            for method in method_names:
                label = method_label(method)
                bar.set_postfix_str(f"{images[i].name} / {label}")
                scored = score_method(model, explainers[method], x, target)
                runs = result.curves.setdefault((model_name, label), ([], []))
                runs[0].append(scored.insertion_curve.cpu())
                runs[1].append(scored.deletion_curve.cpu())
                result.records.append(Record(
                    model_name, images[i].name, label, int(target), names[int(target)],
                    float(probabilities[i, target]), scored.insertion, scored.deletion,
                    scored.seconds,
                ))
                maps[label] = scored.attribution
                titles[label] = scored.title(label)
                bar.update()
            if out_dir is not None:
                plot_heatmaps(
                    pixels[i], maps, titles,
                    f"{model_name}: {images[i].name}, predicted {names[int(target)]} "
                    f"({float(probabilities[i, target]):.2f})",
                    out_dir / "heatmaps" / f"{model_name}_{images[i].name}.png",
                )
        bar.close()
        if out_dir is not None and kept:
            curves = {label: runs for (m, label), runs in result.curves.items()
                      if m == model_name}
            plot_curves(curves, f"{model_name}: mean over {len(kept)} images",
                        out_dir / f"curves_{model_name}.png")
    if out_dir is not None:
        write_csv(result.records, out_dir / "results.csv")
    return result
