"""The ``captum-idg`` command: argument parsing only; torch loads after the
arguments are checked (``--help`` and argument errors are instant)."""

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, List, Optional, Sequence

from captum_idg.names import ABLATION_EXTRA, BENCHMARK_METHODS, METHOD_NAMES, METRIC_NAMES

DESCRIPTION = """Explain images with Integrated Decision Gradients and its companions, and
benchmark the methods by insertion and deletion on real ImageNet models
(EfficientNet-Lite0/1, installed from PyPI, no download at run time)."""
METHODS_HELP = f"""methods: {", ".join(METHOD_NAMES)};
  NAME:STEPS sets a method's own steps (idg_uniform:256)
metrics: insertion, deletion (RISE), road (ROAD, higher is better), mprt (cascading
  model-parameter randomisation: rank correlation with the original map, lower is
  more model-sensitive; costs --mprt-stages more attributions per map)"""
EPILOG = f"""examples:
  captum-idg explain --demo                      heatmaps of the photos in scikit-image
  captum-idg explain photo.jpg --methods idg,ig,guided_ig
  captum-idg benchmark --demo                    a few minutes on a CPU
  captum-idg benchmark --full --out run          the README's table (hours on a CPU)
  captum-idg benchmark imagenet/val --per-class 5 --seed 0 --batch-size 16
  torchrun --nproc_per_node=8 -m captum_idg.cli benchmark imagenet/val ...   one rank a GPU
  captum-idg attribute photos/ --method idg --out attr --float16   keep every attribution
  captum-idg report run                          tables and plots from run/results.csv
{METHODS_HELP}"""
MODELS_HELP = "efficientnet_lite0, efficientnet_lite1, or torchvision:ARCH:WEIGHTS.pth"
DEMO_MODELS = ["efficientnet_lite0"]
DEMO_METHODS = "idg,ig,idg_reference"
DEMO_PIXELS_PER_STEP = 896  # 57 scores per curve instead of 225: AUCs within about 1e-3, 3x faster
# a first look: 29 scores per curve, AUCs within 6e-3 of 896's (measured on the demo photos)
EXPLAIN_PIXELS_PER_STEP = 2 * DEMO_PIXELS_PER_STEP
FULL_MODELS = ["efficientnet_lite0", "efficientnet_lite1"]


