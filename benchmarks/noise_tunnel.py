"""IDG's time under Captum's NoiseTunnel as a ratio of Captum IG's, as a Captum user meets it.

A random-weight ResNet-18 (eval mode) on a batch of 224 x 224 images; SmoothGrad with
``--samples`` noisy copies; every method at ``--steps`` steps; the best of ``--repeats``
runs each, in this one process.

    python benchmarks/noise_tunnel.py                       # batch 8, 16 steps, 4 samples
    python benchmarks/noise_tunnel.py --batch 1 8 --steps 16 50
"""

import argparse
import time

import torch
import torchvision
from captum.attr import IntegratedGradients, NoiseTunnel

from captum_idg import IntegratedDecisionGradients


def best_time(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[8])
    parser.add_argument("--steps", type=int, nargs="+", default=[16])
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    print(f"{'batch':>5} {'steps':>5} {'IG s':>8} {'IDG s':>8} {'IDG / IG':>9}")
    for batch in args.batch:
        x = torch.rand(batch, 3, 224, 224)
        target = torch.randint(0, 1000, (batch,))
        for steps in args.steps:
            tunnels = {name: NoiseTunnel(cls(model)) for name, cls in
                       (("IG", IntegratedGradients), ("IDG", IntegratedDecisionGradients))}
            settings = dict(nt_type="smoothgrad", nt_samples=args.samples,
                            nt_samples_batch_size=1, stdevs=0.1, target=target, n_steps=steps)
            seconds = {name: best_time(lambda t=tunnel, x=x, s=settings: t.attribute(x, **s),
                                       args.repeats)
                       for name, tunnel in tunnels.items()}
            print(f"{batch:5d} {steps:5d} {seconds['IG']:8.2f} {seconds['IDG']:8.2f} "
                  f"{seconds['IDG'] / seconds['IG']:9.2f}", flush=True)


if __name__ == "__main__":
    main()
