"""Integrated Decision Gradients (Walker, Jha, Chen, Ewetz, AAAI 2024)."""

from typing import Any, Optional, Tuple, Union

from captum._utils.typing import BaselineType, TargetType, TensorOrTupleOfTensorsGeneric
from captum.log import log_usage
from torch import Tensor

from captum_idg.attr._docs import documented
from captum_idg.attr._path_attribution import PathIntegralAttribution
from captum_idg.attr._path_integral import PATH_METHODS
from captum_idg.attr._references import several_references
from captum_idg.attr.schedules import RIEMANN_METHODS


class IntegratedDecisionGradients(PathIntegralAttribution):
    r"""
    Integrated Decision Gradients (IDG) weights every gradient along the
    straight path from a baseline ``x'`` to the input ``x`` by the importance
    factor ``dF/dalpha``, the rate at which the target logit changes there:

    ``IDG_i(x) = (x_i - x'_i) * integral_0^1 dF/dz_i(z(a)) * dF/da(a) da``

    with ``z(a) = x' + a (x - x')`` and ``dF/da = sum_j dF/dz_j (x_j - x'_j)``,
    computed exactly from the same backward pass (no extra passes). Gradients
    from the saturated part of the path, where the logit is flat, count for
    little; the attribution comes from where the model makes its decision.
    ``method="adaptive"`` (the default) places the samples where the logit
    moves; ``method="reference"`` reproduces the authors' released algorithm.

    The paper's raw IDG is not complete in IG's sense: the attributions of an
    example sum to ``integral (dF/da)^2 da``. By default (``rescale=True``)
    they are multiplied by ``(F(x) - F(x')) / integral (dF/da)^2 da`` so that
    they sum to ``F(x) - F(x')`` with IG's sign, as a Captum user expects; on
    a linear model this gives exactly IG. ``rescale=False`` gives the raw map,
    and ``method="reference"`` the authors' raw algorithm.

    More details regarding Integrated Decision Gradients can be found in the
    original paper: https://arxiv.org/abs/2305.20052
    """

    methods = RIEMANN_METHODS + ("adaptive", "regions", "reference")

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
        rescale: Optional[bool] = None,
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
                        IDG also takes ``"reference"``: the IDG authors'
                        released algorithm (a probe of ``n_steps`` points,
                        their allocation and placement, the importance factor
                        by finite difference of consecutive logits, the sum
                        divided by ``n_steps``; see
                        :func:`~captum_idg.attr.schedules.reference_schedule`),
                        to reproduce the paper.
            {internal_batch_size}
            return_convergence_delta (bool, optional): Also return the
                        convergence delta. Default: False
            {n_probe_steps}
            rescale (bool, optional): Scale each example's attributions so that
                        they sum to F(x) - F(x'), with IG's sign, as Captum's
                        IG attributions do. ``False`` gives the paper's raw
                        IDG, which sums to ``integral (dF/da)^2 da`` and so is
                        never negative in sum: where ``F(x) < F(x')`` it
                        points the opposite way to IG. Default: None (True,
                        except with ``method="reference"``, the authors'
                        raw algorithm)
            {tolerance}

        Returns:
            **attributions** or 2-element tuple of **attributions**, **delta**:
            - **attributions** (*Tensor* or *tuple[Tensor, ...]*): IDG
                        attributions, of the shape of ``inputs``.
            - **delta** (*Tensor*, returned if return_convergence_delta=True):
                        How well the samples integrate the path:
                        ``sum_k w_k dF/da(a_k) - (F(x) - F(x'))`` per example,
                        the completeness error IG would have with the same
                        sample points. It does not depend on ``rescale``, and
                        it is not Captum's ``compute_convergence_delta`` (see
                        there).

        Examples::

            >>> net = ImageClassifier()
            >>> idg = IntegratedDecisionGradients(net)
            >>> input = torch.randn(2, 3, 32, 32)
            >>> attribution = idg.attribute(input, target=3)
            >>> # the authors' algorithm, to reproduce the paper
            >>> attribution = idg.attribute(input, target=3, method="reference")
        """
        if method == "reference" and tolerance is not None:
            raise ValueError("tolerance: the authors' algorithm (method='reference') samples its "
                             "own schedule and has no error estimate; pass method='adaptive'")
        if rescale is None:
            rescale = method != "reference"
        sampler = self._sampler(method, n_steps, n_probe_steps)
        return self._along_straight_line(
            inputs, baselines, target, additional_forward_args, n_steps=n_steps,
            internal_batch_size=internal_batch_size,
            return_convergence_delta=return_convergence_delta, sampler=sampler,
            weight=PATH_METHODS[method].decision_weight(), tolerance=tolerance, rescale=rescale)

    def compute_convergence_delta(self, *args: Any, **kwargs: Any) -> Tensor:
        r"""
        Captum's completeness gap ``sum(attributions) - (F(x) - F(x'))`` of
        the attributions given. IDG is not complete, so for raw IDG this is
        not an integration error (and with ``rescale=True``, the default, it
        is 0 by construction); the ``delta`` that :meth:`attribute` returns is the
        integration error instead: IG's completeness gap on IDG's samples.
        Arguments as in Captum's ``GradientAttribution.compute_convergence_delta``.
        """
        return super().compute_convergence_delta(*args, **kwargs)