class _Help(argparse.RawDescriptionHelpFormatter):
    """Shows an option's default unless it is None or False or the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "default" not in text:
            text += " (default: %(default)s)"
        return text


def _positive(minimum: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _method_names(text: str) -> str:
    unknown = [m for m in text.split(",") if m.strip() and m.strip().partition(":")[0]
               not in METHOD_NAMES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown method {unknown[0].strip()!r}: choose from "
                                         f"{', '.join(METHOD_NAMES)}")
    return text


def _metric_names(text: str) -> List[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in METRIC_NAMES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown metric {unknown[0]!r}: choose from "
                                         f"{', '.join(METRIC_NAMES)}")
    return names


def _device_name(text: str) -> str:
    if text == "cpu" or text == "cuda" or text.startswith("cuda:") and text[5:].isdigit():
        return text
    raise argparse.ArgumentTypeError(f"must be cpu, cuda or cuda:N, got {text!r}")


def _images_options(parser: argparse.ArgumentParser, demo_help: str) -> None:
    parser.add_argument("images", nargs="*",
                        help="image files or folders: an ImageFolder tree (class sub-folders; "
                             "ImageNet synset names such as n01440764 give the label, other "
                             "names count any prediction as correct) or a flat folder")
    parser.add_argument("--demo", action="store_true", help=demo_help)


def _run_options(parser: argparse.ArgumentParser, batch_size: int = 8,
                 metrics: str = "insertion,deletion,road") -> None:
    parser.add_argument("--metrics", type=_metric_names, default=metrics,
                        help="comma-separated metrics, each a column of results.csv "
                             f"(default: {metrics or 'none'})")
    parser.add_argument("--mprt-stages", type=_positive(1), default=4,
                        help="groups of layers the randomisation test resets, from the top")
    parser.add_argument("--n-steps", type=_positive(2), default=50,
                        help="steps of every path method")
    parser.add_argument("--batch-size", type=_positive(1), default=batch_size,
                        help="images per attribute call (halved on out-of-memory)")
    parser.add_argument("--internal-batch-size", type=_positive(1), default=25,
                        help="path points times images per forward/backward pass (larger "
                             "uses a GPU better)")
    parser.add_argument("--per-class", type=_positive(1), default=None,
                        help="at most this many images per class folder")
    parser.add_argument("--seed", type=int, default=None,
                        help="draw the --per-class images at random with this seed "
                             "(default: the first ones)")
    parser.add_argument("--max-images", type=_positive(1), default=None,
                        help="at most this many images, the first in order")
    parser.add_argument("--workers", type=_positive(0), default=2,
                        help="DataLoader processes that decode images")
    parser.add_argument("--keep-attributions", action="store_true",
                        help="save every attribution (safetensors) next to results.csv")
    parser.add_argument("--float16", action="store_true",
                        help="store attributions as float16")
    parser.add_argument("--device", type=_device_name, default=None,
                        help="cpu, cuda or cuda:N (default: cuda if available, under torchrun "
                             "the GPU LOCAL_RANK)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="captum-idg", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=_Help)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_explain_command, _benchmark_command, _attribute_command, _report_command):
        add(commands)
    return parser


def _explain_command(commands: Any) -> None:
    explain = commands.add_parser(
        "explain", formatter_class=_Help, epilog=METHODS_HELP,
        help="heatmaps and insertion/deletion scores for images",
        description="One PNG per image (the image, then a heatmap per method over it with its "
                    "colour bar and insertion / deletion AUC) and one line per image on stdout.")
    _images_options(explain, "explain the photos bundled with scikit-image")
    explain.add_argument("--model", default="efficientnet_lite0", help=MODELS_HELP)
    explain.add_argument("--methods", type=_method_names, default="idg,ig",
                         help="comma-separated method names")
    explain.add_argument("--pixels-per-step", type=_positive(1),
                         default=EXPLAIN_PIXELS_PER_STEP,
                         help="pixels revealed or removed per step of the curves (the "
                              "protocol's is the image width; larger is faster)")
    explain.add_argument("--out", type=Path, default=Path("explain-out"),
                         help="folder for the PNGs and results.csv")
    # batch 1: a picture as soon as the first image is done
    _run_options(explain, batch_size=1, metrics="insertion,deletion")


def _benchmark_command(commands: Any) -> None:
    bench = commands.add_parser(
        "benchmark", formatter_class=_Help, epilog=METHODS_HELP,
        help="insertion/deletion AUC of methods over models and images",
        description="Explains every correctly classified image for its predicted class and "
                    "scores it. Rows are appended to OUT/results.csv as they finish; rerunning "
                    "with the same OUT resumes (with any number of processes). Under torchrun "
                    "each rank explains its share and rank 0 merges.")
    _images_options(bench, f"the scikit-image photos, {DEMO_MODELS[0]}, methods "
                           f"{DEMO_METHODS}, {DEMO_PIXELS_PER_STEP} pixels per step")
    bench.add_argument("--full", action="store_true",
                       help="22 views of each scikit-image photo, both EfficientNet-Lite models, "
                            "the paper's methods, IDG's variants and the ablation")
    bench.add_argument("--views", action="store_true",
                       help="use 22 crops and mirrors of each bundled photo")
    bench.add_argument("--models", nargs="+", default=None,
                       help=f"{MODELS_HELP} (default: {' '.join(FULL_MODELS)})")
    bench.add_argument("--methods", type=_method_names, default=None,
                       help="comma-separated method names (default: the paper's five and "
                            "IDG's variants)")
    bench.add_argument("--ablation", action="store_true",
                       help="add idg_uniform:16, idg_uniform:256 and ig:256")
    bench.add_argument("--pixels-per-step", type=_positive(1), default=None,
                       help="pixels revealed or removed per step of the curves (default: the "
                            "image width, the protocol's: 225 scores for 224 x 224)")
    bench.add_argument("--no-heatmaps", action="store_true",
                       help="draw no heatmaps (they are drawn for whole images)")
    bench.add_argument("--out", type=Path, default=Path("benchmark-out"),
                       help="folder for results.csv, curves.jsonl, tables and plots")
    _run_options(bench)


def _attribute_command(commands: Any) -> None:
    attribute = commands.add_parser(
        "attribute", formatter_class=_Help, epilog=METHODS_HELP,
        help="attributions of a whole dataset, kept on disk",
        description="Explains every image for its predicted class and stores every "
                    "attribution as safetensors shards under OUT/attributions, with one row "
                    "per image in OUT/results.csv (image, labels, target, probability, "
                    "seconds, the shard, and any --metrics). "
                    "captum_idg.evaluation.read_attribution(OUT, IMAGE, METHOD) reads one "
                    "back. Resumes like benchmark; runs under torchrun.")
    _images_options(attribute, "the photos bundled with scikit-image")
    attribute.add_argument("--model", default="efficientnet_lite0", help=MODELS_HELP)
    attribute.add_argument("--method", type=_method_names, default="idg",
                           help="a method name (or several, comma-separated)")
    attribute.add_argument("--pixels-per-step", type=_positive(1), default=None,
                           help="with --metrics insertion or deletion: pixels per step of the "
                                "curves (default: the image width)")
    attribute.add_argument("--out", type=Path, default=Path("attribute-out"),
                           help="folder for results.csv and attributions/")
    _run_options(attribute, metrics="")


def _report_command(commands: Any) -> None:
    report = commands.add_parser(
        "report", formatter_class=_Help,
        help="rebuild the tables and plots of a benchmark folder",
        description="Writes table.txt, paired.txt, photos.txt, paired.png and "
                    "curves_MODEL.png from OUT/results.csv and OUT/curves.jsonl, and prints "
                    "the tables.")
    report.add_argument("out", type=Path, nargs="?", default=Path("benchmark-out"),
                        help="a benchmark's output folder")
    report.add_argument("--against", type=_method_names, default="ig",
                        help="the method every other is paired against; other than ig, the "
                             "paired files are named paired_vs_LABEL.txt, ...")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    interrupted = []

    def interrupt(signum: int, frame: Any) -> None:
        interrupted.append(signum)
        # from here on, the threads that pass DataLoader workers' tensors lose their
        # peers as the workers stop: their shutdown tracebacks are not the user's errors
        threading.excepthook = lambda hook_args: None
        raise KeyboardInterrupt

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, interrupt) if main_thread else None
    try:
        return {"explain": _explain, "benchmark": _benchmark, "attribute": _attribute,
                "report": _report}[args.command](args)
    except BaseException as error:
        if interrupted:  # Ctrl-C, also where a library turned it into another error
            _stopped(args)
        if not isinstance(error, ValueError):
            raise
        print(f"captum-idg: error: {error}", file=sys.stderr)
        return 2
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)


def _stopped(args: argparse.Namespace) -> None:
    """Says what a Ctrl-C kept and how to resume, and leaves with status 130 at
    once: rows are on disk already, and DataLoader workers and the threads that
    share their tensors would print tracebacks of their own shutdown."""
    print(f"\ncaptum-idg: stopped. Every finished row is kept in {getattr(args, 'out', None)}; "
          "run the same command again to resume.", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(130)


def _main_rank() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _entries(args: argparse.Namespace, views: bool = False) -> list:
    """The images the arguments name, selected; missing files are an error
    before anything loads."""
    if not args.images and not args.demo and args.command != "benchmark":
        raise ValueError("give image files or folders, or --demo")
    from captum_idg.evaluation.datasets import bundled_images, find_images, select

    entries = find_images(args.images) if args.images else []
    if args.demo or not args.images:
        entries += bundled_images(with_views=views, labelled_only=args.command != "explain")
    return select(entries, args.per_class, args.seed)[: args.max_images]


def _method_list(text: str) -> List[str]:
    from captum_idg.evaluation.methods import check_methods

    return check_methods([m.strip() for m in text.split(",") if m.strip()])


def _run(args: argparse.Namespace, entries: Any, models: List[str], methods: List[str],
         **settings: Any) -> Any:
    r"""The pipeline with the settings every command shares from ``args``, and
    the command's own ``settings`` on top."""
    from captum_idg.evaluation.pipeline import run

    shared = dict(n_steps=args.n_steps, batch_size=args.batch_size, metrics=args.metrics,
                  mprt_stages=args.mprt_stages, pixels_per_step=args.pixels_per_step,
                  float16=args.float16, device=args.device, workers=args.workers,
                  internal_batch_size=args.internal_batch_size)
    return run(entries, models, methods, args.out, **{**shared, **settings})


