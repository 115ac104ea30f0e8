"""The base of the path methods: ``attribute`` as a composition, written once.

A path method is a path, a sampler, a weight rule and a stopping rule (see
:mod:`captum_idg.attr._path_integral`). A subclass's ``attribute`` checks its
own arguments and names its parts; :meth:`PathIntegralAttribution._integrate`
runs them and does the rest: rescale, warn about samples that saw no change,
format, delta.
"""

from typing import Any, Callable, Optional, Tuple, Union

import torch
from captum._utils.common import _format_output, _is_tuple, safe_div
from captum._utils.typing import BaselineType, TargetType, TensorOrTupleOfTensorsGeneric
from torch import Tensor

from captum_idg._validation import check_choice, check_real
from captum_idg.attr._base import Attribution
from captum_idg.attr._intake import take_arguments
from captum_idg.attr._path import StraightLinePath, check_output_moves, warn_no_change
from captum_idg.attr._path_integral import (
    PATH_METHODS,
    FixedSteps,
    ModelOnPath,
    RefinementReport,
    Sampler,
    Weight,
)
from captum_idg.attr._tolerance import Tolerance
from captum_idg.attr.schedules import RIEMANN_METHODS

Attributions = Union[TensorOrTupleOfTensorsGeneric, Tuple[TensorOrTupleOfTensorsGeneric, Tensor]]


class PathIntegralAttribution(Attribution):
    r"""
    Base of attributions of the form ``sum_k c_k grad F(z(a_k)) * dz/da(a_k)``
    along a path ``z`` (on the straight line ``z(a) = x' + a (x - x')``:
    ``(x - x') * sum_k c_k grad F(z(a_k))``). ``methods`` lists the samplers
    a subclass's ``method`` argument takes. Gradients come from one backward
    pass of the summed outputs per chunk
    (:func:`~captum_idg.attr._path.summed_gradients`).

    After a call with ``tolerance``, :attr:`refinement` holds a
    :class:`RefinementReport`; after any other call it is None.
    """

    methods: Tuple[str, ...] = RIEMANN_METHODS + ("adaptive",)

    # attributions that sum to F(x) - F(x'): the delta is Captum's
    # compute_convergence_delta of them, as Captum's IG returns it
    complete = False

    def __init__(
        self, forward_func: Callable[..., Tensor], multiply_by_inputs: bool = True
    ) -> None:
        r"""
        Args:

            forward_func (Callable): The forward function of the model or any
                    modification of it. Its target output is differentiated
                    as it is (for IDG, pass logits, not probabilities, to
                    follow the paper).
            multiply_by_inputs (bool, optional): Indicates whether to factor
                    model inputs' multiplier in the final attribution scores
                    (global attribution). If True, attributions are multiplied
                    by (inputs - baselines), as in IG. Default: True
        """
        Attribution.__init__(self, forward_func, multiply_by_inputs)
        self.refinement: Optional[RefinementReport] = None

    def has_convergence_delta(self) -> bool:
        return True

    def _sampler(self, method: str, n_steps: int, n_probe_steps: Optional[int]) -> Sampler:
        r"""The sampler that ``method`` names (one of :attr:`methods`)."""
        check_choice("method", method, self.methods)
        return PATH_METHODS[method].sampler(n_steps, n_probe_steps)

    def _along_straight_line(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        baselines: BaselineType,
        target: TargetType,
        additional_forward_args: Any,
        *,
        n_steps: int,
        internal_batch_size: Optional[int],
        return_convergence_delta: bool,
        sampler: Sampler,
        weight: Weight,
        tolerance: Optional[float] = None,
        rescale: bool = False,
    ) -> Attributions:
        r"""The body of the straight-line methods' ``attribute``: see their docstrings."""
        arguments = take_arguments(self.forward_func, inputs, baselines, target,
                                   additional_forward_args, internal_batch_size, n_steps)
        model = ModelOnPath.of(self, StraightLinePath(arguments.inputs, arguments.baselines),
                               arguments)
        formatted = self._integrate(inputs, model, n_steps=n_steps, sampler=sampler,
                                    weight=weight, tolerance=tolerance, rescale=rescale,
                                    return_convergence_delta=return_convergence_delta)
        if return_convergence_delta and self.complete:  # Captum IG's delta, computed as it does
            return formatted, self.compute_convergence_delta(
                formatted, arguments.baselines, arguments.inputs, target,
                arguments.additional_forward_args)
        return formatted

    def _integrate(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        model: ModelOnPath,
        *,
        n_steps: int,
        sampler: Sampler,
        weight: Weight,
        tolerance: Optional[float] = None,
        rescale: bool = False,
        return_convergence_delta: bool = False,
    ) -> Attributions:
        r"""Runs the composition with ``model`` on its path and returns
        attributions formatted like ``inputs`` (with the delta of the samples
        where asked and the class is not :attr:`complete`)."""
        if tolerance is not None:
            check_real("tolerance", tolerance, 0.0, low_open=True)
            if not isinstance(model.path, StraightLinePath):
                raise ValueError("tolerance: tolerance mode estimates the error of straight-line "
                                 f"paths only, not of a {type(model.path).__name__}")
        stopping = (FixedSteps(n_steps) if tolerance is None
                    else Tolerance(n_steps, tolerance, rescale))
        integral = stopping.run(model, sampler, weight)
        self.refinement = integral.report
        sums, attributions = integral.sums, integral.sums.attributions
        unseen = sums.weighted_rate == 0
        own_delta = return_convergence_delta and not self.complete
        if rescale or own_delta or unseen.any() or integral.known.grid is not None:
            start, end = integral.known.with_endpoints(model).endpoints()
            still = check_output_moves(start, end)
            warn_no_change(unseen & ~still, " after rescale" if rescale else "")
        if rescale:
            attributions = _rescaled(attributions, sums.weighted_rate, end - start)
        # as Captum's IG: half-precision attributions come back in float32
        attributions = tuple(a.to(torch.promote_types(a.dtype, torch.float32))
                             for a in attributions)
        formatted = _format_output(_is_tuple(inputs), attributions)
        if own_delta:
            delta = sums.rate_integral - (end - start)
            return formatted, delta.to(torch.promote_types(delta.dtype, torch.float32))
        return formatted


def _rescaled(
    attributions: Tuple[Tensor, ...], weighted_rate: Tensor, change: Tensor
) -> Tuple[Tensor, ...]:
    r"""Scales each example so that its attributions sum to ``change`` (0
    where the samples saw no change)."""
    seen = weighted_rate != 0
    scale = torch.where(seen, safe_div(change, weighted_rate), 0.0)
    return tuple(a * scale.view(-1, *[1] * (a.dim() - 1)) for a in attributions)
