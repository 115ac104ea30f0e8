"""The ``captum-idg`` command: argument parsing only; torch loads after ``--help``."""

import argparse
import os
import sys
from pathlib import Path
from typing import List, Optional, Sequence

DESCRIPTION = """Explain images with Integrated Decision Gradients and its companions, and
benchmark the methods by insertion and deletion on real ImageNet models
(EfficientNet-Lite0/1, installed from PyPI, no download at run time)."""
EPILOG = """examples:
  captum-idg explain --demo                      heatmaps of the photos in scikit-image
  captum-idg explain photo.jpg --methods idg,ig,guided_ig
  captum-idg benchmark --demo                    a few minutes on a CPU
  captum-idg benchmark --full --out run          the README's table (hours on a CPU)
  captum-idg report run                          tables and plots from run/results.csv
methods: idg, idg_uniform, idg_reference, ig, left_ig, guided_ig, agi, adaptive_ig, idgi,
  saliency, input_x_gradient, guided_backprop, occlusion; NAME:STEPS sets a method's own steps"""
MODELS_HELP = "efficientnet_lite0, efficientnet_lite1, or torchvision:ARCH:WEIGHTS.pth"
DEMO_MODELS = ["efficientnet_lite0"]
DEMO_METHODS = "idg,ig,idg_reference"
DEMO_PIXELS_PER_STEP = 896  # 57 scores per curve instead of 225: AUCs within about 1e-3, 3x faster
FULL_MODELS = ["efficientnet_lite0", "efficientnet_lite1"]


def _parser() -> argparse.ArgumentParser:
    formatter = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(prog="captum-idg", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    device = "cuda if available, else cpu"

    explain = commands.add_parser(
        "explain", formatter_class=formatter,
        help="heatmaps and insertion/deletion scores for images",
        description="One PNG per image (the image and a heatmap per method with its colour "
                    "bar and insertion / deletion AUC) and one line per image on stdout.")
    explain.add_argument("images", nargs="*", help="JPEG/PNG files or folders")
    explain.add_argument("--demo", action="store_true",
                         help="explain the photos bundled with scikit-image")
    explain.add_argument("--model", default="efficientnet_lite0", help=MODELS_HELP)
    explain.add_argument("--methods", default="idg,ig", help="comma-separated method names")
    explain.add_argument("--n-steps", type=int, default=50, help="steps of every path method")
    explain.add_argument("--out", type=Path, default=Path("explain-out"),
                         help="folder for the PNGs")
    explain.add_argument("--device", default=None, help=f"torch device ({device})")

    bench = commands.add_parser(
        "benchmark", formatter_class=formatter,
        help="insertion/deletion AUC of methods over models and images",
        description="Explains every correctly classified image (any image of yours counts as "
                    "correct) for its predicted class and scores it. Rows are appended to "
                    "OUT/results.csv as they finish; rerunning with the same OUT resumes.")
    bench.add_argument("images", nargs="*", help="JPEG/PNG files or folders of yours")
    mode = bench.add_mutually_exclusive_group()
    mode.add_argument("--demo", action="store_true",
                      help=f"the scikit-image photos, {DEMO_MODELS[0]}, methods {DEMO_METHODS}, "
                           f"{DEMO_PIXELS_PER_STEP} pixels per step of the curves")
    mode.add_argument("--full", action="store_true",
                      help="22 views of each scikit-image photo, both EfficientNet-Lite models, "
                           "the paper's methods, IDG's variants and the ablation")
    bench.add_argument("--views", action="store_true",
                       help="use 22 crops and mirrors of each image instead of the image")
    bench.add_argument("--models", nargs="+", default=None,
                       help=f"{MODELS_HELP} (default: {' '.join(FULL_MODELS)})")
    bench.add_argument("--methods", default=None,
                       help="comma-separated method names (default: the paper's five and "
                            "IDG's variants)")
    bench.add_argument("--ablation", action="store_true",
                       help="add idg_uniform:16, idg_uniform:256 and ig:256")
    bench.add_argument("--n-steps", type=int, default=50, help="steps of every path method")
    bench.add_argument("--pixels-per-step", type=int, default=None,
                       help="pixels revealed or removed per step of the curves (default: the "
                            "image width, the protocol's: 225 scores for 224 x 224)")
    bench.add_argument("--max-images", type=int, default=None,
                       help="at most this many correctly classified images per model "
                            "(views are taken from every photo in turn)")
    bench.add_argument("--out", type=Path, default=Path("benchmark-out"),
                       help="folder for results.csv, curves.jsonl, tables and plots")
    bench.add_argument("--shard", default=None,
                       help="i/n: this process takes images i, i+n, ... "
                            "(default: RANK/WORLD_SIZE under torchrun, else 0/1)")
    bench.add_argument("--device", default=None, help=f"torch device ({device})")

    report = commands.add_parser(
        "report", formatter_class=formatter,
        help="rebuild the tables and plots of a benchmark folder",
        description="Writes table.txt, paired.txt, photos.txt, paired.png and "
                    "curves_MODEL.png from OUT/results.csv and OUT/curves.jsonl, and prints "
                    "the tables.")
    report.add_argument("out", type=Path, nargs="?", default=Path("benchmark-out"),
                        help="a benchmark's output folder")
    report.add_argument("--against", default="ig",
                        help="the method every other is paired against; other than ig, the "
                             "paired files are named paired_vs_LABEL.txt, ...")

    merge = commands.add_parser(
        "merge", formatter_class=formatter, help="merge the folders of shards into one",
        description="Concatenates the results.csv and curves.jsonl of shards, then reports.")
    merge.add_argument("shards", nargs="+", type=Path, help="shard output folders")
    merge.add_argument("--out", type=Path, default=Path("benchmark-out"),
                       help="folder for the merged files")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return {"explain": _explain, "benchmark": _benchmark, "report": _report,
                "merge": _merge}[args.command](args)
    except ValueError as error:
        print(f"captum-idg: error: {error}", file=sys.stderr)
        return 2


def _device(name: Optional[str]) -> str:
    import torch

    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name}, but CUDA is not available")
    return name


