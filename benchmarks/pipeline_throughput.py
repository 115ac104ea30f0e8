"""Throughput and memory of the attribution pipeline (``captum-idg attribute``).

Throughput: images per second of whole ``captum-idg attribute`` runs (model
load and start-up included) on views of the scikit-image photos saved as PNGs,
per method, at batch 1 and batch B, with one process and with ``--ranks``
processes under torchrun (each rank then gets ``threads / ranks`` threads, so
both use the same cores). Memory: peak RSS of a run over 200 and over 2000
generated images (the same tiny model), which streaming keeps flat.

    python benchmarks/pipeline_throughput.py                   # Lite0, idg and ig, 50 steps
    python benchmarks/pipeline_throughput.py --images 8 --methods idg --json out/t.json
    python benchmarks/pipeline_throughput.py --skip-throughput  # only the memory check
    python benchmarks/pipeline_throughput.py --device cuda --batch 1 32 --ranks 1  # on a GPU
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image

MEMORY_JOB = """
import sys, torch
from pathlib import Path
from captum_idg.evaluation.datasets import find_images
from captum_idg.evaluation.models import LITE_MEAN, LITE_STD, ImageModel
from captum_idg.evaluation.pipeline import run
torch.manual_seed(0)
module = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 5, stride=2), torch.nn.Softplus(),
    torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(32, 1000)).eval()
model = ImageModel("tiny", module, (0.5,) * 3, (0.5,) * 3, 64)
run(find_images([sys.argv[1]]), [model], ["idg"], Path(sys.argv[2]), n_steps=8, batch_size=8,
    metrics=("insertion", "deletion"), pixels_per_step=1024, keep_attributions=True,
    correct_only=False, heatmaps=False, progress=False, workers=1)
"""


def photo_views(folder: Path, count: int) -> None:
    """``count`` views of the scikit-image photos as PNG files."""
    from captum_idg.evaluation.datasets import bundled_images

    folder.mkdir(parents=True, exist_ok=True)
    for entry in bundled_images(with_views=True)[:count]:
        array = (entry.source.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(array).save(folder / f"{entry.name}.png")


def random_images(folder: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        Image.fromarray((rng.random((80, 96, 3)) * 255).astype(np.uint8)).save(
            folder / f"{k:05d}.png")


def timed(command: List[str], env: Dict[str, str]) -> Tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of ``command``'s process."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        child = subprocess.Popen(command, env={**os.environ, **env}, stdout=log, stderr=log)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode:
            log.seek(0)
            sys.exit(f"failed: {' '.join(command)}\n{log.read()[-3000:].decode()}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def throughput(args: argparse.Namespace, work: Path) -> List[dict]:
    images = work / "views"
    photo_views(images, args.images)
    rows = []
    for method in args.methods:
        for ranks in args.ranks:
            for batch in args.batch:
                out = work / f"out-{method}-{ranks}-{batch}"
                cli = ["attribute", str(images), "--model", args.model, "--method", method,
                       "--internal-batch-size", str(args.internal_batch_size),
                       "--n-steps", str(args.n_steps), "--batch-size", str(batch),
                       "--workers", "1", "--out", str(out)] + (
                           ["--device", args.device] if args.device else [])
                if ranks == 1:
                    command = [sys.executable, "-m", "captum_idg.cli", *cli]
                else:
                    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                               f"--nproc_per_node={ranks}", "-m", "captum_idg.cli", *cli]
                threads = max(1, args.threads // ranks)
                seconds, _ = timed(command, {"OMP_NUM_THREADS": str(threads)})
                row = dict(method=method, ranks=ranks, batch=batch, images=args.images,
                           seconds=round(seconds, 1),
                           images_per_s=round(args.images / seconds, 4))
                print(json.dumps(row), file=sys.stderr, flush=True)
                rows.append(row)
    return rows


def memory(work: Path, counts: List[int]) -> List[dict]:
    rows = []
    for count in counts:
        folder = work / f"random-{count}"
        random_images(folder, count)
        seconds, peak = timed([sys.executable, "-c", MEMORY_JOB, str(folder),
                               str(work / f"m{count}")], {"OMP_NUM_THREADS": "2"})
        rows.append(dict(images=count, peak_rss_mib=round(peak, 1), seconds=round(seconds, 1)))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--methods", nargs="+", default=["idg", "ig"])
    parser.add_argument("--n-steps", type=int, default=50)
    parser.add_argument("--images", type=int, default=16, help="photo views per run")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="threads in all, split between ranks")
    parser.add_argument("--device", default=None)
    parser.add_argument("--internal-batch-size", type=int, default=25,
                        help="rows per forward/backward pass")
    parser.add_argument("--memory", type=int, nargs="+", default=[200, 2000],
                        help="generated images per memory run (run in this order)")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        result = dict(memory=memory(work, args.memory))
        if not args.skip_throughput:
            result["throughput"] = throughput(args, work)
    print("peak RSS (MiB): " + ", ".join(f"{r['images']} images {r['peak_rss_mib']}"
                                         for r in result["memory"]))
    first, last = result["memory"][0], result["memory"][-1]
    print(f"ratio {last['images']} / {first['images']} images: "
          f"{last['peak_rss_mib'] / first['peak_rss_mib']:.3f}")
    for row in result.get("throughput", []):
        print(f"{row['method']:8} ranks {row['ranks']} batch {row['batch']:3d}: "
              f"{row['images_per_s']:.3f} images/s ({row['images']} in {row['seconds']} s)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
