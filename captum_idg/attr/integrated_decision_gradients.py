"""Integrated Decision Gradients (Walker, Jha, Chen, Ewetz, AAAI 2024)."""

from typing import Callable, Optional, Tuple, Union

import torch
from captum._utils.common import _format_output, _is_tuple
from captum._utils.typing import BaselineType, TargetType, TensorOrTupleOfTensorsGeneric
from captum.log import log_usage
from torch import Tensor

from captum_idg.attr._path import SAMPLINGS, StraightLinePath
from captum_idg.attr._path_attribution import PathIntegralAttribution
from captum_idg.attr._validation import check_choice


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
    With ``sampling="adaptive"`` (the paper's default) the Riemann samples are
    placed densely where the logit moves, found by a forward-only probe of
    ``n_probe_steps`` points (see :func:`captum_idg.adaptive_schedule`).

    IDG is not complete in IG's sense: the attributions of an example sum to
    ``integral (dF/da)^2 da``. ``rescale=True`` multiplies them by
    ``(F(x) - F(x')) / integral (dF/da)^2 da`` so that they sum to
    ``F(x) - F(x')``; on a linear model this gives exactly IG.

    More details regarding Integrated Decision Gradients can be found in the
    original paper: https://arxiv.org/abs/2305.20052
    """

    def __init__(
        self, forward_func: Callable[..., Tensor], multiply_by_inputs: bool = True
    ) -> None:
        r"""
        Args:

            forward_func (Callable): The forward function of the model or any
                    modification of it. Its target output is differentiated
                    as it is (pass logits, not probabilities, to follow the
                    paper).
            multiply_by_inputs (bool, optional): Indicates whether to factor
                    model inputs' multiplier in the final attribution scores
                    (global attribution). If True, attributions are multiplied
                    by (inputs - baselines), as in IG. Default: True
        """
        super().__init__(forward_func, multiply_by_inputs)

    def _coefficients(self, weights: Tensor, rate: Tensor) -> Tensor:
        return weights * rate

    @log_usage()
    def attribute(  # type: ignore[override]
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        baselines: BaselineType = None,
        target: TargetType = None,
        additional_forward_args: Optional[object] = None,
        n_steps: int = 50,
        sampling: str = "adaptive",
        n_probe_steps: Optional[int] = None,
        rescale: bool = False,
        internal_batch_size: Optional[int] = None,
        return_convergence_delta: bool = False,
    ) -> Union[
        TensorOrTupleOfTensorsGeneric, Tuple[TensorOrTupleOfTensorsGeneric, Tensor]
    ]:
        r"""
        Args:

            inputs (Tensor or tuple[Tensor, ...]): Input for which attributions
                        are computed, batch first. A tuple of tensors for a
                        forward_func that takes several inputs.
            baselines (scalar, Tensor, tuple of scalar, or Tensor, optional):
                        Start of the path, per input tensor: a scalar, a tensor
                        of the input's shape, or of shape (1, ...) broadcast
                        over the batch. Default: None (zeros)
            target (int, tuple, Tensor, or list, optional): Output indices for
                        which gradients are computed, as in Captum: one for all
                        examples or one per example. Default: None
            additional_forward_args (Any, optional): Extra arguments passed to
                        forward_func after the inputs; tensors are expanded
                        along the path like Captum IG does. Default: None
            n_steps (int, optional): Number of gradient evaluations (forward
                        and backward) per example, at least 2. Default: 50
            sampling (str, optional): ``"adaptive"`` (dense where the logit
                        moves) or ``"uniform"`` (midpoint rule).
                        Default: ``"adaptive"``
            n_probe_steps (int, optional): Forward-only probe points for
                        adaptive sampling, at least 2, on a uniform grid that
                        includes both ends of the path. Default: None
                        (``n_steps // 4``, at least 6 and at most n_steps)
            rescale (bool, optional): Scale each example's attributions so that
                        they sum to F(x) - F(x'). Default: False
            internal_batch_size (int, optional): Most rows per forward pass,
                        for the probe and the gradient passes alike; a pass
                        always holds at least one step of the whole batch.
                        Default: None (one pass for all steps)
            return_convergence_delta (bool, optional): Also return the
                        convergence delta. Default: False

        Returns:
            **attributions** or 2-element tuple of **attributions**, **delta**:
            - **attributions** (*Tensor* or *tuple[Tensor, ...]*): IDG
                        attributions, of the shape of ``inputs``.
            - **delta** (*Tensor*, returned if return_convergence_delta=True):
                        How well the schedule integrates the path:
                        ``sum_k w_k dF/da(a_k) - (F(x) - F(x'))`` per example,
                        the completeness error IG would have with the same
                        sample points. It does not depend on ``rescale``.

        Examples::

            >>> net = ImageClassifier()
            >>> idg = IntegratedDecisionGradients(net)
            >>> input = torch.randn(2, 3, 32, 32)
            >>> attribution = idg.attribute(input, target=3)
        """
        path = StraightLinePath.from_arguments(
            inputs, baselines, target, additional_forward_args, n_steps,
            internal_batch_size,
        )
        check_choice("sampling", sampling, SAMPLINGS)
        alphas, weights, probe = path.schedule(
            self.forward_func, sampling, n_steps, n_probe_steps
        )
        attributions, rate_integral, squared_rate_integral = self._integrate(
            path, alphas, weights
        )
        if rescale or return_convergence_delta:
            start, end = path.endpoint_logits(self.forward_func, probe)
        if rescale:
            nonzero = squared_rate_integral != 0
            scale = (end - start) / torch.where(nonzero, squared_rate_integral, 1.0)
            scale = torch.where(nonzero, scale, 0.0)
            attributions = tuple(
                a * scale.view(-1, *[1] * (a.dim() - 1)) for a in attributions
            )
        formatted = _format_output(_is_tuple(inputs), attributions)
        if return_convergence_delta:
            return formatted, rate_integral - (end - start)
        return formatted
