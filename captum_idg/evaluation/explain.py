"""Explain images with one model: top-5 classes, heatmaps, insertion/deletion."""

import sys
from pathlib import Path
from typing import Sequence, Union

import torch
from tqdm import tqdm

from captum_idg.evaluation.images import LabeledImage, load_image, prepare
from captum_idg.evaluation.methods import check_methods, make_method, method_label
from captum_idg.evaluation.models import categories, load_model
from captum_idg.evaluation.report import plot_heatmaps
from captum_idg.evaluation.runner import score_method


def explain_images(
    images: Sequence[Union[Path, LabeledImage]],
    model_spec: str,
    method_specs: Sequence[str],
    out_dir: Path,
    n_steps: int = 50,
    device: str = "cpu",
    progress: bool = True,
) -> int:
    """
    Writes ``out_dir/NAME.png`` per image (the image, then one heatmap per
    method with its colour bar and its insertion and deletion scores) and
    prints one line per image. A prediction outside the classes known to be
    right for a bundled photo is marked. An image that cannot be read gets a
    one-line error on stderr and the others go on. Returns 0, or 2 if any
    image failed.
    """
    check_methods(method_specs)
    model = load_model(model_spec, device)
    explainers = {m: make_method(m, model, n_steps) for m in method_specs}
    names = categories()
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = False
    bar = tqdm(total=len(images) * len(method_specs), disable=not progress, desc="explain",
               unit="map", file=sys.stderr, dynamic_ncols=True)
    for item in images:
        try:
            image = item if isinstance(item, LabeledImage) else load_image(item)
        except ValueError as error:
            bar.write(f"captum-idg: error: {error}", file=sys.stderr)
            bar.update(len(method_specs))
            failed = True
            continue
        pixels = prepare(image.pixels, model.size).to(device)
        x = model.normalise(pixels[None])
        with torch.no_grad():
            probabilities = model.module(x).softmax(dim=1)[0]
        top = probabilities.topk(5)
        target = top.indices[:1]
        scored = {}
        for m in method_specs:
            bar.set_postfix_str(f"{image.name} {method_label(m)}")
            scored[method_label(m)] = score_method(model, explainers[m], x, target)
            bar.update()
        wrong = image.labels is not None and int(target) not in image.labels
        mark = " [not among this photo's known classes]" if wrong else ""
        top5 = ", ".join(f"{names[int(i)]} {float(p):.2f}" for p, i in zip(*top))
        path = out_dir / f"{image.name}.png"
        plot_heatmaps(pixels, {k: s.attribution for k, s in scored.items()},
                      {k: s.title(k) for k, s in scored.items()},
                      f"{model.name}: {image.name}{mark}\ntop-5: {top5}", path)
        scores = " | ".join(f"{k} ins {s.insertion:.3f} del {s.deletion:.3f}"
                            for k, s in scored.items())
        bar.write(f"{image.name}: {names[int(target)]} ({float(top.values[0]):.2f}){mark} | "
                  f"{scores} -> {path}", file=sys.stdout)
    bar.close()
    return 2 if failed else 0
