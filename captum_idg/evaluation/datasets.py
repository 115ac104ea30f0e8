"""Images as a ``torch.utils.data.Dataset``: files decoded in DataLoader workers.

An :class:`Entry` names one image (its path under the folder given, or
``PHOTO@VIEW`` for the bundled photos), where its pixels come from and the
ImageNet classes that count as a correct prediction. :func:`find_images` reads
an ImageFolder tree (class sub-folders; ImageNet synset names such as
``n01440764`` become class indices, other names mean "any prediction is
correct"), a flat folder or single files; :func:`bundled_images` the photos in
scikit-image. :func:`select` is the paper's selection: at most K images per
class, drawn with a fixed seed.
"""

import random
import signal
import sys
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch.utils.data import Dataset

from captum_idg.evaluation.images import (
    IMAGE_SUFFIXES,
    demo_images,
    load_image,
    prepare,
    views,
)


@dataclass(frozen=True)
class Entry:
    """One image: a unique ``name``; a file, ``(3, H, W)`` pixels in ``[0, 1]`` or a
    function that returns them (called in a DataLoader worker); and the classes
    that count as correct (None: unknown, any prediction)."""

    name: str
    source: Union[Path, Tensor, Callable[[], Tensor]]
    labels: Optional[FrozenSet[int]] = None

    @property
    def group(self) -> str:
        """The class folder (or the photo of a view): what ``per_class`` counts."""
        if isinstance(self.source, Path):
            return str(Path(self.name).parent)
        return self.name.split("@", 1)[0]


@dataclass
class Batch:
    """What the DataLoader yields: the images that decoded, stacked, and the
    ``(name, error)`` of those that did not."""

    entries: List[Entry]
    pixels: Tensor  # (B, 3, size, size) in [0, 1]
    failed: List[Tuple[str, str]]
    original: List[Tuple[int, int]]  # each image's height and width before resizing

    def pin_memory(self) -> "Batch":
        self.pixels = self.pixels.pin_memory()
        return self


class ImageDataset(Dataset):
    """``entries`` decoded and resized to ``size`` (short side to ``size * 256 /
    224``, centre crop); a file that cannot be read gives its error instead."""

    def __init__(self, entries: Sequence[Entry], size: int) -> None:
        self.entries = list(entries)
        self.size = size

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> Tuple[Entry, Union[Tensor, str], Tuple[int, int]]:
        entry = self.entries[index]
        try:
            if isinstance(entry.source, Tensor):
                pixels = entry.source
            elif isinstance(entry.source, Path):
                pixels = load_image(entry.source).pixels
            else:
                pixels = entry.source()
        except ValueError as error:
            return entry, str(error), (0, 0)
        return entry, prepare(pixels, self.size), (pixels.shape[1], pixels.shape[2])


def collate(samples: Sequence[Tuple[Entry, Union[Tensor, str], Tuple[int, int]]]) -> Batch:
    """Stacks the decoded images of ``samples`` and lists the failed ones."""
    good = [sample for sample in samples if isinstance(sample[1], Tensor)]
    failed = [(entry.name, error) for entry, error, _ in samples if isinstance(error, str)]
    pixels = torch.stack([p for _, p, _ in good]) if good else torch.empty(0)
    return Batch([e for e, _, _ in good], pixels, failed, [size for _, _, size in good])


