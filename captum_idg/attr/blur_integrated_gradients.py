"""Blur IG (Xu, Venugopalan, Sundararajan, Yang, CVPR 2020), and IDG's weight on its path."""

import math
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import torch
from captum._utils.typing import TargetType, TensorOrTupleOfTensorsGeneric
from captum.log import log_usage
from torch import Tensor

from captum_idg._batching import Index
from captum_idg._gaussian import gaussian_taps
from captum_idg._validation import check_real
from captum_idg.attr._docs import documented
from captum_idg.attr._intake import take_arguments
from captum_idg.attr._path import Path
from captum_idg.attr._path_attribution import PathIntegralAttribution
from captum_idg.attr._path_integral import (
    DecisionWeight,
    Known,
    ModelOnPath,
    PathWeight,
    Sampler,
    Schedule,
    Weight,
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
    taps = gaussian_taps(sigma, device)
    radius = (len(taps) - 1) // 2
    index = torch.arange(size, device=device)
    offset = index[None, :] - index[:, None]
    return torch.where(offset.abs() <= radius, taps[(offset + radius).clamp(0, 2 * radius)], 0.0)


class BlurPath(Path):
    r"""
    The blur paths of a batch of images ``(N, ..., H, W)``: ``z(alpha)`` is
    the input blurred with sigma ``(1 - alpha) * top_sigma`` over the last two
    dimensions, from the most blurred image (``alpha = 0``) to the input
    (``alpha = 1``). ``dz/dalpha`` is ``-top_sigma`` times PAIR's finite
    difference ``(z(s + grad_step) - z(s)) / grad_step`` in sigma. Gradients
    are summed as steps (:class:`~captum_idg.attr._path.StepSums`).
    """

    where = "on the blur path (alpha 0 is the most blurred image, 1 the input)"
    schedule_dtype = torch.float64  # sigmas as exact as PAIR's

    def __init__(self, inputs: Tuple[Tensor, ...], top_sigma: float, grad_step: float) -> None:
        super().__init__(inputs)
        self.top_sigma, self.grad_step = top_sigma, grad_step
        # the blurs of the last sigmas asked for: points, then derivative, ask for the same
        self._last: Optional[Tuple[list, Tuple[Tensor, ...]]] = None

    def select(self, index: Index) -> "BlurPath":
        return BlurPath(self.taken(self.inputs, index), self.top_sigma, self.grad_step)

    def points(self, alphas: Tensor) -> Tuple[Tensor, ...]:
        return tuple(b.flatten(0, 1).to(x.dtype)
                     for b, x in zip(self._blurs(self._sigmas(alphas)), self.inputs))

    def derivative(self, alphas: Tensor) -> Tuple[Tensor, ...]:
        sigmas = self._sigmas(alphas)
        return tuple(
            (-self.top_sigma / self.grad_step * (_blurred(x, sigmas + self.grad_step) - b)
             ).to(x.dtype)
            for b, x in zip(self._blurs(sigmas), self.inputs))

    def _sigmas(self, alphas: Tensor) -> Tensor:
        return (1 - alphas.to(torch.float64)) * self.top_sigma

    def _blurs(self, sigmas: Tensor) -> Tuple[Tensor, ...]:
        r"""Every input blurred with ``sigmas`` ``(k, batch)``, float64, computed once."""
        key = sigmas.tolist()
        if self._last is None or self._last[0] != key:
            self._last = key, tuple(_blurred(x, sigmas) for x in self.inputs)
        return self._last[1]


def _blurred(x: Tensor, sigmas: Tensor) -> Tensor:
    r"""``x`` ``(batch, ...)`` blurred with ``sigmas`` ``(k, batch)``: ``(k, batch, ...)``,
    float64; one blur of the whole batch per row where the row's sigmas agree."""
    rows = []
    for row in sigmas.tolist():
        if all(s == row[0] for s in row):
            rows.append(gaussian_blur(x, row[0]).to(torch.float64))
        else:
            rows.append(torch.stack([gaussian_blur(e, s).to(torch.float64)
                                     for e, s in zip(x, row)]))
    return torch.stack(rows)


@dataclass
class BlurSigmas(Sampler):
    r"""PAIR's Blur IG schedule: sigmas ``k * max_sigma / n_steps`` (their
    square roots with ``sqrt``), ``k = 0 .. n_steps - 1``, each weighted by
    the sigma step to the next, as ``alpha = 1 - sigma / top_sigma`` with
    ``top_sigma`` the last (:attr:`top_sigma`)."""

    max_sigma: float
    sqrt: bool = False

    @property
    def top_sigma(self) -> float:
        return math.sqrt(self.max_sigma) if self.sqrt else self.max_sigma

    def place(self, model: ModelOnPath, known: Known, n_steps: int) -> Schedule:
        sigmas = torch.arange(n_steps + 1, dtype=torch.float64) * self.max_sigma / n_steps
        if self.sqrt:
            sigmas = sigmas.sqrt()
        alphas = 1 - sigmas[:-1] / self.top_sigma
        weights = sigmas.diff() / self.top_sigma
        shape = (n_steps, model.path.batch_size)
        return Schedule(alphas[:, None].expand(shape).to(**model.like()),
                        weights[:, None].expand(shape).to(**model.like()))


class BlurIntegratedGradients(PathIntegralAttribution):
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

    It is the package's path engine on :class:`BlurPath` with the schedule
    :class:`BlurSigmas` and IG's weight; :class:`BlurIntegratedDecisionGradients`
    swaps in IDG's.

    More details: https://arxiv.org/abs/2004.03383
    """

    weight: Weight = PathWeight()

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
        PathIntegralAttribution.__init__(self, forward_func, multiply_by_inputs)

    def has_convergence_delta(self) -> bool:
        return False

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
        arguments = take_arguments(self.forward_func, inputs, None, target,
                                   additional_forward_args, internal_batch_size, n_steps)
        if any(x.dim() < 3 for x in arguments.inputs):
            raise ValueError("inputs must be images batch first, (N, ..., H, W): Blur IG "
                             "blurs the last two dimensions")
        check_real("max_sigma", max_sigma, 0.0, low_open=True)
        check_real("grad_step", grad_step, 0.0, low_open=True)
        sigmas = BlurSigmas(max_sigma, sqrt)
        model = ModelOnPath.of(self, BlurPath(arguments.inputs, sigmas.top_sigma, grad_step),
                               arguments)
        return self._integrate(inputs, model, n_steps=n_steps, sampler=sigmas,
                               weight=self.weight)


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

    weight: Weight = DecisionWeight()
