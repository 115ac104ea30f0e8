"""Blur IG (Xu, Venugopalan, Sundararajan, Yang, CVPR 2020), and IDG's weight on its path."""

import math
from typing import Callable, List, Optional, Tuple

import torch
from captum._utils.common import (
    _expand_additional_forward_args,
    _expand_target,
    _format_additional_forward_args,
    _format_output,
    _format_tensor_into_tuples,
    _is_tuple,
    _select_targets,
)
from captum._utils.typing import TargetType, TensorOrTupleOfTensorsGeneric
from captum.log import log_usage
from torch import Tensor

from captum_idg._batching import row_slices
from captum_idg.attr._base import Attribution
from captum_idg.attr._docs import documented
from captum_idg.attr._path import StepSums, flat_features
from captum_idg.attr._validation import (
    check_count,
    check_finite,
    check_forward_args,
    check_real,
    check_target,
    check_values,
    checked_forward,
    rows_per_pass,
    warn_if_training,
)


def gaussian_blur(images: Tensor, sigma: float) -> Tensor:
    r"""
    ``images`` ``(..., height, width)`` blurred over the last two dimensions
    as ``scipy.ndimage.gaussian_filter(mode="constant")`` blurs them (truncate
    4: a kernel of radius ``int(4 sigma + 0.5)``, zeros outside the image);
    ``sigma`` 0 returns ``images``. Computed in float64, as two products with
    the banded blur matrices, whose cost does not grow with the radius.
    """
    if sigma == 0:
        return images
    height, width = images.shape[-2:]
    flat = images.to(torch.float64)
    return _blur_matrix(height, sigma, images.device) @ flat @ _blur_matrix(
        width, sigma, images.device).T


def _blur_matrix(size: int, sigma: float, device: torch.device) -> Tensor:
    """``(size, size)``: row ``i`` holds the normalised Gaussian taps of output ``i``."""
    radius = int(4 * sigma + 0.5)
    taps = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    total = torch.exp(-0.5 * (taps / sigma) ** 2).sum()
    index = torch.arange(size, dtype=torch.float64, device=device)
    offset = index[None, :] - index[:, None]
    weights = torch.exp(-0.5 * (offset / sigma) ** 2) / total
    return torch.where(offset.abs() <= radius, weights, 0.0)


