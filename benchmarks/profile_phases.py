"""Where the time of an adaptive IDG call goes, next to Captum IG's.

Times each phase of ``IntegratedDecisionGradients.attribute`` on its own, with
the path engine the class uses: the forward-only probe, the adaptive schedule,
and the gradient passes with their weighted sum; then prints torch.profiler's
busiest operators of one whole call. Synchronises CUDA around every phase.

    python benchmarks/profile_phases.py --model resnet18 --batch 8 --steps 16
"""

import argparse
import time
from typing import Callable

import torch
from captum.attr import IntegratedGradients
from speed import build_model  # benchmarks/ is on sys.path when run as a script
from torch.profiler import ProfilerActivity, profile

from captum_idg import IntegratedDecisionGradients, adaptive_schedule, default_probe_steps
from captum_idg.attr._intake import take_arguments
from captum_idg.attr._path import StraightLinePath
from captum_idg.attr._path_integral import Adaptive, DecisionWeight, ModelOnPath
from captum_idg.attr._piecewise import SwitchCounter
from captum_idg.attr.schedules import MIN_PROBE_STEPS


def best_time(function: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Best wall time of ``repeats`` calls, in milliseconds."""
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        function()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--internal-batch-size", type=int, default=None)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = build_model(args.model).to(device)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    with torch.no_grad():
        target = model(x).argmax(dim=1)
    n, ibs = args.steps, args.internal_batch_size
    ig, idg = IntegratedGradients(model), IntegratedDecisionGradients(model)
    arguments = take_arguments(model, x, None, target, None, ibs, n)
    on_path = ModelOnPath.of(idg, StraightLinePath(arguments.inputs, arguments.baselines),
                             arguments)
    m, adaptive = default_probe_steps(n), Adaptive()
    known = adaptive.start(on_path, n)
    first = known.grid[:min(m, MIN_PROBE_STEPS)]  # as many points as the first probe pass

    phases = {
        "Captum IG, whole call": lambda: ig.attribute(
            x, target=target, n_steps=n, method="riemann_middle", internal_batch_size=ibs),
        "IDG adaptive, whole call": lambda: idg.attribute(
            x, target=target, n_steps=n, internal_batch_size=ibs),
        "IDG uniform, whole call": lambda: idg.attribute(
            x, target=target, n_steps=n, method="riemann_middle", internal_batch_size=ibs),
        f"  probe ({m} points and refinement, no grad)": lambda: adaptive.start(on_path, n),
        f"    {len(first)} probe points, switches counted": lambda: on_path.logits(
            first, SwitchCounter(args.batch)),
        f"    {len(first)} probe points, not counted": lambda: on_path.logits(first),
        "  adaptive_schedule": lambda: adaptive_schedule(known.grid, known.logits, n),
        "  gradient passes + weighted sum": lambda: adaptive.integrate(
            on_path, known, n, DecisionWeight()),
    }
    for function in phases.values():  # warm-up
        function()
    ig_ms = best_time(phases["Captum IG, whole call"], device, args.repeats)
    print(f"{args.model}, batch {args.batch}, {n} steps, internal_batch_size {ibs}, "
          f"{device}, best of {args.repeats}")
    for name, function in phases.items():
        ms = best_time(function, device, args.repeats)
        print(f"{name:46} {ms:9.2f} ms  {ms / ig_ms:6.3f} x IG")

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda"
                                           else [])
    with profile(activities=activities) as prof:
        phases["IDG adaptive, whole call"]()
        if device.type == "cuda":
            torch.cuda.synchronize()
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=12))


if __name__ == "__main__":
    main()
