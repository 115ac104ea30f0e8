"""Several references per example: the mean of the attributions from each, as DeepLIFT-SHAP's.

Baselines with one dimension more than their input, ``(N, K, *input.shape[1:])``
(or ``(1, K, ...)``, shared by the batch), are K references per example.
:func:`several_references` lets an ``attribute`` take them: it pairs every
example with each of its references in one batch of ``N * K`` rows (inputs,
targets and per-example forward arguments repeated K times), calls
``attribute`` once, and returns the mean over the references of the
attributions and of the delta. With ``rescale=True`` each pair sums to
``F(x) - F(b_k)``, so the mean sums to ``F(x) - mean_k F(b_k)``.
"""

import functools
import inspect
from typing import Any, Callable, Optional, Tuple, TypeVar

import torch
from captum._utils.common import _format_tensor_into_tuples
from torch import Tensor

from captum_idg._batching import take_examples, take_forward_args

F = TypeVar("F", bound=Callable)


def several_references(attribute: F) -> F:
    r"""Wraps a Captum-style ``attribute(self, inputs, baselines, target,
    additional_forward_args, ...)`` so that it takes K references per example."""
    signature = inspect.signature(attribute)

    @functools.wraps(attribute)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        call = signature.bind(*args, **kwargs)
        given = call.arguments
        count = reference_count(given.get("inputs"), given.get("baselines"))
        if count is None:
            return attribute(*args, **kwargs)
        inputs = _format_tensor_into_tuples(given["inputs"])
        size = inputs[0].shape[0]
        rows = torch.arange(size, device=inputs[0].device).repeat_interleave(count)
        pairs = tuple(x[rows] for x in inputs)
        given["inputs"] = pairs if isinstance(given["inputs"], tuple) else pairs[0]
        given["baselines"] = _paired_baselines(inputs, given["baselines"], rows)
        # per-example targets and forward arguments follow their example; shared ones stay
        given["target"] = take_examples(given.get("target"), rows, size)
        forward_args = given.get("additional_forward_args")
        given["additional_forward_args"] = (
            take_forward_args(forward_args, rows, size) if isinstance(forward_args, tuple)
            else take_examples(forward_args, rows, size))
        return _mean_over_references(attribute(*call.args, **call.kwargs), count)

    return wrapper  # type: ignore[return-value]


def reference_count(inputs: Any, baselines: Any) -> Optional[int]:
    r"""K if ``baselines`` holds K references per example (a tensor with one
    dimension more than its input), else None; mixed or misshapen ones raise."""
    if not isinstance(inputs, (Tensor, tuple)) or baselines is None:
        return None
    inputs = _format_tensor_into_tuples(inputs)
    baselines = baselines if isinstance(baselines, tuple) else (baselines,)
    counts = set()
    for x, b in zip(inputs, baselines):
        if not (isinstance(x, Tensor) and isinstance(b, Tensor) and b.dim() == x.dim() + 1):
            continue
        if b.shape[0] not in (1, x.shape[0]) or b.shape[2:] != x.shape[1:]:
            raise ValueError(
                f"baselines of shape {tuple(b.shape)} for inputs of shape {tuple(x.shape)}: "
                f"K references per example take the shape (N, K, *inputs.shape[1:]), here "
                f"({x.shape[0]}, K, {', '.join(map(str, x.shape[1:]))}), or (1, K, ...)")
        counts.add(b.shape[1])
    if len(counts) > 1:
        raise ValueError(f"baselines: every input tensor needs the same number of references "
                         f"per example, got {sorted(counts)}")
    if counts == {0}:
        raise ValueError("baselines: K references per example need K >= 1, got 0")
    return counts.pop() if counts else None


def _paired_baselines(inputs: Tuple[Tensor, ...], baselines: Any, rows: Tensor) -> Any:
    r"""Baselines row-aligned with the inputs' ``rows`` (each example repeated
    K times): K references laid out example by example, other per-example
    baselines repeated, shared ones (scalars, first dimension 1) as they are."""
    size = inputs[0].shape[0]

    def paired(x: Tensor, b: Any) -> Any:
        if isinstance(b, Tensor) and b.dim() == x.dim() + 1:
            return b.expand(size, *b.shape[1:]).reshape(len(rows), *b.shape[2:])
        return take_examples(b, rows, size) if size > 1 else b

    if isinstance(baselines, tuple):
        return tuple(paired(x, b) for x, b in zip(inputs, baselines))
    return paired(inputs[0], baselines)


def _mean_over_references(result: Any, count: int) -> Any:
    r"""``result`` (tensors, tuples and lists of them) with each tensor's
    ``N * K`` rows averaged to ``N``."""
    if isinstance(result, Tensor):
        return result.reshape(-1, count, *result.shape[1:]).mean(1)
    if isinstance(result, (tuple, list)):
        return type(result)(_mean_over_references(r, count) for r in result)
    return result
