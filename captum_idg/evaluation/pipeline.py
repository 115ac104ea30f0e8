"""The one attribution pipeline behind ``benchmark``, ``explain`` and ``attribute``.

``Dataset -> DataLoader`` (workers decode, pinned memory to the GPU) ``->``
batches of images explained by one ``attribute`` call per method (each example
keeps its own schedule) ``->`` the chosen metrics (insertion, deletion, ROAD,
the randomisation test), batched across images ``->`` rows appended as they
finish, attributions kept as safetensors shards. Under ``torchrun`` every rank
takes its share of the images on its own device, and rank 0 merges the parts
after a barrier. A rerun into the same folder skips every row already there,
whatever the number of ranks; rows made with other settings are refused, never
reused.
"""

import copy
import dataclasses
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm import tqdm

import captum_idg
from captum_idg.evaluation.datasets import (
    Batch,
    Entry,
    ImageDataset,
    collate,
    ignore_interrupts,
)
from captum_idg.evaluation.distributed import Ranks, ranks
from captum_idg.evaluation.methods import (
    INTERNAL_BATCH_SIZE,
    Explain,
    check_methods,
    is_method,
    make_method,
    method_about,
    method_label,
    method_steps,
)
from captum_idg.evaluation.models import ImageModel, categories, check_model, load_model
from captum_idg.evaluation.report import plot_heatmaps, rebuild
from captum_idg.evaluation.results import (
    PartWriter,
    Record,
    Settings,
    merge_parts,
    read_rows,
    read_skipped,
)
from captum_idg.evaluation.store import read_attribution, write_shard
from captum_idg.metrics import curve_auc, deletion_curve, insertion_curve
from captum_idg.metrics.randomisation import randomisation_correlations
from captum_idg.metrics.road import road_curves, road_score
from captum_idg.names import DEFAULT_METRICS, METRIC_NAMES

CURVE_BATCH = 64
MPRT_STAGES = 4
HeatmapPath = Callable[[str, str], Path]  # (model, image) -> PNG


@dataclass
class RunSummary:
    rows: int = 0  # rows this process wrote
    resumed: int = 0  # rows found in the output folder and not run again
    skipped: Dict[str, List[str]] = field(default_factory=dict)  # model -> images not explained


def attribute_in_halves(explain: Explain, x: Tensor, target: Tensor,
                        log: Callable[[str], None] = print) -> Tensor:
    """``explain(x, target)``; on out-of-memory the batch is halved and retried
    (logged), down to single images, whose out-of-memory reaches the caller."""
    try:
        return explain(x, target).detach()
    except torch.OutOfMemoryError:
        if len(x) == 1:
            raise
        if x.device.type == "cuda":
            torch.cuda.empty_cache()
        half = len(x) // 2
        log(f"out of memory on a batch of {len(x)}: retrying as {half} + {len(x) - half}")
        return torch.cat([attribute_in_halves(explain, x[:half], target[:half], log),
                          attribute_in_halves(explain, x[half:], target[half:], log)])


def check_metrics(metrics: Sequence[str]) -> List[str]:
    """``metrics`` in ``METRIC_NAMES``' order if each is one of them, else ValueError."""
    unknown = [m for m in metrics if m not in METRIC_NAMES]
    if unknown:
        raise ValueError(f"unknown metric {unknown[0]!r}: choose from {', '.join(METRIC_NAMES)}")
    return [m for m in METRIC_NAMES if m in metrics]


def score_curves(model: ImageModel, x: Tensor, attribution: Tensor, target: Tensor,
                 metrics: Sequence[str], pixels_per_step: Optional[int]) -> Dict[str, Tensor]:
    """The curves ``(B, points)`` of a batch that ``metrics`` need: RISE
    insertion and deletion, ROAD's MoRF and LeRF."""
    curves = {}
    for name, curve in (("insertion", insertion_curve), ("deletion", deletion_curve)):
        if name in metrics:
            curves[name] = curve(model.module, x, attribution, target,
                                 pixels_per_step=pixels_per_step,
                                 max_examples_per_batch=CURVE_BATCH)
    if "road" in metrics:
        curves["road_morf"], curves["road_lerf"] = road_curves(
            model.module, x, attribution, target, max_examples_per_batch=CURVE_BATCH)
    return curves


