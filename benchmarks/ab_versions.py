"""Time / Captum IG of two checkouts of this package, alternated, for before/after claims.

``speed.py`` keeps the best of a few runs, which on a shared 2-core machine is
good to about +-15%; a change to the engine needs finer figures. This script
imports ``captum_idg`` from the checkout it is given, times Captum IG, IDG
(adaptive and uniform) and adaptive IG interleaved ``--repeats`` times on a
random-weight ResNet-18, and prints the median of each method's time over the
median of IG's; with ``--noise-tunnel``, every method inside Captum's
``NoiseTunnel`` (SmoothGrad, 4 noisy copies). Run it on the two checkouts in
turn, several times:

    git worktree add /tmp/before HEAD~1
    for i in 1 2 3; do for repo in /tmp/before .; do
        python benchmarks/ab_versions.py $repo --batch 1 --steps 16; done; done
"""

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkout", type=Path, help="the folder that holds captum_idg/")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--model", choices=("resnet18", "dna-cnn"), default="resnet18",
                        help="dna-cnn: captum_idg.testing.DnaCNN on one-hot sequences, float32")
    parser.add_argument("--channels", type=int, default=128, help="the DNA CNN's channels")
    parser.add_argument("--length", type=int, default=1000,
                        help="the DNA CNN's sequence length (16 channels and 200 bases: jumps "
                             "sparse enough to be refined at 50 steps)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--noise-tunnel", action="store_true",
                        help="each method inside NoiseTunnel, 4 smoothgrad samples")
    args = parser.parse_args()
    sys.path.insert(0, str(args.checkout.resolve()))
    import torch
    import torchvision
    from captum.attr import IntegratedGradients, NoiseTunnel

    import captum_idg
    from captum_idg import AdaptiveIntegratedGradients, IntegratedDecisionGradients

    if not captum_idg.__file__.startswith(str(args.checkout.resolve())):
        raise SystemExit(f"captum_idg came from {captum_idg.__file__}, not {args.checkout}")
    warnings.simplefilter("ignore")
    torch.manual_seed(0)
    if args.model == "dna-cnn":
        from captum_idg.testing import DnaCNN

        model = DnaCNN(channels=args.channels, length=args.length).float().eval()
        x = torch.nn.functional.one_hot(torch.randint(0, 4, (args.batch, args.length)), 4)
        x = x.transpose(1, 2).float()
    else:
        model = torchvision.models.resnet18().eval()
        x = torch.randn(args.batch, 3, args.size, args.size)
    target = model(x).argmax(dim=1)  # the DNA CNN has one output: 0
    n = args.steps
    methods = {
        "IG": (IntegratedGradients, dict(method="riemann_middle")),
        "IDG": (IntegratedDecisionGradients, {}),
        "IDG uniform": (IntegratedDecisionGradients, dict(method="riemann_middle")),
        "Adaptive IG": (AdaptiveIntegratedGradients, {}),
    }
    tunnel = dict(nt_type="smoothgrad", nt_samples=4, nt_samples_batch_size=1, stdevs=0.1)

    def call(cls, settings):
        explainer = NoiseTunnel(cls(model)) if args.noise_tunnel else cls(model)
        more = tunnel if args.noise_tunnel else {}
        return lambda: explainer.attribute(x, target=target, n_steps=n, **settings, **more)

    calls = {name: call(cls, settings) for name, (cls, settings) in methods.items()}
    times = {name: [] for name in calls}
    for call in calls.values():  # warm-up
        call()
    for _ in range(args.repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    ig = statistics.median(times["IG"])
    ratios = " ".join(f"{name}={statistics.median(t) / ig:.3f}"
                      for name, t in times.items() if name != "IG")
    where = " noise tunnel" if args.noise_tunnel else ""
    name = (f"{args.model} ({args.channels} channels, {args.length} bases)"
            if args.model == "dna-cnn" else args.model)
    print(f"{args.checkout}{where} {name} batch {args.batch} steps {n} {ratios} "
          f"IG={ig * 1e3:.0f}ms")


if __name__ == "__main__":
    main()
