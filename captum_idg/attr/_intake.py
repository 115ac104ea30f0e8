"""The one argument intake of every attribution class: checked, formatted arguments.

Each class's ``attribute`` hands its Captum arguments to :func:`take_arguments`
first; it warns about a model in training mode, formats inputs, baselines and
forward arguments as Captum does, and raises a ``ValueError`` that names the
argument at fault before any pass runs. What is the class's own (``fraction``,
``max_sigma``, ...) the class checks itself.
"""

from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple

from captum._utils.common import _format_additional_forward_args
from captum._utils.typing import BaselineType, TargetType, TensorOrTupleOfTensorsGeneric
from torch import Tensor

from captum_idg._batching import check_steps_fit
from captum_idg._validation import (
    check_class_target,
    check_count,
    check_forward_args,
    check_target,
    format_inputs_and_baselines,
    warn_if_training,
)


@dataclass
class Arguments:
    r"""A call's arguments, checked: ``inputs`` and ``baselines`` as tuples of
    detached tensors of the same shapes (zeros where a method takes none),
    ``additional_forward_args`` formatted as Captum formats them."""

    inputs: Tuple[Tensor, ...]
    baselines: Tuple[Tensor, ...]
    target: TargetType
    additional_forward_args: Optional[tuple]
    internal_batch_size: Optional[int]

    @property
    def batch_size(self) -> int:
        return self.inputs[0].shape[0]


def take_arguments(
    forward_func: Callable,
    inputs: TensorOrTupleOfTensorsGeneric,
    baselines: BaselineType,
    target: TargetType,
    additional_forward_args: Any,
    internal_batch_size: Optional[int],
    n_steps: int,
    steps_name: str = "n_steps",
    minimum_steps: int = 2,
    maximum_steps: Optional[int] = None,
    class_target: bool = False,
    integer_inputs: bool = False,
) -> Arguments:
    r"""
    Checks and formats the arguments every class shares; ``n_steps`` (named
    ``steps_name``) must be an integer from ``minimum_steps`` to
    ``maximum_steps``, ``class_target`` asks for one class per example and
    ``integer_inputs`` admits integer inputs (token ids of a layer method).
    """
    warn_if_training(forward_func)
    formatted_inputs, formatted_baselines = format_inputs_and_baselines(
        inputs, baselines, integer_inputs)
    batch_size = formatted_inputs[0].shape[0]
    check_count(steps_name, n_steps, minimum_steps, maximum_steps)
    check_steps_fit(formatted_inputs, n_steps, steps_name)
    (check_class_target if class_target else check_target)(target, batch_size)
    args = _format_additional_forward_args(additional_forward_args)
    check_forward_args(args, batch_size)
    if internal_batch_size is not None:
        check_count("internal_batch_size", internal_batch_size, 1)
    return Arguments(formatted_inputs, formatted_baselines, target, args, internal_batch_size)
