"""The Captum base class every attribution class of this package derives from."""

from captum.attr._utils.attribution import GradientAttribution


class Attribution(GradientAttribution):
    r"""Captum's ``GradientAttribution``, with ``attribute_future`` refused as
    Captum's ``IntegratedGradients`` refuses it."""

    def attribute_future(self) -> None:
        r"""Not implemented: attributions are computed at once."""
        raise NotImplementedError(
            f"attribute_future is not implemented for {type(self).__name__}"
        )
