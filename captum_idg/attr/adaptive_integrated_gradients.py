"""Integrated Gradients with adaptive sampling."""

from typing import Optional, Tuple, Union

from captum._utils.typing import BaselineType, TargetType, TensorOrTupleOfTensorsGeneric
from captum.log import log_usage
from torch import Tensor

from captum_idg.attr._docs import documented
from captum_idg.attr._path_attribution import PathIntegralAttribution
from captum_idg.attr._path_integral import PathWeight
from captum_idg.attr._references import several_references
from captum_idg.attr.schedules import RIEMANN_METHODS


class AdaptiveIntegratedGradients(PathIntegralAttribution):
    r"""
    Integrated Gradients (Sundararajan et al. 2017) whose samples are placed
    non-uniformly, densely where the target logit changes along the path and
    sparsely where it is flat, as IDG's adaptive sampling does (Walker et al.
    2024): a forward-only probe finds where the logit moves, and Gauss-Legendre
    panels follow it (see :mod:`captum_idg.attr.schedules`). On models whose
    logit saturates the integral converges with fewer gradient evaluations
    than a uniform grid; ``tolerance`` refines each example until the
    estimated relative error of its map is below it. With one of Captum's ``method`` names
    it gives Captum's IG numbers (``"trapezoid"``: the exact trapezoid rule).

    IG: https://arxiv.org/abs/1703.01365, IDG: https://arxiv.org/abs/2305.20052
    """

    complete = True

    methods = RIEMANN_METHODS + ("adaptive", "regions")

    @log_usage()
    @documented
    @several_references
    def attribute(  # type: ignore[override]
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        baselines: BaselineType = None,
        target: TargetType = None,
        additional_forward_args: Optional[object] = None,
        n_steps: int = 50,
        method: str = "adaptive",
        internal_batch_size: Optional[int] = None,
        return_convergence_delta: bool = False,
        n_probe_steps: Optional[int] = None,
        tolerance: Optional[float] = None,
    ) -> Union[
        TensorOrTupleOfTensorsGeneric, Tuple[TensorOrTupleOfTensorsGeneric, Tensor]
    ]:
        r"""
        Args:

            {inputs}
            {baselines}
            {target}
            {additional_forward_args}
            {n_steps}
            {method}
            {internal_batch_size}
            return_convergence_delta (bool, optional): Also return the
                        convergence delta. Default: False
            {n_probe_steps}
            {tolerance}

        Returns:
            **attributions** or 2-element tuple of **attributions**, **delta**:
            - **attributions** (*Tensor* or *tuple[Tensor, ...]*): Integrated
                        gradients, of the shape of ``inputs``.
            - **delta** (*Tensor*, returned if return_convergence_delta=True):
                        ``compute_convergence_delta(attributions, ...)``, as
                        Captum's IG returns it: ``sum(attributions) - (F(x) -
                        F(x'))`` per example.

        Examples::

            >>> net = ImageClassifier()
            >>> aig = AdaptiveIntegratedGradients(net)
            >>> input = torch.randn(2, 3, 32, 32)
            >>> attribution, delta = aig.attribute(
            ...     input, target=3, n_steps=16, return_convergence_delta=True)
            >>> # refine each image until |delta| <= 1e-3 |F(x) - F(x')|
            >>> attribution = aig.attribute(input, target=3, n_steps=256, tolerance=1e-3)
        """
        return self._along_straight_line(
            inputs, baselines, target, additional_forward_args, n_steps=n_steps,
            internal_batch_size=internal_batch_size,
            return_convergence_delta=return_convergence_delta,
            sampler=self._sampler(method, n_steps, n_probe_steps), weight=PathWeight(),
            tolerance=tolerance)
