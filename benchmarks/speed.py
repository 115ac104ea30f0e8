"""Speed, memory and pass counts of our methods as ratios against Captum IG.

Every configuration runs all methods in this one process on the same model and
input, interleaved, and keeps each method's best time of ``--repeats`` runs.
Peak memory is the largest heap in use during the call above the heap in use
before it (glibc ``mallinfo2`` polled every 0.5 ms on CPU; CUDA's
``max_memory_allocated`` on a GPU). Pass counts come from a wrapper around the
model: forward passes with and without grad, backward passes, and gradient
evaluations (rows through a grad-enabled forward, per example). Standard
output is the report: pass/fail lines for the targets first, then time / IG
ranges per method and regime, then every row; standard error shows a progress
bar and each configuration's rows as they are measured.

    python benchmarks/speed.py                      # ResNet-18, batch 1 and 8, 16/50/128
    python benchmarks/speed.py --models resnet18 efficientnet_lite0 --batch 1 8 32 \
        --internal-batch-size 0 64                  # the full grid (0: no chunking)
    python benchmarks/speed.py --batch 1 --steps 16 --repeats 1   # quick look
    python benchmarks/speed.py --batch 32 --size 112              # smaller images, bigger batch
    python benchmarks/speed.py --json out/speed.json
    python benchmarks/speed.py --report out/a.json out/b.json   # verdicts of saved runs
"""

import argparse
import ctypes
import itertools
import json
import sys
import threading
import time
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional

import torch
import torchvision
from torch import Tensor, nn
from tqdm import tqdm

from captum_idg.evaluation.methods import check_methods, make_method, method_label
from captum_idg.evaluation.models import ImageModel, load_model

BASELINE = "ig"  # Captum's IntegratedGradients: every ratio is against it
METHODS = ("idg_uniform", "idg", "adaptive_ig", "left_ig", "idgi", "guided_ig", "agi")
ADAPTIVE = ("IDG", "Adaptive IG")  # labels of the methods that probe
TARGETS = {  # method: most wall time / IG's
    "IDG uniform": 1.05,
    "IDG": 1.15,
}
MEMORY_TARGET = 1.2


class CountingModel(nn.Module):
    """Counts forward passes (with and without grad), rows and backward passes."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.reset()

    def reset(self) -> None:
        self.grad_forwards = self.grad_rows = self.probe_forwards = self.backwards = 0

    def forward(self, x: Tensor) -> Tensor:
        out = self.model(x)
        if torch.is_grad_enabled() and out.requires_grad:
            self.grad_forwards += 1
            self.grad_rows += x.shape[0]
            out.register_hook(self._count_backward)
        else:
            self.probe_forwards += 1
        return out

    def _count_backward(self, grad: Tensor) -> None:
        self.backwards += 1


class HeapPeak:
    """Peak bytes in use above the start, polled in a thread (CPU) or from CUDA."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak = 0
        if device.type != "cuda":
            self._libc = ctypes.CDLL("libc.so.6")
            self._libc.mallinfo2.restype = _MallInfo2

    def _in_use(self) -> int:
        info = self._libc.mallinfo2()
        return info.uordblks + info.hblkhd

    def __enter__(self) -> "HeapPeak":
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._start = torch.cuda.memory_allocated()
            return self
        self._start = self._in_use()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._in_use() - self._start)
            time.sleep(0.0005)

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self._start
            return
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._in_use() - self._start)


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]


@dataclass
class Row:
    model: str
    batch: int
    n_steps: int
    internal_batch_size: Optional[int]
    method: str
    seconds: float
    time_ratio: float
    peak_mib: float
    memory_ratio: float
    grad_evaluations: float
    grad_forwards: int
    probe_forwards: int
    backwards: int


def build_model(name: str) -> nn.Module:
    if name == "resnet18":
        return torchvision.models.resnet18(weights=None).eval()
    return load_model(name).module  # efficientnet_lite0 / lite1 (the bench extra)


def measure(model_name: str, batch: int, n_steps: int, ibs: Optional[int], size: int,
            repeats: int, device: torch.device, names: Optional[List[str]]) -> List[Row]:
    torch.manual_seed(0)
    counting = CountingModel(build_model(model_name)).to(device)
    model = ImageModel(model_name, counting, (0.0,) * 3, (1.0,) * 3, size)  # x is normalised
    x = torch.randn(batch, 3, size, size, device=device)
    with torch.no_grad():
        target = counting.model(x).argmax(dim=1)  # AGI attacks away from it
    specs = [BASELINE] + [m for m in names or METHODS if m != BASELINE]
    runs = {method_label(m): m for m in specs}
    best: Dict[str, float] = {name: float("inf") for name in runs}
    peaks: Dict[str, int] = {}
    counts: Dict[str, tuple] = {}
    for spec in runs.values():  # warm-up: allocator, kernels, lazy inits
        make_method(spec, model, 2, ibs)(x, target)
    for _ in range(repeats):
        for name, spec in runs.items():
            explain = make_method(spec, model, n_steps, ibs)
            counting.reset()
            with HeapPeak(device) as heap:
                start = time.perf_counter()
                explain(x, target)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                best[name] = min(best[name], time.perf_counter() - start)
            peaks[name] = max(peaks.get(name, 0), heap.peak)
            counts[name] = (counting.grad_rows / batch, counting.grad_forwards,
                            counting.probe_forwards, counting.backwards)
    label = method_label(BASELINE)
    base_time, base_peak = best[label], max(peaks[label], 1)
    return [
        Row(model_name, batch, n_steps, ibs, name, best[name], best[name] / base_time,
            peaks[name] / 2**20, peaks[name] / base_peak, *counts[name])
        for name in runs
    ]


