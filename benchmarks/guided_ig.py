"""Guided IG: ours (torch, batched) against PAIR's numpy saliency.core.GuidedIG.

Same ResNet-18, same images, same settings, in one process. PAIR runs one
image at a time; ours runs batch 1 and batch 8. Prints seconds per image, the
speedup, and the largest difference between the two attributions (float32),
and the time the model's own forward and backward passes take (``n_steps`` per
image), the floor under any implementation at batch 1.
PAIR's ``np.quantile(interpolation=...)`` is mapped to ``method=`` for numpy
>= 2.4, as in tests/test_guided_integrated_gradients.py.

    python benchmarks/guided_ig.py            # IDG paper's setting: 50 / 0.5 / 1.0
    python benchmarks/guided_ig.py --steps 200 --fraction 0.25 --max-dist 0.02
"""

import argparse
import time
import types

import numpy as np
import saliency.core.guided_ig as pair
import torch
import torchvision

from captum_idg import GuidedIntegratedGradients


def numpy_for_pair() -> types.SimpleNamespace:
    shim = types.SimpleNamespace(**{k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    shim.quantile = lambda a, q, interpolation="linear", **kw: np.quantile(
        a, q, method=interpolation, **kw)
    return shim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--fraction", type=float, default=0.5)
    parser.add_argument("--max-dist", type=float, default=1.0)
    parser.add_argument("--images", type=int, default=8)
    args = parser.parse_args()
    pair.np = numpy_for_pair()
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    images = torch.randn(args.images, 3, 224, 224)
    with torch.no_grad():
        targets = model(images).argmax(1)
    settings = dict(n_steps=args.steps, fraction=args.fraction, max_dist=args.max_dist)

    def call_model(batch, call_model_args=None, expected_keys=None):
        points = torch.tensor(batch, dtype=torch.float32, requires_grad=True)
        (grad,) = torch.autograd.grad(model(points)[:, call_model_args].sum(), points)
        return {pair.INPUT_OUTPUT_GRADIENTS: grad.numpy()}

    start = time.perf_counter()
    theirs = [
        pair.GuidedIG().GetMask(
            images[b].numpy(), call_model, call_model_args=int(targets[b]),
            x_baseline=np.zeros((3, 224, 224), np.float32), x_steps=args.steps,
            fraction=args.fraction, max_dist=args.max_dist)
        for b in range(args.images)
    ]
    pair_per_image = (time.perf_counter() - start) / args.images

    start = time.perf_counter()
    for b in range(args.images):  # the model's share: one fwd+bwd per step
        for _ in range(args.steps):
            call_model(images[b : b + 1].numpy(), int(targets[b]))
    floor = (time.perf_counter() - start) / args.images

    gig = GuidedIntegratedGradients(model)
    rows = [("PAIR saliency (numpy)", 1, pair_per_image, None),
            ("model fwd+bwd alone", 1, floor, None)]
    for batch in (1, 8):
        start = time.perf_counter()
        ours = torch.cat([
            gig.attribute(images[b : b + batch], target=targets[b : b + batch], **settings)
            for b in range(0, args.images, batch)
        ])
        per_image = (time.perf_counter() - start) / args.images
        diff = max(
            float(np.abs(ours[b].numpy() - theirs[b]).max() / np.abs(theirs[b]).max())
            for b in range(args.images)
        )
        rows.append(("captum-idg (torch)", batch, per_image, diff))
    print(f"Guided IG, ResNet-18 224x224, {args.images} images, steps {args.steps}, "
          f"fraction {args.fraction}, max_dist {args.max_dist}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'implementation':22} {'batch':>5} {'s/image':>8} {'speedup':>8} {'max rel diff':>13}")
    for name, batch, seconds, diff in rows:
        print(f"{name:22} {batch:5d} {seconds:8.2f} {pair_per_image / seconds:8.2f} "
              f"{'' if diff is None else f'{diff:.1e}':>13}")


if __name__ == "__main__":
    main()
