"""Argument checks shared by the attribution classes and metrics: clear ``ValueError``s.

A check raises before any work is done where it can, and otherwise on the
first forward pass; every message names the argument at fault.
"""

import functools
import inspect
import math
from typing import Any, Callable, List, Optional, Sequence, Tuple

import torch
from captum._utils.common import _format_tensor_into_tuples
from captum._utils.typing import BaselineType, TargetType, TensorOrTupleOfTensorsGeneric
from torch import Tensor, nn

from captum_idg._warnings import warn


def format_inputs_and_baselines(
    inputs: TensorOrTupleOfTensorsGeneric,
    baselines: BaselineType,
    integer_inputs: bool = False,
) -> Tuple[Tuple[Tensor, ...], Tuple[Tensor, ...]]:
    r"""
    Formats ``inputs`` and ``baselines`` into tuples of detached tensors, each
    baseline broadcast to the full shape of its input as Captum broadcasts it
    (a scalar, the input's shape, or any shape with first dimension 1 or the
    batch that broadcasts to it, e.g. ``(1, C, 1, 1)``), and checks them.
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
                "inputs must share a non-empty batch dimension 0 (a single example "
                f"needs one: x.unsqueeze(0)), got shapes {[tuple(t.shape) for t in formatted]}"
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
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a Tensor, got {type(x).__name__}")
    if not (x.is_floating_point() or (integer and not x.is_complex())):
        raise ValueError(f"{name} must be floating point, got {x.dtype}")
    if x.is_floating_point() and not torch.isfinite(x).all():
        raise ValueError(f"{name} contain NaN or inf")


def _expand_baseline(x: Tensor, baseline: object) -> Tensor:
    if isinstance(baseline, bool) or not isinstance(baseline, (int, float, Tensor)):
        raise TypeError(
            f"baselines must be numbers or Tensors, got {type(baseline).__name__}"
        )
    if not isinstance(baseline, Tensor):
        baseline = torch.tensor(float(baseline), dtype=x.dtype, device=x.device)
    integer = not (baseline.is_floating_point() or baseline.is_complex()
                   or baseline.dtype == torch.bool)
    if integer and baseline.device == x.device:  # as Captum takes them: cast to the input's
        baseline = baseline.to(x.dtype)
    if baseline.dtype != x.dtype or baseline.device != x.device:
        raise ValueError(
            f"baselines must match the dtype and device of inputs: input "
            f"{x.dtype} on {x.device}, baseline {baseline.dtype} on {baseline.device}"
        )
    if baseline.dim() > 0 and not _broadcasts_over_batch(baseline.shape, x.shape):
        raise ValueError(
            f"baselines of shape {tuple(baseline.shape)} do not fit inputs of shape "
            f"{tuple(x.shape)}: give a scalar, the input's shape, or a shape with "
            "first dimension 1 that broadcasts to it, such as (1, C, 1, 1)"
        )
    check_values("baselines", baseline, integer=True)  # dtype already matches the input's
    return baseline.detach().expand_as(x)


def _broadcasts_over_batch(shape: torch.Size, target: torch.Size) -> bool:
    if len(shape) != len(target) or shape[0] not in (1, target[0]):
        return False
    try:
        return torch.broadcast_shapes(shape, target) == target
    except RuntimeError:
        return False


# Most steps of the methods that walk their path one step at a time (Guided IG,
# AGI): each step is a pass of its own, so beyond this a call takes hours.
MAX_SEQUENTIAL_STEPS = 10_000


def check_count(name: str, value: object, minimum: int, maximum: Optional[int] = None) -> int:
    r"""Returns ``value`` if it is an int from ``minimum`` to ``maximum``, else raises."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(
            f"{name} must be at most {maximum}: this method takes one step at a time, a pass "
            f"each, so {value} steps would take hours; got {value!r}")
    return value


