"""A run's rows on disk, written as they finish and merged from every rank.

An output folder holds ``results.csv`` (one row per model, image and method,
with the settings that produced it), ``curves.jsonl`` (their insertion,
deletion and ROAD curves) and ``skipped.csv`` (images not explained: misclassified or
unreadable). While a run goes, each rank appends to its own files under
``parts/``; :func:`merge_parts` folds them into the three files (rank 0, at
the start and the end of a run), so a run killed at any point loses at most
the rows in progress, and a rerun with any number of ranks resumes.
"""

import csv
import json
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from torch import Tensor

PARTS = "parts"
CURVES = ("insertion", "deletion", "road_morf", "road_lerf")
Curves = Dict[Tuple[str, str, str], Dict[str, List[float]]]


@dataclass(frozen=True)
class Settings:
    """What must agree for a method's rows to be reused: its steps (0 for a method
    without), pixels per step of the curves, image size, the metrics asked for."""

    n_steps: int
    pixels_per_step: int
    size: int
    metrics: str

    def __str__(self) -> str:
        return (f"n_steps {self.n_steps}, {self.pixels_per_step} pixels per step, "
                f"{self.size} px images, metrics {self.metrics or 'none'}")


@dataclass
class Record:
    """One method on one image of one model, and what produced it. ``method`` is
    the label shown in tables, ``spec`` the registry spec; ``n_steps`` 0 for a
    method without steps; a metric (``insertion``, ``deletion``, ``road``,
    ``mprt``) NaN when not scored, ``metrics`` the ones asked for;
    ``attribution`` the shard holding the map (empty when not kept)."""

    model: str
    image: str
    method: str
    target: int
    class_name: str
    probability: float
    insertion: float
    deletion: float
    seconds: float
    road: float = math.nan
    mprt: float = math.nan
    spec: str = ""
    n_steps: int = 0
    pixels_per_step: int = 0
    size: int = 0
    metrics: str = ""
    labels: str = ""
    attribution: str = ""
    version: str = ""

    @property
    def key(self) -> Tuple[str, str, str]:
        return self.model, self.image, self.spec or self.method

    @property
    def settings(self) -> Settings:
        """What must agree for a row to be reused."""
        return Settings(self.n_steps, self.pixels_per_step, self.size, self.metrics)

    @property
    def scored(self) -> bool:
        return math.isfinite(self.insertion) and math.isfinite(self.deletion)


COLUMNS = [f.name for f in fields(Record)]
_TYPES = {f.name: f.type for f in fields(Record)}


def write_csv(records: Sequence[Record], path: Path) -> None:
    """Writes ``records`` to ``path`` whole (a temporary file renamed into place)."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(asdict(r) for r in records)
    os.replace(partial, path)


def read_csv(paths: Iterable[Path]) -> List[Record]:
    """Records of one or more CSVs; a row cut short by a killed run is skipped,
    and columns an older version did not write take their defaults."""
    records = []
    for path in paths:
        if not path.exists():
            continue
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                try:
                    values = {k: _TYPES[k](v) if _TYPES[k] is not str else v
                              for k, v in row.items() if k in _TYPES and v is not None}
                    records.append(Record(**values))
                except (TypeError, ValueError):
                    continue
    return records


def read_curves(paths: Iterable[Path]) -> Curves:
    """``(model, image, method label) -> {curve name: scores}`` (see ``CURVES``)."""
    curves: Curves = {}
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
                curves[row["model"], row["image"], row["method"]] = {
                    name: row[name] for name in CURVES if name in row}
            except (json.JSONDecodeError, KeyError):
                continue
    return curves


def read_rows(out: Path) -> List[Record]:
    """Every row of ``out``: ``results.csv`` and the parts of a run not merged
    yet, one row per key."""
    merged = {r.key: r for r in read_csv([out / "results.csv", *_parts(out, ".csv")])}
    return list(merged.values())


def read_run_curves(out: Path) -> Curves:
    """Every curve of ``out``: ``curves.jsonl`` and the parts not merged yet."""
    return read_curves([out / "curves.jsonl", *_parts(out, ".jsonl")])


def read_skipped(out: Path) -> Dict[Tuple[str, str], str]:
    """``(model, image) -> reason`` of the images a run did not explain."""
    skipped = {}
    for path in [out / "skipped.csv", *_parts(out, ".skipped.csv")]:
        if path.exists():
            with open(path, newline="") as f:
                for row in csv.DictReader(f):
                    if None not in row.values():
                        skipped[row["model"], row["image"]] = row["reason"]
    return skipped


class PartWriter:
    """Appends one rank's rows, curves and skipped images to its part files,
    flushed at once."""

    def __init__(self, out: Path, rank: int) -> None:
        self.base = out / PARTS / f"rank-{rank}"
        self.base.parent.mkdir(parents=True, exist_ok=True)

    def row(self, record: Record, curves: Optional[Dict[str, Tensor]] = None) -> None:
        """Appends ``record``, and its ``curves`` (names of ``CURVES``) if any."""
        _append_csv(self.base.with_suffix(".csv"), COLUMNS, asdict(record))
        if curves:
            with open(self.base.with_suffix(".jsonl"), "a") as f:
                f.write(json.dumps(dict(
                    model=record.model, image=record.image, method=record.method,
                    **{name: [round(v, 6) for v in curve.tolist()]
                       for name, curve in curves.items()})) + "\n")

    def skipped(self, model: str, image: str, reason: str) -> None:
        _append_csv(self.base.with_suffix(".skipped.csv"), ["model", "image", "reason"],
                    dict(model=model, image=image, reason=reason))


def merge_parts(out: Path) -> int:
    """Folds the part files of ``out`` into ``results.csv``, ``curves.jsonl``
    and ``skipped.csv`` (one row per key; rows cut short dropped) and deletes
    the parts; returns the number of rows. Only one process may call it."""
    rows = read_rows(out)
    parts = _parts(out, "")
    if not parts:
        return len(rows)
    write_csv(rows, out / "results.csv")
    curves = read_run_curves(out)
    keys = {(r.model, r.image, r.method) for r in rows}
    partial = out / "curves.jsonl.partial"
    with open(partial, "w") as f:
        for (model, image, method), named in curves.items():
            if (model, image, method) in keys:
                f.write(json.dumps(dict(model=model, image=image, method=method,
                                        **named)) + "\n")
    os.replace(partial, out / "curves.jsonl")
    skipped = read_skipped(out)
    partial = out / "skipped.csv.partial"
    with open(partial, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["model", "image", "reason"])
        writer.writerows([model, image, reason] for (model, image), reason in skipped.items())
    os.replace(partial, out / "skipped.csv")
    for path in parts:
        path.unlink()
    try:
        (out / PARTS).rmdir()
    except OSError:  # a part written meanwhile, by a rank of a killed run: the next run merges it
        pass
    return len(rows)


def _parts(out: Path, suffix: str) -> List[Path]:
    folder = out / PARTS
    if not folder.is_dir():
        return []
    found = sorted(folder.glob(f"rank-*{suffix}"))
    if suffix == ".csv":  # not the skipped files
        found = [p for p in found if not p.name.endswith(".skipped.csv")]
    return found


def _append_csv(path: Path, columns: List[str], row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as f:
        if not new and f.tell() > 0:
            with open(path, "rb") as check:  # a line cut short by a kill: end it first
                check.seek(-1, os.SEEK_END)
                if check.read(1) != b"\n":
                    f.write("\n")
        writer = csv.DictWriter(f, fieldnames=columns)
        if new:
            writer.writeheader()
        writer.writerow(row)