def full_view(name: str) -> bool:
    """An image of the user's or a photo's whole view (``NAME@1-c``): the ones drawn."""
    return "@" not in name or name.endswith("@1-c")


Methods = Union[Sequence[str], Mapping[str, Any]]


def run(
    entries: Sequence[Entry],
    models: Sequence[Union[str, ImageModel]],
    methods: Methods,
    out: Path,
    n_steps: int = 50,
    batch_size: int = 8,
    metrics: Sequence[str] = DEFAULT_METRICS,
    pixels_per_step: Optional[int] = None,
    keep_attributions: bool = False,
    float16: bool = False,
    correct_only: bool = True,
    heatmaps: Union[bool, HeatmapPath] = True,
    device: Optional[str] = None,
    workers: int = 0,
    internal_batch_size: Optional[int] = INTERNAL_BATCH_SIZE,
    progress: bool = True,
    lines: bool = False,
    mprt_stages: int = MPRT_STAGES,
) -> RunSummary:
    """
    Explains ``entries`` (see :mod:`~captum_idg.evaluation.datasets`: files,
    folders, your own Dataset) with every method of ``methods`` on every model
    of ``models`` (names for :func:`load_model` or :class:`ImageModel`
    objects), for the predicted class, in batches of ``batch_size``, and
    appends one row per image and method to ``out/results.csv``. ``methods``
    are registry specs (``["idg", "ig:16"]``) or, for a single model, a mapping
    of names to Captum-style attribution objects built on its module
    (``{"my_ig": IntegratedGradients(model.module)}``: ``attribute(x,
    target=t)`` is called on normalised images).

    ``metrics``: any of ``METRIC_NAMES`` (none: attributions only): insertion and
    deletion AUCs (``pixels_per_step`` None: the image width, the protocol's),
    ROAD, and the randomisation test in ``mprt_stages`` stages, each a column
    of ``results.csv``. ``keep_attributions``: every map saved as
    safetensors (``float16`` halves the space); see :func:`read_attribution`.
    ``correct_only``: images whose prediction is not among their labels are
    skipped (images without labels always count as correct). ``heatmaps``:
    draws the full views (True: ``out/heatmaps/MODEL/NAME.png``, or a function
    of model and image naming the PNG) with every method that has a row.
    ``workers``: DataLoader processes that decode images. ``lines``: prints a
    line per image. Under ``torchrun`` (``WORLD_SIZE`` > 1) each rank explains
    its share and rank 0 merges the rows and rebuilds the tables.
    """
    metrics = check_metrics(metrics) if metrics else []
    if not isinstance(methods, Mapping):
        check_methods(methods)
    elif len(models) != 1:
        raise ValueError("attribution objects are bound to one model: give one model")
    for spec in models:
        if isinstance(spec, str):
            check_model(spec)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    me = ranks(device)
    out.mkdir(parents=True, exist_ok=True)
    if me.main:
        merge_parts(out)  # what a killed run left, whatever its number of ranks
    me.barrier()
    job = _Job(out, me, metrics, mprt_stages, pixels_per_step, keep_attributions, float16,
               correct_only, heatmaps, lines, progress)
    try:
        for spec in models:
            model = load_model(spec, me.device) if isinstance(spec, str) else spec
            model.module.to(me.device)
            loader = job.loader(model, entries, methods, n_steps, batch_size, workers)
            explainers = _explainers(methods, model, n_steps, internal_batch_size,
                                     "mprt" in metrics)
            for batch in loader:
                job.explain(model, batch, explainers)
    finally:
        job.bar.close()
    me.barrier()
    if me.main:
        merge_parts(out)
        if metrics:
            rebuild(out)
    return job.summary


Randomised = Callable[[], Tuple[Explain, torch.nn.Module]]  # a method on a model copy


@dataclass
class _Explainer:
    """A method built for one model: its label, the call, what it is, and how to
    build it again on a copy of the model (the randomisation test)."""

    label: str
    explain: Explain
    about: str = "your attribution object"
    randomised: Optional[Randomised] = None


