"""Argument checks shared by the attribution classes: clear ``ValueError``s."""

import os
from typing import Any, Callable, List, Optional, Sequence, Tuple

import torch
from captum._utils.common import _format_tensor_into_tuples
from captum._utils.typing import BaselineType, TargetType, TensorOrTupleOfTensorsGeneric
from torch import Tensor


def format_inputs_and_baselines(
    inputs: TensorOrTupleOfTensorsGeneric,
    baselines: BaselineType,
    integer_inputs: bool = False,
) -> Tuple[Tuple[Tensor, ...], Tuple[Tensor, ...]]:
    r"""
    Formats ``inputs`` and ``baselines`` into tuples of detached tensors, each
    baseline expanded to the full shape of its input, and checks them.
    ``integer_inputs`` admits integer tensors (token ids for a layer method).
    """
    if not isinstance(inputs, (Tensor, tuple)) or (
        isinstance(inputs, tuple) and not all(isinstance(x, Tensor) for x in inputs)
    ):
        raise TypeError("inputs must be a Tensor or a tuple of Tensors")
    formatted = _format_tensor_into_tuples(inputs)
    if len(formatted) == 0:
        raise ValueError("inputs must hold at least one Tensor")
    batch_size = formatted[0].shape[0] if formatted[0].dim() > 0 else 0
    for x in formatted:
        if x.dim() == 0 or x.shape[0] != batch_size or batch_size == 0:
            raise ValueError(
                "inputs must share a non-empty batch dimension 0, got shapes "
                f"{[tuple(t.shape) for t in formatted]}"
            )
        check_values("inputs", x, integer_inputs)
    if baselines is None:
        baselines = tuple(0.0 for _ in formatted)
    elif not isinstance(baselines, tuple):
        baselines = (baselines,)
    if len(baselines) != len(formatted):
        raise ValueError(
            f"baselines must hold one entry per input tensor: {len(formatted)} "
            f"inputs, {len(baselines)} baselines"
        )
    expanded = tuple(_expand_baseline(x, b) for x, b in zip(formatted, baselines))
    return tuple(x.detach() for x in formatted), expanded


def check_values(name: str, x: Tensor, integer: bool = False) -> None:
    r"""Raises unless ``x`` is floating point (or integer, if allowed) and finite."""
    if not (x.is_floating_point() or (integer and not x.is_complex())):
        raise ValueError(f"{name} must be floating point, got {x.dtype}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contain NaN or inf")


def _expand_baseline(x: Tensor, baseline: object) -> Tensor:
    if isinstance(baseline, bool) or not isinstance(baseline, (int, float, Tensor)):
        raise TypeError(
            f"baselines must be numbers or Tensors, got {type(baseline).__name__}"
        )
    if not isinstance(baseline, Tensor):
        baseline = torch.tensor(float(baseline), dtype=x.dtype, device=x.device)
    if baseline.dtype != x.dtype or baseline.device != x.device:
        raise ValueError(
            f"baselines must match the dtype and device of inputs: input "
            f"{x.dtype} on {x.device}, baseline {baseline.dtype} on {baseline.device}"
        )
    if baseline.dim() > 0 and baseline.shape not in (x.shape, (1, *x.shape[1:])):
        raise ValueError(
            f"baselines of shape {tuple(baseline.shape)} do not fit inputs of shape "
            f"{tuple(x.shape)}: give a scalar, shape (1, ...) or the input's shape"
        )
    check_values("baselines", baseline, integer=True)  # dtype already matches the input's
    return baseline.detach().expand_as(x)


