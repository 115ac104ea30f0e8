"""Splitting work into passes, and taking some examples' rows out of a batch.

Every method and metric of the package that runs the model on more rows than
fit in one pass, or on a subset of the examples, goes through these two
helpers, so a target, a forward argument or a tensor follows its example the
same way everywhere.
"""

from typing import Any, Iterator, Optional, Sequence, Union

import torch
from torch import Tensor

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