def _explainers(methods: Methods, model: ImageModel, n_steps: int,
                internal_batch_size: Optional[int], mprt: bool) -> Dict[str, _Explainer]:
    if isinstance(methods, Mapping):
        def on_copy(obj: Any) -> Tuple[Explain, torch.nn.Module]:
            memo: Dict[int, Any] = {}
            module = copy.deepcopy(model.module, memo)  # the object's copy runs this copy
            copied = copy.deepcopy(obj, memo)
            return lambda x, t: copied.attribute(x, target=t), module

        return {name: _Explainer(name, lambda x, t, obj=obj: obj.attribute(x, target=t),
                              randomised=(lambda obj=obj: on_copy(obj)) if mprt else None)
                for name, obj in methods.items()}

    def rebuilt(spec: str) -> Tuple[Explain, torch.nn.Module]:
        twin = dataclasses.replace(model, module=copy.deepcopy(model.module))
        return make_method(spec, twin, n_steps, internal_batch_size), twin.module

    return {m: _Explainer(method_label(m), make_method(m, model, n_steps, internal_batch_size),
                       method_about(m), (lambda m=m: rebuilt(m)) if mprt else None)
            for m in methods}


@dataclass
class _Seen:
    """A batch as the model saw it: pixels, normalised inputs, class
    probabilities, predictions, and the images kept for explaining."""

    pixels: Tensor
    x: Tensor
    probabilities: Tensor
    predicted: Tensor
    kept: List[int]


