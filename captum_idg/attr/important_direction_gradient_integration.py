"""IDGI: Important Direction Gradient Integration (Yang, Wang, Bilen, CVPR 2023)."""

from typing import Callable, Optional, Tuple, Union

import torch
from captum._utils.common import _format_output, _is_tuple, safe_div
from captum._utils.typing import BaselineType, TargetType, TensorOrTupleOfTensorsGeneric
from captum.log import log_usage
from torch import Tensor

from captum_idg.attr._base import Attribution
from captum_idg.attr._docs import documented
from captum_idg.attr._intake import take_arguments
from captum_idg.attr._path import (
    StepSums,
    StraightLinePath,
    check_output_moves,
    flat_features,
    warn_no_change,
)
from captum_idg.attr._path_integral import ModelOnPath
from captum_idg.attr._references import several_references
from captum_idg.attr.schedules import riemann_schedule


class ImportantDirectionGradientIntegration(Attribution):
    r"""
    IDGI splits the straight path from ``x'`` to ``x`` into ``n_steps``
    segments and gives each segment's logit change ``F(z_{k+1}) - F(z_k)`` to
    the features along the gradient direction at ``z_k`` only:

    ``IDGI_i(x) = sum_k g_{k,i}^2 / ||g_k||^2 * (F(z_{k+1}) - F(z_k))``

    The components orthogonal to the gradient, which change nothing to first
    order and are noise in IG, are dropped. The attributions sum exactly to
    ``F(x) - F(x')`` (up to segments whose gradient is zero). Like IDG it uses
    the output change along the path. Cost: ``n_steps`` forward and backward
    passes at ``a_k = k / n_steps`` and one forward pass at ``x``.

    IDGI is ``sum_k g_k * dz_k`` with the step ``dz_k = g_k (F(z_{k+1}) -
    F(z_k)) / ||g_k||^2`` along the gradient, so ``multiply_by_inputs=False``
    gives, like the other path methods here, the step-weighted mean gradient
    ``sum_k g_k |dz_k| / sum_k |dz_k|``.

    More details: https://arxiv.org/abs/2303.14242
    """

    def __init__(
        self, forward_func: Callable[..., Tensor], multiply_by_inputs: bool = True
    ) -> None:
        r"""
        Args:

            forward_func (Callable): The forward function of the model or any
                    modification of it.
            multiply_by_inputs (bool, optional): True: the attributions above,
                    which sum to the output change (global). False: the
                    step-weighted mean gradient (local). Default: True
        """
        Attribution.__init__(self, forward_func, multiply_by_inputs)

    def has_convergence_delta(self) -> bool:
        return True

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
        internal_batch_size: Optional[int] = None,
        return_convergence_delta: bool = False,
    ) -> Union[
        TensorOrTupleOfTensorsGeneric, Tuple[TensorOrTupleOfTensorsGeneric, Tensor]
    ]:
        r"""
        Args:

            {inputs}
            {baselines}
            {target}
            {additional_forward_args}
            n_steps (int, optional): Number of path segments (gradient
                        evaluations), at least 2. Default: 50
            {internal_batch_size}
            return_convergence_delta (bool, optional): Also return
                        ``sum(attributions) - (F(x) - F(x'))`` per example,
                        which is zero up to rounding for the global
                        attributions. Default: False

        Returns:
            **attributions** or 2-element tuple of **attributions**, **delta**.
        """
        arguments = take_arguments(self.forward_func, inputs, baselines, target,
                                   additional_forward_args, internal_batch_size, n_steps)
        path = StraightLinePath(arguments.inputs, arguments.baselines)
        model = ModelOnPath.of(self, path, arguments)
        x = path.inputs[0]
        starts = riemann_schedule("riemann_left", n_steps, path.batch_size, x.dtype, x.device)[0]
        sums = StepSums(path.inputs, self.multiplies_by_inputs)
        # an example whose input is its baseline has segments of length 0: no change
        moves = sum(flat_features(d, 1).ne(0).any(dim=1) for d in path.directions).bool()
        start_logit = last = None
        for _, grads, logits in model.gradients(starts):
            logits = logits * moves
            if last is None:
                start_logit = logits[0]
            else:  # the last segment of the previous chunk ends at this chunk's start
                self._add_segments(sums, last[0], logits[:1] - last[1])
            self._add_segments(sums, tuple(g[:-1] for g in grads), logits.diff(dim=0))
            last = tuple(g[-1:].clone() for g in grads), logits[-1:]
        end_logit = model.logits(torch.ones_like(starts[:1])) * moves
        self._add_segments(sums, last[0], end_logit - last[1])
        attributions = sums.result()
        warn_no_change(~sums.seen & ~check_output_moves(start_logit, end_logit[0]))
        formatted = _format_output(_is_tuple(inputs), attributions)
        if return_convergence_delta:
            total = sum(flat_features(t, 1).sum(dim=1) for t in attributions)
            return formatted, total - (end_logit[0] - start_logit)
        return formatted

    @staticmethod
    def _add_segments(sums: StepSums, grads: Tuple[Tensor, ...], change: Tensor) -> None:
        r"""Adds the steps ``g_k * change_k / ||g_k||^2`` of segments whose
        gradients ``grads`` are ``(k, batch, ...)`` and logit changes ``change``
        ``(k, batch)`` (no step where ``g = 0``)."""
        norm = sum(flat_features(g, 2).pow(2).sum(dim=2) for g in grads)
        scale = torch.where(norm > 0, safe_div(change, norm), 0.0)
        sums.add(grads, tuple(g * scale.view(*scale.shape, *[1] * (g.dim() - 2)) for g in grads))