def ignore_interrupts(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: Ctrl-C reaches every process of the
    terminal's group; only the main one handles it (and stops the workers). A
    worker's thread that hands its tensors to the main process loses its peer
    when the main process stops: that broken connection is no error to print,
    whether it reaches ``threading.excepthook`` or, as multiprocessing's
    ``resource_sharer`` reports it, ``sys.excepthook``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.excepthook = _quiet_thread_hook
    sys.excepthook = _quiet_hook


def _lost_the_main_process(exc_type: type) -> bool:
    return issubclass(exc_type, (ConnectionError, EOFError))


def _quiet_thread_hook(hook: "threading.ExceptHookArgs") -> None:
    if not _lost_the_main_process(hook.exc_type):
        threading.__excepthook__(hook)


def _quiet_hook(exc_type: type, value: BaseException, traceback: Any) -> None:
    if not _lost_the_main_process(exc_type):
        sys.__excepthook__(exc_type, value, traceback)


@lru_cache(maxsize=1)
def imagenet_synsets() -> Dict[str, int]:
    """WordNet ids of the 1000 ImageNet classes (``n01440764``) -> class index."""
    text = (Path(__file__).parent / "imagenet_synsets.txt").read_text()
    return {wnid: index for index, wnid in enumerate(text.split())}


def find_images(paths: Sequence[Union[str, Path]]) -> List[Entry]:
    """
    Every image under ``paths``: files as given, folders searched recursively
    (sorted). An image's name is its path relative to the folder given (the
    file name for a file given); its labels come from its parent folder when
    that is an ImageNet synset. Missing paths, names given twice and finding no
    image at all raise ValueError.
    """
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise ValueError(f"not found: {', '.join(missing)}")
    synsets = imagenet_synsets()
    entries: List[Entry] = []
    for root in map(Path, paths):
        if root.is_dir():
            files = sorted(p for p in root.rglob("*")
                           if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            named = [(p, p.relative_to(root).as_posix()) for p in files]
        else:
            named = [(root, root.name)]
        for path, name in named:
            index = synsets.get(path.parent.name) if path.parent != root else None
            entries.append(Entry(name, path, None if index is None else frozenset({index})))
    if not entries:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {', '.join(map(str, paths))}")
    seen: Dict[str, Path] = {}
    for entry in entries:
        if entry.name in seen:
            raise ValueError(f"two images are named {entry.name!r} ({seen[entry.name]} and "
                             f"{entry.source}): give their common folder instead")
        seen[entry.name] = entry.source  # type: ignore[assignment]
    return entries


@dataclass(frozen=True)
class _Item:
    """Item ``index`` of a map-style dataset, its pixels only (picklable for workers)."""

    dataset: Dataset
    index: int

    def __call__(self) -> Tensor:
        item = self.dataset[self.index]
        return item[0] if isinstance(item, (tuple, list)) else item


def dataset_images(dataset: Dataset, names: Optional[Sequence[str]] = None,
                   labels: Optional[Sequence[Optional[int]]] = None) -> List[Entry]:
    """
    Entries of your own map-style ``dataset``, whose items are ``(3, H, W)``
    pixels in ``[0, 1]`` or tuples that start with them (torchvision datasets
    with ``ToTensor()``). ``names``: unique names (default: the indices);
    ``labels``: the ImageNet class of each item, or None where any prediction
    counts as correct (default: unknown).
    """
    count = len(dataset)  # type: ignore[arg-type]
    names = [str(i) for i in range(count)] if names is None else list(names)
    labels = [None] * count if labels is None else list(labels)
    if len(names) != count or len(labels) != count or len(set(names)) != count:
        raise ValueError(f"names and labels must give one per item of the dataset ({count}), "
                         "names unique")
    return [Entry(name, _Item(dataset, i), None if label is None else frozenset({int(label)}))
            for i, (name, label) in enumerate(zip(names, labels))]


def bundled_images(with_views: bool = False, labelled_only: bool = True) -> List[Entry]:
    """The photos in scikit-image (those with an ImageNet class), or with
    ``with_views`` their 22 views each, view k of every photo before view k + 1."""
    photos = [im for im in demo_images() if im.labels or not labelled_only]
    if not with_views:
        return [Entry(im.name, im.pixels, im.labels) for im in photos]
    per_photo = [views(im) for im in photos]
    return [Entry(v.name, v.pixels, v.labels) for k in range(max(map(len, per_photo)))
            for vs in per_photo for v in vs[k : k + 1]]


def select(entries: Sequence[Entry], per_class: Optional[int] = None,
           seed: Optional[int] = None) -> List[Entry]:
    """At most ``per_class`` entries of each class folder (or photo), the first
    ones or, with ``seed``, a seeded random draw; the order of ``entries`` kept."""
    if per_class is not None and per_class < 1:
        raise ValueError(f"per_class must be at least 1, got {per_class}")
    order = list(range(len(entries)))
    if seed is not None:
        random.Random(seed).shuffle(order)
    taken: Dict[str, int] = {}
    kept = []
    for i in order:
        group = entries[i].group
        if per_class is None or taken.get(group, 0) < per_class:
            taken[group] = taken.get(group, 0) + 1
            kept.append(i)
    return [entries[i] for i in sorted(kept)]