def _explain(args: argparse.Namespace) -> int:
    methods = _method_list(args.methods)
    entries = _entries(args)
    summary = _run(args, entries, [args.model], methods,
                   keep_attributions=args.keep_attributions, correct_only=False,
                   heatmaps=lambda model, image: args.out / f"{image}.png", lines=True)
    if summary.resumed:
        print(f"resumed: {summary.resumed} maps were already in {args.out / 'results.csv'} "
              "(their pictures are there too)")
    failed = [name for names in summary.skipped.values() for name in names]
    return 2 if failed else 0


def _benchmark(args: argparse.Namespace) -> int:

    pixels_per_step = args.pixels_per_step
    if args.demo:
        models, methods = args.models or DEMO_MODELS, args.methods or DEMO_METHODS
        pixels_per_step = pixels_per_step or DEMO_PIXELS_PER_STEP
    else:
        models, methods = args.models or FULL_MODELS, args.methods or ",".join(BENCHMARK_METHODS)
    if args.demo and args.full:
        raise ValueError("--demo and --full exclude each other")
    methods = _method_list(methods) + (list(ABLATION_EXTRA) if args.ablation or args.full
                                       else [])
    entries = _entries(args, views=args.views or args.full)
    summary = _run(args, entries, models, methods, pixels_per_step=pixels_per_step,
                   keep_attributions=args.keep_attributions, heatmaps=not args.no_heatmaps)
    if not _main_rank():
        return 0
    for model, names in summary.skipped.items():
        print(f"{model}: skipped {len(names)} images (misclassified or unreadable; reasons in "
              f"{args.out / 'skipped.csv'})")
    if summary.resumed:
        print(f"resumed: {summary.resumed} rows were already in {args.out / 'results.csv'}")
    return _print_report(args.out)


def _attribute(args: argparse.Namespace) -> int:
    methods = _method_list(args.method)
    entries = _entries(args)
    summary = _run(args, entries, [args.model], methods, keep_attributions=True,
                   correct_only=False, heatmaps=False)
    if _main_rank():
        skipped = sum(map(len, summary.skipped.values()))
        print(f"attributions of {summary.rows + summary.resumed} rows in {args.out} "
              f"({summary.resumed} resumed, {skipped} images unreadable)")
    return 0


def _report(args: argparse.Namespace) -> int:
    from captum_idg.evaluation.methods import method_label

    return _print_report(args.out, method_label(args.against))


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


if __name__ == "__main__":
    sys.exit(main())