def check_real(
    name: str,
    value: object,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    r"""Returns ``value`` if it is a finite real number in the interval from
    ``low`` to ``high`` (open or closed at each end), else raises."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and math.isfinite(value)  # type: ignore[arg-type]
    if ok:
        ok = (value > low if low_open else value >= low) and (  # type: ignore[operator]
            value < high if high_open else value <= high  # type: ignore[operator]
        )
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a finite number in {interval}, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    r"""Returns ``value`` if it is one of ``choices``, else raises."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_target(target: TargetType, batch_size: int) -> None:
    r"""Checks the form of ``target`` before any forward pass."""
    if target is None or isinstance(target, tuple):
        return
    if isinstance(target, bool) or not isinstance(target, (int, list, Tensor)):
        raise ValueError(
            f"target must be an int, tuple, list or Tensor, got {type(target).__name__}"
        )
    if isinstance(target, Tensor):
        if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
            raise ValueError(f"target must hold integers, got {target.dtype}")
        if target.numel() > 1 and (target.dim() != 1 or len(target) != batch_size):
            raise ValueError(
                f"target of shape {tuple(target.shape)} must be a scalar or have "
                f"one entry per example ({batch_size})"
            )
    if isinstance(target, list):
        if len(target) != batch_size:
            raise ValueError(
                f"target has {len(target)} entries for a batch of {batch_size} examples"
            )
        kinds = {type(t) for t in target}
        if not (kinds <= {int} or kinds <= {tuple}):
            raise ValueError(
                "target as a list must hold one int (or one tuple) per example, got "
                f"{sorted(k.__name__ for k in kinds)}"
            )


def check_class_target(target: TargetType, batch_size: int) -> None:
    r"""For methods that need one class per example (an int, a list of ints
    or a 1-D integer tensor): anything else raises."""
    if target is None or isinstance(target, tuple) or (
        isinstance(target, list) and target and not isinstance(target[0], int)
    ):
        raise ValueError(
            "target must give one class per example: an int, a list of ints or a "
            f"1-D integer Tensor, got {target!r}"
        )
    check_target(target, batch_size)


def check_forward_args(args: Optional[tuple], batch_size: int) -> None:
    r"""
    Tensor forward arguments follow their example along the path, so their
    first dimension must be the batch (Captum's rule). With one example any
    tensor is passed whole to every step, as Captum's LLM attribution does.
    """
    if args is None or batch_size == 1:
        return
    for position, arg in enumerate(args):
        if isinstance(arg, Tensor) and arg.dim() > 0 and arg.shape[0] != batch_size:
            raise ValueError(
                f"additional_forward_args[{position}] has {arg.shape[0]} rows for a batch "
                f"of {batch_size} examples: tensor arguments need one row per example "
                "(pass other values as non-tensors, or 0-dim tensors)"
            )


def check_output(output: object, target: TargetType, rows: Optional[int] = None) -> None:
    r"""Checks the model's output against ``target`` (and the number of input
    ``rows``) on the first forward pass."""
    if not isinstance(output, Tensor) or output.dim() == 0:
        raise ValueError(
            "forward_func must return a Tensor with a batch dimension, got "
            f"{type(output).__name__}"
        )
    if rows is not None and output.shape[0] != rows:
        raise ValueError(
            f"forward_func returned {output.shape[0]} rows for {rows} input rows: its "
            "output needs one row per input row (dimension 0 is the batch)"
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
        index = target if isinstance(target, tuple) else target[0]
        if len(index) != output.dim() - 1:
            raise ValueError(
                f"target {target!r} must index one value of each example's output of shape "
                f"{tuple(output.shape[1:])}")
        return
    if output.dim() > 2:
        raise ValueError(
            f"target {target!r} picks a class, but forward_func returns outputs of shape "
            f"{tuple(output.shape[1:])} per example: give a tuple index (as in Captum), or "
            "check that inputs have the shape the model takes")
    n_classes = output.shape[1]
    indices = target.flatten().tolist() if isinstance(target, Tensor) else target
    for index in indices if isinstance(indices, list) else [indices]:
        if not isinstance(index, int) or not 0 <= index < n_classes:
            raise ValueError(
                f"target {index!r} is out of range for forward_func's "
                f"{n_classes} outputs"
            )


def add_note(error: BaseException, note: str) -> None:
    r"""Adds ``note`` to ``error`` (shown under its message; Python >= 3.11)."""
    if hasattr(error, "add_note"):
        error.add_note(f"captum-idg: {note}")


def checked_forward(
    forward_func: Callable, target: TargetType, keep: Optional[List[Tensor]] = None
) -> Callable:
    r"""
    ``forward_func`` that checks its first call: an exception of the model
    reaches the caller with its own type and a note that says what it was
    called with, and the output is checked against ``target`` (see
    :func:`check_output`). Every output is appended to ``keep`` if given.
    """
    checked = False

    def forward(*args: Any) -> Tensor:
        nonlocal checked
        if checked:
            output = forward_func(*args)
        else:
            try:
                output = forward_func(*args)
            except Exception as error:
                add_note(error, f"forward_func failed on the first path points "
                                f"({_describe(args)}){_dtype_hint(error, args)}")
                raise
            rows = args[0].shape[0] if args and isinstance(args[0], Tensor) else None
            check_output(output, target, rows)
            checked = True
        if keep is not None:
            keep.append(output)
        return output

    return forward


def _dtype_hint(error: Exception, args: tuple) -> str:
    r"""A hint for a model that refused the inputs' dtype (fp16 inputs to a
    float32 model, say); empty for other errors."""
    if not (isinstance(error, RuntimeError) and ("dtype" in str(error) or "scalar type" in
                                                 str(error))):
        return ""
    dtypes = sorted({str(a.dtype) for a in args if isinstance(a, Tensor)
                     and a.is_floating_point()})
    return (f". The inputs are {', '.join(dtypes)}: cast inputs and baselines to the model's "
            "dtype (x.to(next(model.parameters()).dtype)), or cast the model, or call under "
            "torch.autocast for mixed precision")


def _describe(args: tuple) -> str:
    parts = [
        f"Tensor {tuple(a.shape)}" if isinstance(a, Tensor) else type(a).__name__
        for a in args
    ]
    return ("called with " + ", ".join(parts) + ": the inputs, then additional_forward_args; "
            "dimension 0 of inputs is the batch")


def check_finite(
    name: str,
    values: Tensor,
    positions: Tensor,
    where: str = "on the path from baselines to inputs (alpha 0 is the baseline, 1 the input)",
    position: str = "alpha",
) -> None:
    r"""
    Raises if ``values`` ``(k, batch, ...)`` hold NaN or inf, naming the
    examples and the ``positions`` ``(k, batch)`` (e.g. the points of the
    path) where.
    """
    finite = torch.isfinite(values)
    if finite.all():
        return
    bad = ~(finite.flatten(2).all(dim=2) if values.dim() > 2 else finite)
    steps, examples = bad.nonzero(as_tuple=True)
    found = sorted({(int(e), round(float(positions[s, e]), 4)) for s, e in zip(steps, examples)})
    shown = ", ".join(f"example {e} at {position} {p}" for e, p in found[:5])
    more = f" and {len(found) - 5} more" if len(found) > 5 else ""
    raise ValueError(f"{name} are NaN or inf {where}: {shown}{more}")


def warn_if_training(forward_func: Callable) -> None:
    r"""
    Warns if ``forward_func`` is (or belongs to) a module with submodules in
    training mode whose forward depends on it: BatchNorm then updates its
    running statistics on every path point, and dropout (``nn.Dropout``, an
    RNN's ``dropout``, attention dropout, or any module whose ``forward``
    reads ``self.training``) is random, so the model changes and two calls differ.
    """
    module = forward_func if isinstance(forward_func, nn.Module) else getattr(
        forward_func, "__self__", None)
    if not isinstance(module, nn.Module):
        return
    stateful = sorted({type(m).__name__ for m in module.modules()
                       if m.training and _depends_on_training(m)})
    if stateful:
        warn(
            f"forward_func is in training mode with {', '.join(stateful)}, whose forward "
            "depends on it: BatchNorm updates its running statistics on every path point and "
            "dropout is random, so the model changes and results differ between calls. "
            "Call model.eval() first.")


def _depends_on_training(module: nn.Module) -> bool:
    r"""Whether ``module``'s own forward behaves differently in training mode."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return True
    if isinstance(module, nn.modules.dropout._DropoutNd):
        return module.p > 0
    if isinstance(module, (nn.RNNBase, nn.MultiheadAttention)):
        return module.dropout > 0
    if type(module).__module__.startswith("torch.nn."):
        return False  # torch's other modules ignore the mode
    return _forward_reads_training(type(module))


@functools.lru_cache(maxsize=None)
def _forward_reads_training(cls: type) -> bool:
    r"""Whether the source of ``cls.forward`` reads ``self.training``."""
    try:
        return "self.training" in inspect.getsource(cls.forward)
    except (OSError, TypeError):
        return False
