"""What a piecewise-linear network is made of, and counting its switches along a path.

A network of linear layers, ReLU-type functions (``KINKS``) and max pools
(``POOLS``) is linear between the points of a path where a unit reaches a kink
or a pool's window changes its maximum. Both are read by name, however they
are called (modules, ``torch.relu``, ``Tensor.relu``, functional), under a
``TorchFunctionMode``: the region walk (:mod:`~captum_idg.attr._regions`) reads
where the next switch is, and :class:`SwitchCounter` counts the switches
between the points of a probe, for adaptive sampling.
"""

from functools import lru_cache
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

# the piecewise-linear functions whose switches end a region, by name (functional,
# torch.*, Tensor methods and the modules that call them alike), with the
# signature their arguments are read by: the input levels of their kinks
KINKS: Dict[str, Callable] = {
    "relu": lambda input, inplace=False: (0.0,),
    "leaky_relu": lambda input, negative_slope=0.01, inplace=False: (0.0,),
    "hardtanh": lambda input, min_val=-1.0, max_val=1.0, inplace=False: (min_val, max_val),
    "relu6": lambda input, inplace=False: (0.0, 6.0),
}
POOLS = {"max_pool1d": 1, "max_pool2d": 2}
WITH_INDICES = {1: F.max_pool1d_with_indices, 2: F.max_pool2d_with_indices}
# curved functions: no network that calls them is piecewise linear
SMOOTH = {"gelu", "silu", "softplus", "sigmoid", "tanh", "elu", "selu", "celu", "mish",
          "softmax", "log_softmax", "layer_norm", "group_norm", "instance_norm", "exp", "log",
          "erf", "sin", "cos", "scaled_dot_product_attention", "hardswish", "hardsigmoid",
          "pow", "sqrt", "rsqrt", "reciprocal", "norm"}
MAX_UNITS = 2**14  # units a SwitchCounter reads per row and call (more: evenly strided)


class NotPiecewiseLinear(ValueError):
    r"""``forward_func`` is not a network whose regions the walk can read."""


@lru_cache(maxsize=None)  # read on every call a mode sees
def function_kind(func: Callable) -> str:
    r"""The name a function is known by here: ``relu`` for ``relu``, ``relu_``
    and ``__relu__``, ``max_pool2d`` for ``max_pool2d_with_indices``."""
    name = getattr(func, "__name__", "").strip("_")
    return name[:-len("_with_indices")] if name.endswith("_with_indices") else name


def pool_windows(dims: int, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 dilation: Any = 1, ceil_mode: bool = False, return_indices: bool = False
                 ) -> Callable[[Tensor], Tensor]:
    r"""The windows of a max pool of ``dims`` dimensions (arguments as
    ``F.max_pool1d`` / ``F.max_pool2d`` take them): a function of ``t`` ``(N,
    C, *spatial)`` that returns ``(N, C, *output size, window size)``, padded
    with ``-inf``."""
    if ceil_mode:
        raise NotPiecewiseLinear("method: 'regions' reads max pools without ceil_mode")
    size, stride, padding, dilation = (
        (v,) * dims if isinstance(v, int) else tuple(v)
        for v in (kernel_size, stride or kernel_size, padding, dilation))

    def windows(t: Tensor) -> Tensor:
        t = F.pad(t, [p for p in reversed(padding) for _ in range(2)], value=-torch.inf)
        first = t.dim() - dims
        for d in range(dims):
            t = t.unfold(first + d, (size[d] - 1) * dilation[d] + 1, stride[d])
        return t[(...,) + tuple(slice(None, None, step) for step in dilation)].flatten(-dims)

    return windows


