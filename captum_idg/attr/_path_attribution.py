"""What IG-style straight-line path methods share: the weighted gradient sum."""

from typing import Callable, Tuple

import torch
from captum.attr._utils.attribution import GradientAttribution
from torch import Tensor

from captum_idg.attr._path import StraightLinePath


class PathIntegralAttribution(GradientAttribution):
    r"""
    Base of attributions of the form ``(x - x') * sum_k c_k grad F(z(a_k))``
    along the straight path ``z(a) = x' + a (x - x')``. A subclass picks the
    schedule ``(a_k, w_k)`` and says what the coefficient ``c_k`` of a sample
    is (:meth:`_coefficients`).
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
        return weights

    def _integrate(
        self, path: StraightLinePath, alphas: Tensor, weights: Tensor
    ) -> Tuple[Tuple[Tensor, ...], Tensor, Tensor]:
        r"""
        Runs the gradient passes at ``alphas`` and sums them.

        Returns:
            ``(attributions, rate_integral, global_sum)`` per example: the
            attributions as a tuple (multiplied by ``x - x'`` when
            ``multiply_by_inputs`` is set); the quadrature ``sum_k w_k
            dF/dalpha(a_k)`` of the logit change along the path; and
            ``sum_k c_k dF/dalpha(a_k)``, what the attributions multiplied by
            ``x - x'`` sum to.
        """
        totals = [torch.zeros_like(x) for x in path.inputs]
        rate_integral = torch.zeros_like(alphas[0])
        global_sum = torch.zeros_like(alphas[0])
        for steps, grads, _ in path.gradients(
            self.gradient_func, self.forward_func, alphas
        ):
            rate = path.rate_of_change(grads)
            coefficients = self._coefficients(weights[steps], rate)
            for total, grad in zip(totals, grads):
                total += torch.einsum("kb,kb...->b...", coefficients, grad)
            rate_integral += (weights[steps] * rate).sum(dim=0)
            global_sum += (coefficients * rate).sum(dim=0)
        if self.multiplies_by_inputs:
            totals = [t * d for t, d in zip(totals, path.directions)]
        return tuple(totals), rate_integral, global_sum
