"""What IG-style methods share: schedule, integrate, multiply by inputs, delta."""

from typing import Any, Callable, Optional, Tuple

import torch
from captum._utils.typing import BaselineType, TargetType, TensorOrTupleOfTensorsGeneric
from captum.attr._utils.attribution import GradientAttribution
from torch import Tensor

from captum_idg.attr._path import SAMPLINGS, StraightLinePath
from captum_idg.attr._validation import (
    check_choice,
    check_count,
    format_inputs_and_baselines,
)


class PathIntegralAttribution(GradientAttribution):
    r"""
    Base of attributions of the form ``(x - x') * sum_k c_k * grad F(z(a_k))``
    over a straight-line path, where each subclass says what the coefficient
    ``c_k`` of a sample is (:meth:`_coefficients`).
    """

    def __init__(
        self, forward_func: Callable[..., Tensor], multiply_by_inputs: bool = True
    ) -> None:
        GradientAttribution.__init__(self, forward_func)
        self._multiply_by_inputs = multiply_by_inputs

    @property
    def multiplies_by_inputs(self) -> bool:
        return self._multiply_by_inputs

    def has_convergence_delta(self) -> bool:
        return True

    def _coefficients(self, weights: Tensor, rate: Tensor) -> Tensor:
        r"""The multiplier of each sample's gradient, from its quadrature weight
        and the logit's rate of change ``dF/dalpha`` there: ``(k, batch)``."""
        raise NotImplementedError

    def _integrate(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        baselines: BaselineType,
        target: TargetType,
        additional_forward_args: Any,
        n_steps: int,
        sampling: str,
        n_probe_steps: Optional[int],
        internal_batch_size: Optional[int],
    ) -> Tuple[Tuple[Tensor, ...], Tensor, StraightLinePath, Optional[Tensor]]:
        r"""
        Checks the arguments, builds the schedule and runs the path integral.

        Returns:
            ``(path_sums, rate_integral, path, probe_logits)``: the
            coefficient-weighted gradient sums as a tuple (attributions before
            any multiplication by inputs), the quadrature ``sum_k w_k dF/dalpha(a_k)``
            of the logit change per example, the path, and the probe logits of
            adaptive sampling (None for uniform sampling).
        """
        formatted_inputs, formatted_baselines = format_inputs_and_baselines(
            inputs, baselines
        )
        check_count("n_steps", n_steps, 2)
        check_choice("sampling", sampling, SAMPLINGS)
        n_probe_steps = n_steps if n_probe_steps is None else n_probe_steps
        check_count("n_probe_steps", n_probe_steps, 2)
        if internal_batch_size is not None:
            check_count("internal_batch_size", internal_batch_size, 1)
        path = StraightLinePath(
            formatted_inputs,
            formatted_baselines,
            target,
            additional_forward_args,
            internal_batch_size,
        )
        alphas, weights, probe = path.schedule(
            self.forward_func, sampling, n_steps, n_probe_steps
        )
        totals = [torch.zeros_like(x) for x in formatted_inputs]
        rate_integral = torch.zeros_like(alphas[0])
        for steps, grads, _ in path.gradients(
            self.gradient_func, self.forward_func, alphas
        ):
            rate = path.rate_of_change(grads)
            coefficients = self._coefficients(weights[steps], rate)
            for total, grad in zip(totals, grads):
                total += torch.einsum("kb,kb...->b...", coefficients, grad)
            rate_integral += (weights[steps] * rate).sum(dim=0)
        return tuple(totals), rate_integral, path, probe

    def _scale_by_inputs(
        self, path_sums: Tuple[Tensor, ...], path: StraightLinePath
    ) -> Tuple[Tensor, ...]:
        r"""Multiplies by ``x - x'`` when ``multiply_by_inputs`` is set."""
        if not self.multiplies_by_inputs:
            return path_sums
        return tuple(s * d for s, d in zip(path_sums, path.directions))
