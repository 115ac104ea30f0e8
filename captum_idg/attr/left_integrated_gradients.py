"""Left-IG: Integrated Gradients over the unsaturated left part of the path."""

from typing import Any, Optional, Tuple, Union

from captum._utils.typing import BaselineType, TargetType, TensorOrTupleOfTensorsGeneric
from captum.log import log_usage
from torch import Tensor

from captum_idg._validation import check_choice, check_real
from captum_idg.attr._docs import documented
from captum_idg.attr._path_attribution import PathIntegralAttribution
from captum_idg.attr._path_integral import PathWeight, SaturationCut
from captum_idg.attr._references import several_references
from captum_idg.attr.schedules import SATURATION_RULES


class LeftIntegratedGradients(PathIntegralAttribution):
    r"""
    Left-IG integrates the gradient only over the left part of the straight
    path, from the baseline to the point ``a*`` where the target logit
    saturates, so that gradients from the flat, saturated part do not enter:

    ``LeftIG_i(x) = (x_i - x'_i) * integral_0^{a*} dF/dz_i(z(a)) da``

    A forward-only probe of ``n_probe_steps`` points finds ``a*`` per example
    (see :func:`captum_idg.saturation_point`); ``n_steps`` samples then cover
    ``[0, a*]`` by ``method``. Two published thresholds:
    ``threshold_type="max"`` stops where the logit first reaches
    ``threshold`` times its largest value on the path (the IDG paper's
    comparison code, ``threshold=0.9``, the default); ``"relative"`` stops
    where it has covered ``threshold`` of the way from ``F(x')`` to ``F(x)``
    (Miglani et al. 2020). The attributions sum to ``F(z(a*)) - F(x')``; with
    ``threshold=1`` on a path whose logit rises monotonically this is IG.

    Where the baseline itself already reaches the threshold (``a* = 0``), the
    IDG authors' code keeps the first probe interval; so does this class, and
    it warns, naming the examples.

    Miglani et al.: https://arxiv.org/abs/2010.12697
    """

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
        threshold: float = 0.9,
        threshold_type: str = "max",
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
            n_steps (int, optional): Gradient evaluations per example, spread
                        over ``[0, a*]``, at least 2. Default: 50
            {method}
                        The rule covers ``[0, a*]``; ``"riemann_middle"`` is
                        the plain Left-IG of the papers.
            {internal_batch_size}
            return_convergence_delta (bool, optional): Also return
                        ``sum_k w_k dF/da(a_k) - (F(z(a*)) - F(x'))`` per
                        example (one more forward pass). Default: False
            threshold (float, optional): Fraction in ``(0, 1]`` that defines
                        saturation. Default: 0.9
            threshold_type (str, optional): ``"max"`` (fraction of the largest
                        logit on the path) or ``"relative"`` (fraction of the
                        way from F(x') to F(x)). Default: ``"max"``
            n_probe_steps (int, optional): Forward-only probe points that locate
                        ``a*`` (and place adaptive samples), at least 2.
                        Default: None (= n_steps; with ``tolerance``, the
                        first round's samples, as adaptive sampling's probe
                        there: pass n_probe_steps to locate ``a*`` finer)
            {tolerance}

        Returns:
            **attributions** or 2-element tuple of **attributions**, **delta**:
            - **attributions** (*Tensor* or *tuple[Tensor, ...]*): Left-IG
                        attributions, of the shape of ``inputs``.
            - **delta** (*Tensor*, returned if return_convergence_delta=True):
                        completeness error on ``[0, a*]`` per example (with
                        ``multiply_by_inputs=True``, ``sum(attributions) -
                        (F(z(a*)) - F(x'))``; Captum's
                        ``compute_convergence_delta`` compares with
                        ``F(x) - F(x')`` instead, see there).
        """
        check_choice("threshold_type", threshold_type, SATURATION_RULES)
        check_real("threshold", threshold, 0.0, 1.0, low_open=True)
        sampler = SaturationCut(self._sampler(method, n_steps, None), threshold, threshold_type,
                                n_probe_steps)
        return self._along_straight_line(
            inputs, baselines, target, additional_forward_args, n_steps=n_steps,
            internal_batch_size=internal_batch_size,
            return_convergence_delta=return_convergence_delta, sampler=sampler,
            weight=PathWeight(), tolerance=tolerance)

    def compute_convergence_delta(self, *args: Any, **kwargs: Any) -> Tensor:
        r"""
        Captum's completeness gap ``sum(attributions) - (F(x) - F(x'))``.
        Left-IG integrates only up to ``a*``, so this gap is the part of the
        logit's change that Left-IG leaves out on purpose, plus the
        integration error; the ``delta`` of :meth:`attribute` compares with
        ``F(z(a*)) - F(x')`` and is the integration error alone. Arguments as
        in Captum's ``GradientAttribution.compute_convergence_delta``.
        """
        return super().compute_convergence_delta(*args, **kwargs)
