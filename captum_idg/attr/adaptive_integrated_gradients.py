"""Integrated Gradients on the adaptive-sampling schedule."""

from typing import Callable, Optional, Tuple, Union

from captum._utils.common import _format_output, _is_tuple
from captum._utils.typing import BaselineType, TargetType, TensorOrTupleOfTensorsGeneric
from captum.log import log_usage
from torch import Tensor

from captum_idg.attr._path import StraightLinePath
from captum_idg.attr._path_attribution import PathIntegralAttribution


class AdaptiveIntegratedGradients(PathIntegralAttribution):
    r"""
    Integrated Gradients (Sundararajan et al. 2017) whose Riemann sum places
    its samples non-uniformly, densely where the target logit changes along
    the path and sparsely where it is flat, as IDG's adaptive sampling does
    (Walker et al. 2024). A forward-only probe of ``n_probe_steps`` points
    finds where the logit moves; ``n_steps`` gradient evaluations follow.
    On models whose logit saturates, the attributions satisfy completeness
    (sum to ``F(x) - F(x')``) with fewer gradient evaluations than a uniform
    grid. See :func:`captum_idg.adaptive_schedule` for the placement rule.

    IG: https://arxiv.org/abs/1703.01365, IDG: https://arxiv.org/abs/2305.20052
    """

    def __init__(
        self, forward_func: Callable[..., Tensor], multiply_by_inputs: bool = True
    ) -> None:
        r"""
        Args:

            forward_func (Callable): The forward function of the model or any
                    modification of it.
            multiply_by_inputs (bool, optional): Indicates whether to factor
                    model inputs' multiplier in the final attribution scores
                    (global attribution). If True, attributions are multiplied
                    by (inputs - baselines). Default: True
        """
        super().__init__(forward_func, multiply_by_inputs)

    @log_usage()
    def attribute(  # type: ignore[override]
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        baselines: BaselineType = None,
        target: TargetType = None,
        additional_forward_args: Optional[object] = None,
        n_steps: int = 50,
        n_probe_steps: Optional[int] = None,
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
            n_probe_steps (int, optional): Forward-only probe points, at least
                        2, on a uniform grid that includes both ends of the
                        path. Default: None (``n_steps // 4``, at least 6
                        and at most n_steps)
            internal_batch_size (int, optional): Most rows per forward pass,
                        for the probe and the gradient passes alike; a pass
                        always holds at least one step of the whole batch.
                        Default: None (one pass for all steps)
            return_convergence_delta (bool, optional): Also return the
                        convergence delta. Default: False

        Returns:
            **attributions** or 2-element tuple of **attributions**, **delta**:
            - **attributions** (*Tensor* or *tuple[Tensor, ...]*): Integrated
                        gradients, of the shape of ``inputs``.
            - **delta** (*Tensor*, returned if return_convergence_delta=True):
                        ``sum_k w_k dF/da(a_k) - (F(x) - F(x'))`` per example;
                        with ``multiply_by_inputs=True`` this is Captum's
                        ``sum(attributions) - (F(x) - F(x'))``. The end points
                        come from the probe, with no extra forward pass.

        Examples::

            >>> net = ImageClassifier()
            >>> aig = AdaptiveIntegratedGradients(net)
            >>> input = torch.randn(2, 3, 32, 32)
            >>> attribution, delta = aig.attribute(
            ...     input, target=3, n_steps=16, return_convergence_delta=True)
        """
        path = StraightLinePath.from_arguments(
            inputs, baselines, target, additional_forward_args, n_steps,
            internal_batch_size,
        )
        alphas, weights, probe = path.schedule(
            self.forward_func, "adaptive", n_steps, n_probe_steps
        )
        attributions, rate_integral, _ = self._integrate(path, alphas, weights)
        formatted = _format_output(_is_tuple(inputs), attributions)
        if return_convergence_delta:
            start, end = path.endpoint_logits(self.forward_func, probe)
            return formatted, rate_integral - (end - start)
        return formatted
