"""Planning passes, splitting work into them, and taking examples out of a batch.

Every method and metric of the package that runs the model on more rows than
fit in one pass, or on a subset of the examples, goes through these helpers:
passes are sized from the device's free memory (:func:`rows_per_pass`), and a
target, a forward argument or a tensor follows its example the same way
everywhere.
"""

import os
from typing import Any, Iterator, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from captum_idg._validation import check_count

# Bytes of model activations kept for the backward pass per byte of input row,
# with a margin: a 224 x 224 EfficientNet-Lite0 row keeps about 150x its input
# (85 MiB a row, measured as peak memory on the CPU).
ACTIVATION_FACTOR = 256

Index = Union[slice, Tensor, Sequence[int]]


def row_slices(total: int, size: Optional[int]) -> Iterator[slice]:
    r"""Consecutive slices of at most ``size`` rows covering ``range(total)``
    (one slice if ``size`` is None)."""
    step = total if size is None else max(1, size)
    for start in range(0, total, max(step, 1)):
        yield slice(start, min(start + step, total))


def take_examples(value: Any, index: Index, batch_size: int) -> Any:
    r"""
    The rows of ``value`` for the examples ``index`` of a batch of
    ``batch_size``: a tensor or list with one entry per example is indexed;
    anything else (a shared target, a scalar argument) is shared and returned
    as it is.
    """
    if isinstance(value, Tensor) and value.dim() > 0 and value.shape[0] == batch_size:
        return value[index]
    if isinstance(value, list) and len(value) == batch_size:
        if isinstance(index, slice):
            return value[index]
        return [value[i] for i in torch.as_tensor(index).tolist()]
    return value


def take_forward_args(args: Optional[tuple], index: Index, batch_size: int) -> Optional[tuple]:
    r""":func:`take_examples` of every formatted additional forward argument."""
    if args is None:
        return None
    return tuple(take_examples(a, index, batch_size) for a in args)


def check_steps_fit(
    inputs: Tuple[Tensor, ...], n_steps: int, name: str = "n_steps"
) -> None:
    r"""
    Raises if the bookkeeping of ``n_steps`` samples per example (points,
    weights and logits, a few floats each; the passes themselves are split to
    fit) would not fit in the device's memory: a clear error instead of the
    allocator's. ``name`` is the argument that set ``n_steps``.
    """
    needed = n_steps * inputs[0].shape[0] * 8 * 8
    available = device_memory(inputs[0].device)
    if available is not None and needed > available:
        raise ValueError(
            f"{name}={n_steps} needs {needed / 2**30:.1f} GiB of schedule for "
            f"{inputs[0].shape[0]} examples, more than the {available / 2**30:.1f} GiB "
            f"free on {inputs[0].device}: lower {name}"
        )


def rows_per_pass(inputs: Tuple[Tensor, ...], internal_batch_size: Optional[int]) -> int:
    r"""
    Rows of path points per forward pass. An explicit ``internal_batch_size``
    is honoured (but a pass holds at least one step of the whole batch).
    None: as many rows as fit in a quarter of the device's free memory at
    ``ACTIVATION_FACTOR`` bytes of activations per input byte, so that no
    default call runs out of memory however large ``n_steps`` is.
    """
    batch_size = inputs[0].shape[0]
    if internal_batch_size is not None:
        return max(check_count("internal_batch_size", internal_batch_size, 1), batch_size)
    row_bytes = sum(x[0].numel() * x.element_size() for x in inputs) * ACTIVATION_FACTOR
    available = device_memory(inputs[0].device) or 2**32
    return max(batch_size, int(available // 4 // max(row_bytes, 1)))


def device_memory(device: torch.device) -> Optional[int]:
    r"""Free memory of ``device`` in bytes, None where it cannot be read."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "cpu":
        try:
            with open("/proc/meminfo") as meminfo:
                for line in meminfo:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        if hasattr(os, "sysconf"):
            try:
                return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
            except (ValueError, OSError):
                return None
    return None
