"""Left-IG: Integrated Gradients over the unsaturated left part of the path."""

from typing import Callable, Optional, Tuple, Union

from captum._utils.common import _format_output, _is_tuple
from captum._utils.typing import BaselineType, TargetType, TensorOrTupleOfTensorsGeneric
from captum.log import log_usage
from torch import Tensor

from captum_idg.attr._path import StraightLinePath
from captum_idg.attr._path_attribution import PathIntegralAttribution
from captum_idg.attr._schedule import SATURATION_RULES, saturation_point, uniform_schedule
from captum_idg.attr._validation import check_choice


class LeftIntegratedGradients(PathIntegralAttribution):
    r"""
    Left-IG integrates the gradient only over the left part of the straight
    path, from the baseline to the point ``a*`` where the target logit
    saturates, so that gradients from the flat, saturated part do not enter:

    ``LeftIG_i(x) = (x_i - x'_i) * integral_0^{a*} dF/dz_i(z(a)) da``

    A forward-only probe of ``n_probe_steps`` points finds ``a*`` per example
    (see :func:`captum_idg.saturation_point`); ``n_steps`` midpoint samples
    then cover ``[0, a*]``. Two published thresholds: ``threshold_type="max"``
    stops where the logit first reaches ``threshold`` times its largest value
    on the path (the IDG paper's comparison code, ``threshold=0.9``, the
    default); ``"relative"`` stops where it has covered ``threshold`` of the
    way from ``F(x')`` to ``F(x)`` (Miglani et al. 2020). The attributions sum
    to ``F(z(a*)) - F(x')``; with ``threshold=1`` on a path whose logit rises
    monotonically this is IG.

    Miglani et al.: https://arxiv.org/abs/2010.12697
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
        threshold: float = 0.9,
        threshold_type: str = "max",
        n_probe_steps: Optional[int] = None,
        internal_batch_size: Optional[int] = None,
        return_convergence_delta: bool = False,
    ) -> Union[
        TensorOrTupleOfTensorsGeneric, Tuple[TensorOrTupleOfTensorsGeneric, Tensor]
    ]:
        r"""
        Args:

            inputs (Tensor or tuple[Tensor, ...]): Input for which attributions
                        are computed, batch first.
            baselines (scalar, Tensor, tuple of scalar, or Tensor, optional):
                        Start of the path, per input tensor: a scalar, a tensor
                        of the input's shape, or of shape (1, ...) broadcast
                        over the batch. Default: None (zeros)
            target (int, tuple, Tensor, or list, optional): Output indices for
                        which gradients are computed, as in Captum.
                        Default: None
            additional_forward_args (Any, optional): Extra arguments passed to
                        forward_func after the inputs. Default: None
            n_steps (int, optional): Gradient evaluations per example, spread
                        evenly over ``[0, a*]``, at least 2. Default: 50
            threshold (float, optional): Fraction in ``(0, 1]`` that defines
                        saturation. Default: 0.9
            threshold_type (str, optional): ``"max"`` (fraction of the largest
                        logit on the path) or ``"relative"`` (fraction of the
                        way from F(x') to F(x)). Default: ``"max"``
            n_probe_steps (int, optional): Forward-only probe points that locate
                        ``a*``, at least 2. Default: None (= n_steps)
            internal_batch_size (int, optional): Most rows per forward pass.
                        Default: None (one pass for all steps)
            return_convergence_delta (bool, optional): Also return
                        ``sum(attributions) - (F(z(a*)) - F(x'))`` per example
                        (one more forward pass). Default: False

        Returns:
            **attributions** or 2-element tuple of **attributions**, **delta**:
            - **attributions** (*Tensor* or *tuple[Tensor, ...]*): Left-IG
                        attributions, of the shape of ``inputs``.
            - **delta** (*Tensor*, returned if return_convergence_delta=True):
                        completeness error on ``[0, a*]`` per example (with
                        ``multiply_by_inputs=False``, the quadrature
                        ``sum_k w_k dF/da(a_k)`` stands for the sum).
        """
        path = StraightLinePath.from_arguments(
            inputs, baselines, target, additional_forward_args, n_steps,
            internal_batch_size,
        )
        check_choice("threshold_type", threshold_type, SATURATION_RULES)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not (
            0 < threshold <= 1
        ):
            raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
        probe = path.probe(
            self.forward_func, n_steps if n_probe_steps is None else n_probe_steps
        )
        cut = saturation_point(probe, threshold, threshold_type)
        x = path.inputs[0]
        alphas, weights = uniform_schedule(n_steps, path.batch_size, x.dtype, x.device)
        attributions, rate_integral, _ = self._integrate(path, alphas * cut, weights * cut)
        formatted = _format_output(_is_tuple(inputs), attributions)
        if return_convergence_delta:
            at_cut = path.logits(self.forward_func, cut[None])[0]
            return formatted, rate_integral - (at_cut - probe[0])
        return formatted