class SwitchCounter(TorchFunctionMode):
    r"""
    Counts, over forward passes at consecutive points of ``batch`` paths
    (rows step-major, ``steps * batch``, the steps sorted), how many units of
    the ReLU-type functions cross a kink and how many max-pool windows change
    their maximum between neighbouring points: :meth:`counts`. Call
    :meth:`next_pass` with the pass's steps before each pass. ``piecewise``
    turns False where the network calls a curved function (``SMOOTH``), or a
    ReLU-type function or max pool on anything but one row per point, or is
    not read the same way in every pass; then there are no counts. Of a
    function with more than ``MAX_UNITS`` units a row it reads every
    ``k``-th unit, ``k`` the least stride that leaves at most that many, and
    counts each switch it sees ``k`` times: an estimate, at a fraction of the
    cost of reading a large CNN layer whole.
    """

    def __init__(self, batch: int) -> None:
        super().__init__()
        self.batch = batch
        self.piecewise = True
        self._call, self._rows = 0, 0
        # per call: the stride of the units read and their switch states in each pass,
        # (rows, units), kept to the end (at most MAX_UNITS bytes a row and call)
        self._states: Dict[int, Tuple[int, List[Tensor]]] = {}

    def next_pass(self, steps: int) -> "SwitchCounter":
        self._call, self._rows = 0, steps * self.batch
        return self

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (),
                           kwargs: Optional[dict] = None) -> Any:
        kwargs = kwargs or {}
        kind = function_kind(func)
        if kind in SMOOTH:
            self.piecewise = False
        elif self.piecewise and kind in POOLS:
            return self._pool(POOLS[kind], *args, **kwargs)
        elif self.piecewise and kind in KINKS:
            read = self._units((args[0] if args else kwargs["input"]).detach())
            if read is not None:
                value, stride = read
                levels = KINKS[kind](*args, **kwargs)
                self._read(value > levels[0] if len(levels) == 1 else
                           torch.stack([value > level for level in levels], dim=-1), stride)
        return func(*args, **kwargs)

    def _pool(self, dims: int, input: Tensor, kernel_size: Any, stride: Any = None,
              padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False,
              return_indices: bool = False) -> Any:
        r"""The max pool (arguments as ``F.max_pool2d`` takes them, or
        ``torch.max_pool2d``), run with the indices of its maxima, which are read."""
        values, indices = WITH_INDICES[dims](input, kernel_size, stride or None, padding,
                                             dilation, ceil_mode, return_indices=True)
        read = self._units(indices)
        if read is not None:
            self._read(*read)
        return (values, indices) if return_indices else values

    def _units(self, t: Tensor) -> Optional[Tuple[Tensor, int]]:
        r"""The units of ``t`` that are read, ``(rows, units)``, and their
        stride; None (and not piecewise) where ``t`` is not one row per point."""
        if t.dim() == 0 or t.shape[0] != self._rows:
            self.piecewise = False
            return None
        t = t.reshape(self._rows, -1)
        stride = -(-t.shape[1] // MAX_UNITS)
        return t[:, ::stride], stride

    def _read(self, state: Tensor, stride: int) -> None:
        r"""Keeps ``state`` ``(rows, units, ...)``, the switch states of the
        units read, each standing for ``stride`` units, for :meth:`counts`."""
        _, states = self._states.setdefault(self._call, (stride, []))
        state = state.reshape(len(state), -1)
        if states and states[0].shape[1] != state.shape[1]:
            self.piecewise = False  # not read the same way in every pass
        states.append(state)
        self._call += 1

    def counts(self) -> Optional[Tensor]:
        r"""The switches between neighbouring points ``(steps - 1, batch)``, or
        None where nothing was counted or the network is not piecewise linear."""
        if not self.piecewise or not self._states:
            return None
        if len({sum(map(len, states)) for _, states in self._states.values()}) != 1:
            return None  # not read the same way in every pass
        by_stride: Dict[int, List[Tensor]] = {}  # the calls' states, all passes, by stride
        for stride, states in self._states.values():
            by_stride.setdefault(stride, []).append(torch.cat(states))
        counts = []
        for stride, states in by_stride.items():
            state = torch.cat(states, dim=1)
            state = state.view(-1, self.batch, state.shape[1])  # (steps, batch, units)
            counts.append(stride * (state[1:] != state[:-1]).sum(dim=2))
        return torch.stack(counts).sum(dim=0)
