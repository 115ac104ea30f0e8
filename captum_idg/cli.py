"""The ``captum-idg`` command line: argument parsing only, the work is elsewhere."""

import argparse
import os
import sys
from pathlib import Path
from typing import List, Optional, Sequence

import torch

from captum_idg.evaluation.explain import explain_images
from captum_idg.evaluation.images import demo_images, image_paths, load_image
from captum_idg.evaluation.methods import DEFAULT_METHODS, METHODS
from captum_idg.evaluation.models import DEFAULT_MODELS
from captum_idg.evaluation.report import read_csv, summary_table, write_csv
from captum_idg.evaluation.runner import run_benchmark, shard


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="captum-idg", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    explain = commands.add_parser(
        "explain", help="heatmaps and insertion/deletion scores for images")
    explain.add_argument("images", nargs="*", help="JPEG/PNG files or folders")
    explain.add_argument("--demo", action="store_true",
                         help="the real photos bundled with scikit-image")
    explain.add_argument("--model", default=DEFAULT_MODELS[0],
                         help="efficientnet_lite0 (default), efficientnet_lite1 or "
                              "torchvision:ARCH:WEIGHTS")
    explain.add_argument("--methods", default="idg,ig",
                         help=f"comma-separated, from: {', '.join(METHODS)}")
    explain.add_argument("--n-steps", type=int, default=50)
    explain.add_argument("--out", type=Path, default=Path("explain-out"))
    explain.add_argument("--device", default="cpu")

    bench = commands.add_parser(
        "benchmark", help="insertion/deletion AUC of methods over models and images")
    bench.add_argument("images", nargs="*", help="JPEG/PNG files or folders (default: --demo)")
    bench.add_argument("--demo", action="store_true",
                       help="the real photos bundled with scikit-image")
    bench.add_argument("--flips", action="store_true", help="add mirror images of the photos")
    bench.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS),
                       help="efficientnet_lite0, efficientnet_lite1 or torchvision:ARCH:WEIGHTS")
    bench.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                       help=f"comma-separated, from: {', '.join(METHODS)}")
    bench.add_argument("--n-steps", type=int, default=50, help="steps of every path method")
    bench.add_argument("--out", type=Path, default=Path("benchmark-out"))
    bench.add_argument("--shard", default=None,
                       help="i/n: this process takes images i, i+n, ... "
                            "(default: RANK/WORLD_SIZE under torchrun, else 0/1)")
    bench.add_argument("--device", default="cpu")

    merge = commands.add_parser("merge", help="merge the CSVs of shards into one table")
    merge.add_argument("csvs", nargs="+", type=Path)
    merge.add_argument("--out", type=Path, default=Path("benchmark-out"))

    args = parser.parse_args(argv)
    try:
        return {"explain": _explain, "benchmark": _benchmark, "merge": _merge}[
            args.command](args)
    except ValueError as error:
        print(f"captum-idg: error: {error}", file=sys.stderr)
        return 2


def _explain(args: argparse.Namespace) -> int:
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda, but CUDA is not available")
    if not args.images and not args.demo:
        raise ValueError("give image files or folders, or --demo")
    images = demo_images() if args.demo else []
    return explain_images(images + image_paths(args.images), args.model,
                          _method_list(args.methods), args.out, args.n_steps, args.device)


def _method_list(text: str) -> List[str]:
    return [m.strip() for m in text.split(",") if m.strip()]


def _benchmark(args: argparse.Namespace) -> int:
    index, count = _parse_shard(args.shard)
    images = demo_images(flips=args.flips) if args.demo or not args.images else [
        load_image(path) for path in image_paths(args.images)]
    out = args.out if count == 1 else args.out / f"shard-{index}-of-{count}"
    result = run_benchmark(args.models, shard(images, index, count), _method_list(args.methods),
                           n_steps=args.n_steps, out_dir=out, device=args.device)
    for model, names in result.skipped.items():
        if names:
            print(f"{model}: skipped (not correctly classified): {', '.join(names)}")
    return _report(result.records, out)


def _merge(args: argparse.Namespace) -> int:
    records = read_csv(args.csvs)
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(records, args.out / "results.csv")
    return _report(records, args.out)


def _report(records: List, out: Path) -> int:
    if not records:
        print("no image was explained")
        return 1
    table = summary_table(records)
    (out / "table.txt").write_text(table + "\n")
    print(table)
    print(f"written: {out / 'results.csv'}, {out / 'table.txt'}")
    return 0


def _parse_shard(text: Optional[str]) -> tuple:
    if text is None:
        return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like i/n, got {text!r}") from None
    return index, count


if __name__ == "__main__":
    sys.exit(main())
