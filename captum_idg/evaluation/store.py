"""Attributions kept on disk as safetensors shards, one file per batch and method.

Each row of ``results.csv`` names the shard that holds its attribution (column
``attribution``, relative to the output folder) under the key of its image
name, so :func:`read_attribution` loads one example without reading the rest.
"""

import os
import uuid
from pathlib import Path
from typing import Dict, Optional

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

STORE_DIR = "attributions"


def write_shard(out: Path, model: str, spec: str, rank: int, maps: Dict[str, Tensor],
                float16: bool = False) -> str:
    """Saves ``maps`` (image name -> attribution) to a new shard under
    ``out/attributions`` (written whole, then renamed into place) and returns its
    path relative to ``out``."""
    folder = out / STORE_DIR / _safe(model) / _safe(spec)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"rank{rank}-{uuid.uuid4().hex[:12]}.safetensors"
    dtype = torch.float16 if float16 else torch.float32
    tensors = {name: m.detach().to("cpu", dtype).contiguous() for name, m in maps.items()}
    partial = path.with_suffix(".partial")
    save_file(tensors, str(partial))
    os.replace(partial, path)
    return path.relative_to(out).as_posix()


def read_attribution(out: Path, image: str, method: str = "idg",
                     model: Optional[str] = None) -> Tensor:
    """
    The stored attribution ``(C, H, W)`` of ``image`` by ``method`` (its
    registry spec, e.g. ``idg`` or ``idg_uniform:256``) from a run with
    ``--keep-attributions`` or ``captum-idg attribute`` into ``out``; ``model``
    is needed when the run had several. Raises ValueError if it is not there.

    Example::

        >>> from captum_idg.evaluation import read_attribution
        >>> attribution = read_attribution(Path("attr-out"), "n01440764/x.JPEG", "idg")
    """
    from captum_idg.evaluation.results import read_rows

    rows = [r for r in read_rows(Path(out)) if r.image == image and r.spec == method
            and r.attribution and (model is None or r.model == model)]
    if not rows:
        raise ValueError(f"no stored attribution of {image!r} by {method!r}"
                         f"{'' if model is None else f' on {model!r}'} in {out}")
    if len({r.model for r in rows}) > 1:
        raise ValueError(f"{image!r} has attributions of several models in {out}: give model")
    with safe_open(str(Path(out) / rows[-1].attribution), framework="pt") as shard:
        return shard.get_tensor(image)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