def verdicts(rows: List[Row]) -> List[str]:
    lines = []
    checks = [(method, limit, "time_ratio", "time") for method, limit in TARGETS.items()]
    checks += [(method, MEMORY_TARGET, "memory_ratio", "peak memory") for method in TARGETS]
    for method, limit, field, what in checks:
        measured = [r for r in rows if r.method == method]
        if not measured:
            continue
        worst = max(measured, key=lambda r: getattr(r, field))
        value = getattr(worst, field)
        lines.append(
            f"{'PASS' if value <= limit else 'FAIL'}  {method} {what} / IG <= {limit}: "
            f"worst {value:.3f} ({worst.model}, batch {worst.batch}, {worst.n_steps} steps, "
            f"internal_batch_size {worst.internal_batch_size}); "
            f"{sum(getattr(r, field) <= limit for r in measured)}/{len(measured)} pass")
    exact = all(r.grad_evaluations == r.n_steps for r in rows
                if r.method not in ("AGI", "Guided IG"))
    lines.append(f"{'PASS' if exact else 'FAIL'}  gradient evaluations == n_steps "
                 "for every path method")
    batched = all(
        r.probe_forwards <= -(-r.n_steps * r.batch // (r.internal_batch_size or 10**9)) + 1
        for r in rows if r.method in ADAPTIVE
    )
    lines.append(f"{'PASS' if batched else 'FAIL'}  probe is batched: one no-grad "
                 "forward per chunk (+1 for the delta's end points where asked)")
    return lines


REGIMES = {  # name: which configurations
    "batch >= 8, >= 50 steps": lambda r: r.batch >= 8 and r.n_steps >= 50,
    "batch 1, >= 50 steps": lambda r: r.batch == 1 and r.n_steps >= 50,
    "< 50 steps": lambda r: r.n_steps < 50,
}


def summary(rows: List[Row]) -> str:
    """Range of time / IG per method and regime, and of peak memory / IG per method."""
    methods = list(dict.fromkeys(r.method for r in rows))
    header = f"{'method':15}" + "".join(f"{name:>26}" for name in REGIMES) + f"{'memory':>13}"
    lines = [header, "-" * len(header)]
    for method in methods:
        mine = [r for r in rows if r.method == method]
        cells = []
        for select in REGIMES.values():
            ratios = [r.time_ratio for r in mine if select(r)]
            cells.append(f"{min(ratios):.2f}-{max(ratios):.2f}x" if ratios else "-")
        memory = [r.memory_ratio for r in mine]
        lines.append(f"{method:15}" + "".join(f"{c:>26}" for c in cells)
                     + f"{min(memory):.2f}-{max(memory):.2f}x".rjust(13))
    return "\n".join(lines)


def table(rows: List[Row]) -> str:
    header = (f"{'model':9} {'batch':>5} {'steps':>5} {'ibs':>5} {'method':14} "
              f"{'sec':>8} {'x IG':>6} {'MiB':>8} {'mem x IG':>8} {'grad ev':>7} "
              f"{'fwd+bwd':>7} {'probe':>5}")
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r.model:9} {r.batch:5d} {r.n_steps:5d} {str(r.internal_batch_size):>5} "
            f"{r.method:14} {r.seconds:8.3f} {r.time_ratio:6.3f} {r.peak_mib:8.1f} "
            f"{r.memory_ratio:8.3f} {r.grad_evaluations:7.0f} "
            f"{r.grad_forwards:3d}+{r.backwards:<3d} {r.probe_forwards:5d}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["resnet18"])
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--steps", nargs="+", type=int, default=[16, 50, 128])
    parser.add_argument("--internal-batch-size", nargs="+", type=int, default=[64],
                        help="rows per pass; 0 means None (all steps in one pass)")
    parser.add_argument("--size", type=int, default=224, help="image side in pixels")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--methods", nargs="+", default=None,
                        help=f"registry names (default: {' '.join(METHODS)}); Captum IG "
                             "always runs as the reference")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--report", nargs="+", metavar="JSON",
                        help="measure nothing: print the verdicts and table of saved runs")
    args = parser.parse_args()
    if args.report:
        rows = [Row(**row) for path in args.report for row in json.load(open(path))]
        print("\n".join(verdicts(rows)))
        print(summary(rows))
        print(table(rows))
        return
    if args.methods:
        check_methods(args.methods)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    configurations = list(itertools.product(
        args.models, args.batch, args.steps, args.internal_batch_size))
    rows: List[Row] = []
    progress = tqdm(configurations, desc="configurations", file=sys.stderr)
    for model_name, batch, n_steps, ibs in progress:  # rows as they come: stderr
        try:
            new = measure(model_name, batch, n_steps, ibs or None, args.size,
                          args.repeats, device, args.methods)
        except (torch.OutOfMemoryError, RuntimeError) as error:  # e.g. 32 x 128 rows at once
            if not isinstance(error, torch.OutOfMemoryError) and "allocate" not in str(error):
                raise
            torch.cuda.empty_cache()
            progress.write(f"{model_name:9} {batch:5d} {n_steps:5d} {str(ibs or None):>5} "
                           "out of memory: configuration skipped", file=sys.stderr)
            continue
        rows += new
        progress.write(table(new).split("\n", 2)[2], file=sys.stderr)
        if args.json:  # after every configuration: a run cut short keeps what it measured
            with open(args.json, "w") as f:
                json.dump([asdict(r) for r in rows], f, indent=1)
    print("\n".join(verdicts(rows)))  # the report: stdout, verdicts first
    print(summary(rows))
    print(f"device: {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"images {args.size} x {args.size}, best of {args.repeats}")
    print(table(rows))


if __name__ == "__main__":
    main()
