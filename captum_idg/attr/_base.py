"""The Captum base class every attribution class of this package derives from."""

from typing import Callable

from captum.attr._utils.attribution import GradientAttribution
from torch import Tensor

from captum_idg.attr._path import summed_gradients


class Attribution(GradientAttribution):
    r"""Captum's ``GradientAttribution`` with what every class here shares:
    gradients from one backward pass of the summed outputs
    (:func:`~captum_idg.attr._path.summed_gradients`), ``multiply_by_inputs``,
    and ``attribute_future`` refused as Captum's ``IntegratedGradients``
    refuses it."""

    def __init__(self, forward_func: Callable[..., Tensor],
                 multiply_by_inputs: bool = True) -> None:
        GradientAttribution.__init__(self, forward_func)
        self.gradient_func = summed_gradients
        self._multiply_by_inputs = multiply_by_inputs

    @property
    def multiplies_by_inputs(self) -> bool:
        return self._multiply_by_inputs

    def attribute_future(self) -> None:
        r"""Not implemented: attributions are computed at once."""
        raise NotImplementedError(
            f"attribute_future is not implemented for {type(self).__name__}"
        )
