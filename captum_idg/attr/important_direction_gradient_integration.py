"""IDGI: Important Direction Gradient Integration (Yang, Wang, Bilen, CVPR 2023)."""

from typing import Callable, Optional, Tuple, Union

import torch
from captum._utils.common import _format_output, _is_tuple
from captum._utils.typing import BaselineType, TargetType, TensorOrTupleOfTensorsGeneric
from captum.attr._utils.attribution import GradientAttribution
from captum.log import log_usage
from torch import Tensor

from captum_idg.attr._path import StraightLinePath
from captum_idg.attr._schedule import uniform_schedule


class ImportantDirectionGradientIntegration(GradientAttribution):
    r"""
    IDGI splits the straight path from ``x'`` to ``x`` into ``n_steps``
    segments and gives each segment's logit change ``F(z_{k+1}) - F(z_k)`` to
    the features along the gradient direction at ``z_k`` only:

    ``IDGI_i(x) = sum_k g_{k,i}^2 / ||g_k||^2 * (F(z_{k+1}) - F(z_k))``

    The components orthogonal to the gradient, which change nothing to first
    order and are noise in IG, are dropped. The attributions sum exactly to
    ``F(x) - F(x')`` (up to segments whose gradient is zero). Like IDG it uses
    the output change along the path; unlike IDG it does not multiply by
    ``x - x'`` (``multiplies_by_inputs`` is True because the attributions are
    global: they sum to the output change). Cost: ``n_steps`` forward and
    backward passes at ``a_k = k / n_steps`` and one forward pass at ``x``.

    More details: https://arxiv.org/abs/2303.14242
    """

    def __init__(self, forward_func: Callable[..., Tensor]) -> None:
        r"""
        Args:

            forward_func (Callable): The forward function of the model or any
                    modification of it.
        """
        GradientAttribution.__init__(self, forward_func)

    @property
    def multiplies_by_inputs(self) -> bool:
        return True

    def has_convergence_delta(self) -> bool:
        return True

    @log_usage()
    def attribute(  # type: ignore[override]
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        baselines: BaselineType = None,
        target: TargetType = None,
        additional_forward_args: Optional[object] = None,
        n_steps: int = 50,
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
            n_steps (int, optional): Number of path segments (gradient
                        evaluations), at least 2. Default: 50
            internal_batch_size (int, optional): Most rows per forward pass.
                        Default: None (one pass for all steps)
            return_convergence_delta (bool, optional): Also return
                        ``sum(attributions) - (F(x) - F(x'))`` per example,
                        which is zero up to rounding. Default: False

        Returns:
            **attributions** or 2-element tuple of **attributions**, **delta**.
        """
        path = StraightLinePath.from_arguments(
            inputs, baselines, target, additional_forward_args, n_steps,
            internal_batch_size,
        )
        x = path.inputs[0]
        centres, _ = uniform_schedule(n_steps, path.batch_size, x.dtype, x.device)
        starts = centres - 0.5 / n_steps  # a_k = k / n_steps
        totals = [torch.zeros_like(t) for t in path.inputs]
        start_logit = last = None
        for _, grads, logits in path.gradients(self.gradient_func, self.forward_func, starts):
            inverse_norms = self._inverse_squared_norms(grads)
            if last is None:
                start_logit = logits[0]
            else:  # the last segment of the previous chunk ends at this chunk's start
                self._add(totals, last[0], last[1] * (logits[:1] - last[2]))
            self._add(totals, tuple(g[:-1] for g in grads),
                      inverse_norms[:-1] * logits.diff(dim=0))
            last = tuple(g[-1:].clone() for g in grads), inverse_norms[-1:], logits[-1:]
        end_logit = path.logits(self.forward_func, torch.ones_like(starts[:1]))  # (1, batch)
        self._add(totals, last[0], last[1] * (end_logit - last[2]))
        formatted = _format_output(_is_tuple(inputs), tuple(totals))
        if return_convergence_delta:
            total = sum(t.flatten(1).sum(dim=1) for t in totals)
            return formatted, total - (end_logit[0] - start_logit)
        return formatted

    @staticmethod
    def _inverse_squared_norms(grads: Tuple[Tensor, ...]) -> Tensor:
        r"""``1 / ||g||^2`` per step and example, ``(k, batch)`` (zero where ``g = 0``)."""
        norm = sum(g.flatten(2).pow(2).sum(dim=2) for g in grads)
        return torch.where(norm > 0, 1.0 / torch.where(norm > 0, norm, 1.0), 0.0)

    @staticmethod
    def _add(totals: list, grads: Tuple[Tensor, ...], coefficients: Tensor) -> None:
        r"""Adds ``sum_k c_k g_k^2`` per example: ``grads`` ``(k, batch, ...)``,
        ``coefficients`` ``(k, batch)``."""
        for total, g in zip(totals, grads):
            total += torch.einsum("kb,kb...->b...", coefficients, g * g)