class BlurIntegratedGradients(Attribution):
    r"""
    Blur IG integrates gradients along the path that blurs the input
    progressively, from the input (``sigma = 0``) to its Gaussian blur with
    ``max_sigma``, instead of a straight line from a baseline: the blurred
    image is a baseline that adds no feature of its own.

    ``BlurIG_i(x) = - sum_k dF/dz_i(z(s_k)) * dz_i/ds(s_k) * ds`` with
    ``z(s)`` the blur of ``x`` with sigma ``s``, ``s_k = k * max_sigma /
    n_steps`` (``k = 0 .. n_steps - 1``, or their square roots' spacing with
    ``sqrt=True``) and ``dz/ds`` the finite difference ``(z(s + grad_step) -
    z(s)) / grad_step``: the algorithm of PAIR's ``saliency.core.BlurIG``,
    batched over examples and steps. Inputs are images ``(N, ..., H, W)``,
    blurred over the last two dimensions. Cost: ``n_steps`` forward and
    backward passes per example.

    More details: https://arxiv.org/abs/2004.03383
    """

    # the weight of each step's gradient: 1 (Blur IG) or dF/da there (Blur IDG)
    decision_weight = False

    def __init__(
        self, forward_func: Callable[..., Tensor], multiply_by_inputs: bool = True
    ) -> None:
        r"""
        Args:

            forward_func (Callable): The forward function of the model or any
                    modification of it.
            multiply_by_inputs (bool, optional): True: the attributions above,
                    the gradients times each step of the path (global).
                    False: the step-weighted mean gradient ``sum_k g_k |dz_k|
                    / sum_k |dz_k|`` (local). Default: True
        """
        Attribution.__init__(self, forward_func, multiply_by_inputs)

    @log_usage()
    @documented
    def attribute(  # type: ignore[override]
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        target: TargetType = None,
        additional_forward_args: Optional[object] = None,
        n_steps: int = 100,
        max_sigma: float = 50.0,
        grad_step: float = 0.01,
        sqrt: bool = False,
        internal_batch_size: Optional[int] = None,
    ) -> TensorOrTupleOfTensorsGeneric:
        r"""
        Args:

            inputs (Tensor or tuple[Tensor, ...]): Images ``(N, ..., H, W)``
                        (e.g. ``(N, C, H, W)``), batch first, blurred over the
                        last two dimensions.
            {target}
            {additional_forward_args}
            n_steps (int, optional): Steps of the blur path (gradient
                        evaluations), at least 2. Default: 100
            max_sigma (float, optional): Sigma of the most blurred image, the
                        path's start, in pixels. Default: 50.0
            grad_step (float, optional): Sigma step of the finite difference
                        ``dz/ds``. Default: 0.01
            sqrt (bool, optional): Space the sigmas as square roots of an even
                        grid, as PAIR's ``sqrt=True``. Default: False
            {internal_batch_size}

        Returns:
            **attributions**: of the shape of ``inputs``.
        """
        warn_if_training(self.forward_func)
        formatted = _format_tensor_into_tuples(inputs)
        for x in formatted:
            if not isinstance(x, Tensor) or x.dim() < 3:
                raise ValueError("inputs must be images batch first, (N, ..., H, W): Blur IG "
                                 "blurs the last two dimensions")
            check_values("inputs", x)
        formatted = tuple(x.detach() for x in formatted)
        batch = formatted[0].shape[0]
        check_count("n_steps", n_steps, 2)
        check_real("max_sigma", max_sigma, 0.0, low_open=True)
        check_real("grad_step", grad_step, 0.0, low_open=True)
        check_target(target, batch)
        args = _format_additional_forward_args(additional_forward_args)
        check_forward_args(args, batch)
        sigmas = [math.sqrt(k * max_sigma / n_steps) if sqrt else k * max_sigma / n_steps
                  for k in range(n_steps + 1)]
        sums = StepSums(formatted, self.multiplies_by_inputs)
        rows = max(1, rows_per_pass(formatted, internal_batch_size) // batch)
        for chunk in row_slices(n_steps, rows):
            k = chunk.stop - chunk.start
            points, steps = self._steps(formatted, sigmas, chunk, grad_step)
            outputs: List[Tensor] = []
            grads = self.gradient_func(
                checked_forward(self.forward_func, target, outputs),
                tuple(p.reshape(k * batch, *p.shape[2:]).requires_grad_() for p in points),
                _expand_target(target, k),
                None if args is None else _expand_additional_forward_args(args, k),
            )
            grads = tuple(g.view(k, batch, *g.shape[1:]) for g in grads)
            where = torch.tensor(sigmas[chunk], dtype=torch.float64)[:, None].expand(-1, batch)
            logits = _select_targets(outputs[-1].detach(), _expand_target(target, k))
            for name, values in (("forward_func's outputs", logits.reshape(k, batch)),
                                 *(("gradients of forward_func", g) for g in grads)):
                check_finite(name, values, where, "on the blur path", "sigma")
            if self.decision_weight:  # dF/da along the path, a = the path's fraction
                rate = sum(torch.einsum("kbf,kbf->kb", flat_features(g, 2), flat_features(s, 2))
                           for g, s in zip(grads, steps)) * n_steps
                steps = tuple(s * rate.view(k, batch, *[1] * (s.dim() - 2)) for s in steps)
            sums.add(grads, steps)
        return _format_output(_is_tuple(inputs), sums.result())

    @staticmethod
    def _steps(inputs: Tuple[Tensor, ...], sigmas: List[float], chunk: slice,
               grad_step: float) -> Tuple[Tuple[Tensor, ...], Tuple[Tensor, ...]]:
        r"""The path points of the steps ``chunk`` and the path's step at each,
        oriented from the blurred image to the input: ``(k, batch, *shape)``."""
        points, steps = [], []
        for x in inputs:
            blurred = [gaussian_blur(x, sigmas[i]) for i in range(chunk.start, chunk.stop)]
            moved = [(sigmas[i + 1] - sigmas[i]) * (
                gaussian_blur(x, sigmas[i] + grad_step) - b) / grad_step
                for i, b in zip(range(chunk.start, chunk.stop), blurred)]
            points.append(torch.stack(blurred).to(x.dtype))
            steps.append(-torch.stack(moved).to(x.dtype))
        return tuple(points), tuple(steps)


class BlurIntegratedDecisionGradients(BlurIntegratedGradients):
    r"""
    IDG's weight on Blur IG's path: each step's gradient term is multiplied
    by ``dF/da`` there, the rate at which the target logit changes along the
    path (``a`` its fraction, from the blurred image to the input), computed
    from the same gradient: ``sum_k dF/da(a_k) * g_k * dz_k``. Steps where the
    logit is flat count for little, as in
    :class:`~captum_idg.IntegratedDecisionGradients` on the straight line.
    Arguments as :class:`BlurIntegratedGradients`.
    """

    decision_weight = True