def check_count(name: str, value: object, minimum: int) -> int:
    r"""Returns ``value`` if it is an int of at least ``minimum``, else raises."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_path_fits(
    inputs: Tuple[Tensor, ...],
    n_steps: int,
    internal_batch_size: Optional[int],
    name: str = "n_steps",
) -> None:
    r"""
    Raises if one pass over the path's rows (all ``n_steps * batch`` of them
    when ``internal_batch_size`` is None) would not fit in the device's memory:
    a clear error instead of the allocator's, or of swapping for minutes.
    ``name`` is the argument that set ``n_steps``.
    """
    batch_size = inputs[0].shape[0]
    rows = n_steps * batch_size
    if internal_batch_size is not None:
        rows = min(rows, max(internal_batch_size, batch_size))
    row_bytes = sum(x[0].numel() * x.element_size() for x in inputs)
    needed = rows * row_bytes + n_steps * batch_size * 8  # points + schedule
    available = _device_memory(inputs[0].device)
    if available is not None and needed > available:
        hint = (
            "pass internal_batch_size to split the passes"
            if internal_batch_size is None
            else f"lower {name} or internal_batch_size"
        )
        raise ValueError(
            f"{name}={n_steps} with internal_batch_size={internal_batch_size} needs at "
            f"least {needed / 2**30:.1f} GiB in one pass, more than the "
            f"{available / 2**30:.1f} GiB of {inputs[0].device}: {hint}"
        )


def _device_memory(device: torch.device) -> Optional[int]:
    r"""Total memory of ``device`` in bytes, None where it cannot be read."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    if device.type == "cpu" and hasattr(os, "sysconf"):
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError):
            return None
    return None


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    r"""Returns ``value`` if it is one of ``choices``, else raises."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value  # type: ignore[return-value]


def check_target(target: TargetType, batch_size: int) -> None:
    r"""Checks the form of ``target`` before any forward pass."""
    if target is None or isinstance(target, tuple):
        return
    if isinstance(target, bool) or not isinstance(target, (int, list, Tensor)):
        raise ValueError(
            f"target must be an int, tuple, list or Tensor, got {type(target).__name__}"
        )
    if isinstance(target, Tensor):
        if target.is_floating_point() or target.is_complex():
            raise ValueError(f"target must hold integers, got {target.dtype}")
        if target.numel() > 1 and (target.dim() != 1 or len(target) != batch_size):
            raise ValueError(
                f"target of shape {tuple(target.shape)} must be a scalar or have "
                f"one entry per example ({batch_size})"
            )
    if isinstance(target, list) and len(target) != batch_size:
        raise ValueError(
            f"target has {len(target)} entries for a batch of {batch_size} examples"
        )


def check_output(output: object, target: TargetType) -> None:
    r"""Checks the model's output against ``target`` on the first forward pass."""
    if not isinstance(output, Tensor) or output.dim() == 0:
        raise ValueError(
            "forward_func must return a Tensor with a batch dimension, got "
            f"{type(output).__name__}"
        )
    if target is None:
        if output[0].numel() != 1:
            raise ValueError(
                "target must be given: forward_func returns "
                f"{tuple(output.shape[1:])} values per example"
            )
        return
    if output.dim() < 2:
        raise ValueError(
            "target was given but forward_func returns one value per example "
            f"(output shape {tuple(output.shape)})"
        )
    if isinstance(target, tuple) or (
        isinstance(target, list) and target and isinstance(target[0], tuple)
    ):
        return
    n_classes = output.shape[1]
    indices = target.flatten().tolist() if isinstance(target, Tensor) else target
    for index in indices if isinstance(indices, list) else [indices]:
        if not isinstance(index, int) or not 0 <= index < n_classes:
            raise ValueError(
                f"target {index!r} is out of range for forward_func's "
                f"{n_classes} outputs"
            )


def checked_forward(
    forward_func: Callable, target: TargetType, keep: Optional[List[Tensor]] = None
) -> Callable:
    r"""
    ``forward_func`` that checks its first output against ``target`` (see
    :func:`check_output`) and appends every output to ``keep`` if given.
    """
    checked = False

    def forward(*args: Any) -> Tensor:
        nonlocal checked
        output = forward_func(*args)
        if not checked:
            check_output(output, target)
            checked = True
        if keep is not None:
            keep.append(output)
        return output

    return forward