@dataclass
class _Job:
    """One rank's share of a run: the rows already there, where new ones go,
    the settings each method's rows must have, the progress bar."""

    out: Path
    me: Ranks
    metrics: Sequence[str]
    mprt_stages: int
    pixels_per_step: Optional[int]
    keep: bool
    float16: bool
    correct_only: bool
    heatmaps: Union[bool, HeatmapPath]
    lines: bool
    progress: bool

    def __post_init__(self) -> None:
        self.done = {r.key: r for r in read_rows(self.out)}
        self.skipped = read_skipped(self.out)
        self.writer = PartWriter(self.out, self.me.rank)
        self.summary = RunSummary()
        self.settings: Dict[str, Settings] = {}
        self.bar = tqdm(disable=not self.progress or not self.me.main, desc="explain",
                        unit="map", file=sys.stderr, dynamic_ncols=True)

    def log(self, message: str) -> None:
        self.bar.write(message, file=sys.stderr)

    def loader(self, model: ImageModel, entries: Sequence[Entry], methods: Methods,
               n_steps: int, batch_size: int, workers: int) -> DataLoader:
        """The DataLoader of this rank's share of the images ``model`` still needs."""
        scored = {"insertion", "deletion"} & set(self.metrics)
        pixels = (self.pixels_per_step or model.size) if scored else 0
        names = ",".join(self.metrics).replace("mprt", f"mprt:{self.mprt_stages}")
        steps = {m: 0 if isinstance(methods, Mapping) else method_steps(m, n_steps)
                 for m in methods}
        self.settings = {m: Settings(steps[m], pixels, model.size, names) for m in methods}
        _check_settings(self.done.values(), model.name, self.settings, self.out)
        pending = [e for e in entries if (model.name, e.name) not in self.skipped and (
            any((model.name, e.name, m) not in self.done for m in methods)
            or self.heatmaps and full_view(e.name) and not self.heatmap(model, e.name).exists())]
        self.summary.resumed += sum((model.name, e.name, m) in self.done
                                    for e in entries for m in methods)
        mine = self.me.share(pending)
        self.bar.total = (self.bar.total or 0) + len(mine) * len(methods)
        self.bar.refresh()
        return DataLoader(ImageDataset(mine, model.size), batch_size=batch_size,
                          collate_fn=collate, num_workers=workers,
                          worker_init_fn=ignore_interrupts,
                          pin_memory=self.me.device.startswith("cuda"))

    def heatmap(self, model: ImageModel, image: str) -> Path:
        if callable(self.heatmaps):
            return self.heatmaps(model.name, image)
        return self.out / "heatmaps" / model.name / f"{image}.png"

    def skip(self, model: ImageModel, image: str, reason: str, methods: int) -> None:
        self.writer.skipped(model.name, image, reason)
        self.summary.skipped.setdefault(model.name, []).append(image)
        self.bar.update(methods)

    def explain(self, model: ImageModel, batch: Batch, explainers: Dict[str, _Explainer]) -> None:
        """Predicts, explains and scores one batch; writes its rows and pictures."""
        for name, error in batch.failed:
            self.log(f"captum-idg: skipped {name}: {error}")
            self.skip(model, name, f"unreadable: {error}", len(explainers))
        if not batch.entries:
            return
        seen = self.predict(model, batch, len(explainers))
        maps: Dict[int, Dict[str, Tensor]] = {i: {} for i in seen.kept}
        rows: Dict[int, Dict[str, Record]] = {i: {} for i in seen.kept}
        for spec, method in explainers.items():
            todo = [i for i in seen.kept
                    if (model.name, batch.entries[i].name, spec) not in self.done]
            if todo:
                for i, attribution, record in self.explain_method(model, batch, seen, spec,
                                                                  method, todo):
                    maps[i][spec], rows[i][spec] = attribution, record
        for i in seen.kept:
            self.show(model, batch, seen, i, maps[i], rows[i], explainers)

    def predict(self, model: ImageModel, batch: Batch, methods: int) -> "_Seen":
        """The model's prediction of each image; the images whose prediction is
        not among their labels are skipped where only correct ones count."""
        pixels = batch.pixels.to(self.me.device, non_blocking=True)
        x = model.normalise(pixels)
        with torch.no_grad():
            probabilities = model.module(x).softmax(dim=1)
        predicted = probabilities.argmax(dim=1)
        kept = []
        for i, entry in enumerate(batch.entries):
            if (self.correct_only and entry.labels is not None
                    and int(predicted[i]) not in entry.labels):
                self.skip(model, entry.name, f"predicted {categories()[int(predicted[i])]}",
                          methods)
            else:
                kept.append(i)
        return _Seen(pixels, x, probabilities, predicted, kept)

    def explain_method(self, model: ImageModel, batch: Batch, seen: "_Seen", spec: str,
                       method: _Explainer, todo: List[int]) -> List[Tuple[int, Tensor, Record]]:
        """Explains and scores the images ``todo`` with one method; writes their
        rows (and maps, where kept) and returns ``(image, map, row)`` of each."""
        self.bar.set_postfix_str(f"{model.name} {method.label} x{len(todo)}")
        xs, targets = seen.x[todo], seen.predicted[todo]
        start = time.perf_counter()
        attributions = attribute_in_halves(method.explain, xs, targets, self.log)
        if xs.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - start) / len(todo)
        settings = self.settings[spec]
        curves = score_curves(model, xs, attributions, targets, self.metrics,
                              settings.pixels_per_step)
        mprt = self.randomisation(method, xs, targets, attributions)
        shard = write_shard(self.out, model.name, spec, self.me.rank, {
            batch.entries[i].name: a for i, a in zip(todo, attributions)},
            self.float16) if self.keep else ""
        done = []
        for k, i in enumerate(todo):
            entry, target = batch.entries[i], int(seen.predicted[i])
            scores = {name: float(curve_auc(curves[name][k])) if name in curves else math.nan
                      for name in ("insertion", "deletion")}
            if "road_morf" in curves:
                scores["road"] = float(road_score(curves["road_morf"][k], curves["road_lerf"][k]))
            if mprt is not None:
                scores["mprt"] = float(mprt[k])
            record = Record(
                model=model.name, image=entry.name, method=method.label, target=target,
                class_name=categories()[target],
                probability=float(seen.probabilities[i, target]),
                seconds=seconds, spec=spec,
                **scores, **dataclasses.asdict(settings),
                labels=";".join(map(str, sorted(entry.labels))) if entry.labels else "",
                attribution=shard, version=captum_idg.__version__)
            self.writer.row(record, {name: c[k] for name, c in curves.items()})
            done.append((i, attributions[k], record))
            self.summary.rows += 1
        self.bar.update(len(todo))
        return done

    def show(self, model: ImageModel, batch: Batch, seen: "_Seen", i: int,
             maps: Dict[str, Tensor], rows: Dict[str, Record],
             explainers: Dict[str, _Explainer]) -> None:
        """Draws image ``i``'s heatmap (full views) and prints its line (``lines``)."""
        entry = batch.entries[i]
        resized = _resized(batch.original[i], model.size)
        if self.heatmaps and full_view(entry.name):
            earlier = {spec: r for (m, image, spec), r in self.done.items()
                       if (m, image) == (model.name, entry.name)}
            self.draw(model, entry.name, resized, seen.pixels[i], seen.x[i : i + 1],
                      seen.probabilities[i], {**earlier, **rows}, maps, explainers)
        if self.lines and rows:
            predicted = int(seen.predicted[i])
            wrong = entry.labels is not None and predicted not in entry.labels
            scores = " | ".join(f"{r.method} {_scores(r)}" for r in rows.values())
            self.bar.write(f"{entry.name}: {categories()[predicted]} "
                           f"({float(seen.probabilities[i, predicted]):.2f})"
                           f"{' [not among its known classes]' if wrong else ''} | "
                           f"{scores} | {resized}", file=sys.stdout)

    def randomisation(self, method: _Explainer, x: Tensor, target: Tensor,
                      attributions: Tensor) -> Optional[Tensor]:
        """The randomisation test per example (``mprt``), or None if not asked."""
        if method.randomised is None:
            return None
        explain, module = method.randomised()
        return randomisation_correlations(explain, module, x, target, self.mprt_stages,
                                          original=attributions).mean(dim=1)

    def draw(self, model: ImageModel, image: str, resized: str, pixels: Tensor, x: Tensor,
             probabilities: Tensor, records: Dict[str, Record], maps: Dict[str, Tensor],
             explainers: Dict[str, _Explainer]) -> None:
        """The heatmap of ``image`` with every method that has a row (``records``):
        drawn when this run added one (``maps``) or the picture is missing. Earlier
        rows' maps come from the store, or are explained again with their own
        settings (an attribution object of an earlier run not in this one is left out)."""
        path = self.heatmap(model, image)
        if not maps and path.exists():
            return
        target = probabilities.argmax()[None]
        drawn: Dict[str, Tensor] = {}
        for spec, record in records.items():
            if spec in maps:
                drawn[spec] = maps[spec]
            elif record.attribution:
                drawn[spec] = read_attribution(self.out, image, spec, model.name).float()
            elif spec in explainers:
                drawn[spec] = explainers[spec].explain(x, target).detach()[0]
            elif is_method(spec):
                explain = make_method(spec, model, record.n_steps or 2)
                drawn[spec] = explain(x, target).detach()[0]
        titles = {spec: (f"{r.method}\nins {r.insertion:.3f}  del {r.deletion:.3f}" if r.scored
                         else r.method) for spec, r in records.items()}
        legend = [f"{records[s].method}: " + (explainers[s].about if s in explainers
                                              else method_about(s) if is_method(s) else "")
                  for s in drawn]
        names = categories()
        top3 = ", ".join(f"{names[int(c)]} {float(p):.2f}" for p, c in zip(*probabilities.topk(3)))
        path.parent.mkdir(parents=True, exist_ok=True)
        plot_heatmaps(pixels, {records[s].method: m for s, m in drawn.items()},
                      {records[s].method: titles[s] for s in drawn},
                      f"{model.name}: {image} ({resized})\ntop-3: {top3}", path, legend)


def _scores(record: Record) -> str:
    """The metrics of ``record`` that were scored, in a few characters each."""
    return " ".join(f"{short} {value:.3f}" for short, value in (
        ("ins", record.insertion), ("del", record.deletion), ("road", record.road),
        ("mprt", record.mprt)) if not math.isnan(value))


def _resized(original: Tuple[int, int], size: int) -> str:
    """What :func:`~captum_idg.evaluation.images.prepare` did to an image, in words."""
    height, width = original
    if (height, width) == (size, size):
        return f"{width}x{height}, as it is"
    side = round(size * 256 / 224)
    verb = "enlarged" if min(height, width) < side else "shrunk"
    return f"{width}x{height} {verb} to a short side of {side}, centre {size}x{size} crop"


def _check_settings(rows: Sequence[Record], model: str, settings: Dict[str, Settings],
                    out: Path) -> None:
    """Refuses to resume rows of ``model`` made with other settings."""
    for r in rows:
        if r.model == model and r.spec in settings and r.settings != settings[r.spec]:
            raise ValueError(
                f"{out} has rows of {r.spec} on {model} made with {r.settings}; this run asks "
                f"{settings[r.spec]}: use another --out, or the same settings to resume")