def _explain(args: argparse.Namespace) -> int:
    from captum_idg.evaluation.explain import explain_images
    from captum_idg.evaluation.images import demo_images, image_paths
    from captum_idg.evaluation.methods import check_methods

    methods = check_methods(_method_list(args.methods))
    if not args.images and not args.demo:
        raise ValueError("give image files or folders, or --demo")
    images = demo_images() if args.demo else []
    return explain_images(images + image_paths(args.images), args.model, methods, args.out,
                          args.n_steps, _device(args.device))


def _method_list(text: str) -> List[str]:
    return [m.strip() for m in text.split(",") if m.strip()]


def _benchmark(args: argparse.Namespace) -> int:
    from captum_idg.evaluation.images import demo_images, image_paths, load_image, views
    from captum_idg.evaluation.methods import ABLATION_EXTRA, BENCHMARK_METHODS, check_methods
    from captum_idg.evaluation.runner import run_benchmark, shard

    index, count = _parse_shard(args.shard)
    pixels_per_step = args.pixels_per_step
    if args.demo:
        models, methods = args.models or DEMO_MODELS, args.methods or DEMO_METHODS
        pixels_per_step = pixels_per_step or DEMO_PIXELS_PER_STEP
    else:
        models, methods = args.models or FULL_MODELS, args.methods or ",".join(BENCHMARK_METHODS)
    methods = _method_list(methods) + (list(ABLATION_EXTRA) if args.ablation or args.full
                                       else [])
    check_methods(methods)
    if args.images:
        images = [load_image(path) for path in image_paths(args.images)]
    else:
        images = [im for im in demo_images() if im.labels]
    if args.views or args.full:  # view k of every image, then view k + 1, ...
        per_image = [views(image) for image in images]
        images = [v for k in range(max(map(len, per_image))) for vs in per_image
                  for v in vs[k : k + 1]]
    out = args.out if count == 1 else args.out / f"shard-{index}-of-{count}"
    out.mkdir(parents=True, exist_ok=True)
    result = run_benchmark(models, shard(images, index, count), methods, n_steps=args.n_steps,
                           out_dir=out, device=_device(args.device),
                           pixels_per_step=pixels_per_step, max_images=args.max_images)
    for model, names in result.skipped.items():
        if names:
            print(f"{model}: skipped {len(names)} images not classified correctly: "
                  f"{', '.join(names)}")
    if result.resumed:
        print(f"resumed: {result.resumed} rows were already in {out / 'results.csv'}")
    return _print_report(out)


def _report(args: argparse.Namespace) -> int:
    from captum_idg.evaluation.methods import method_label

    return _print_report(args.out, method_label(args.against))


def _merge(args: argparse.Namespace) -> int:
    from captum_idg.evaluation.report import read_csv, write_csv

    records = read_csv([shard / "results.csv" for shard in args.shards])
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(records, args.out / "results.csv")
    with open(args.out / "curves.jsonl", "w") as merged:
        for shard in args.shards:
            if (shard / "curves.jsonl").exists():
                merged.write((shard / "curves.jsonl").read_text())
    return _print_report(args.out)


def _print_report(out: Path, baseline: Optional[str] = None) -> int:
    from captum_idg.evaluation.report import BASELINE_METHOD, rebuild

    if not (out / "results.csv").exists():
        raise ValueError(f"no results.csv in {out}")
    text = rebuild(out, baseline or BASELINE_METHOD)
    if not text:
        print("no image was explained")
        return 1
    print(text)
    print(f"written: tables and pictures in {out}")
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
