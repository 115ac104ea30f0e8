"""Insertion and deletion scores (RISE, Petsiuk et al. 2018) as RISE and the IDG authors run them.

Pixels are ranked by ``|sum over channels of the attribution|``, most salient
first (ties keep raster order). Deletion starts from the image and replaces
``pixels_per_step`` pixels at a time (all channels) with a baseline; insertion
starts from a blurred copy and puts the original pixels back in the same
order. The curve is the model's score for the target after every step; its
area, normalised to ``[0, 1]`` on the x axis, is the metric. Insertion: higher
is better; deletion: lower is better.

The blur is RISE's (``evaluation.py``, used unchanged by the IDG authors): the
kernel is scipy's ``gaussian_filter`` of an 11 x 11 delta with sigma 5 (whose
reflected tails make it flatter than a truncated Gaussian), applied per
channel by ``conv2d`` with zero padding, so the borders of the start image
fade towards 0, the mean colour in normalised space.
``blur_padding="reflect"`` gives torchvision's ``gaussian_blur`` instead.
"""

import functools
import math
from typing import Any, Callable, Optional, Union

import torch
from captum._utils.common import _format_additional_forward_args
from captum._utils.typing import TargetType
from torch import Tensor
from torchvision.transforms.functional import gaussian_blur

from captum_idg._batching import row_slices, take_forward_args
from captum_idg._gaussian import gaussian_taps
from captum_idg._validation import (
    check_choice,
    check_finite,
    check_output,
    check_target,
    check_values,
    warn_if_training,
)

BLUR_PADDINGS = ("zeros", "reflect")

Score = Union[str, Callable[[Tensor], Tensor]]


def insertion_curve(
    forward_func: Callable[..., Tensor],
    inputs: Tensor,
    attributions: Tensor,
    target: TargetType = None,
    additional_forward_args: Optional[object] = None,
    pixels_per_step: Optional[int] = None,
    blur_kernel_size: int = 11,
    blur_sigma: float = 5.0,
    score: Score = "softmax",
    max_examples_per_batch: Optional[int] = None,
    blur_padding: str = "zeros",
) -> Tensor:
    r"""
    The insertion curve: scores as the most salient pixels of ``inputs`` are
    copied into a blurred copy of it.

    Args:
        forward_func (Callable): The model, taking ``inputs`` (and
                    ``additional_forward_args``) and returning ``(N, classes)``.
        inputs (Tensor): Images ``(batch, channels, height, width)``, in the
                    space the model takes (e.g. normalised).
        attributions (Tensor): Of shape ``(batch, channels or 1, height,
                    width)`` or ``(batch, height, width)``.
        target (int, list, or Tensor, optional): Class scored, one for all or
                    one per example. Default: None (the class the model
                    predicts on ``inputs``)
        additional_forward_args (Any, optional): Extra model arguments; tensors
                    with a batch dimension follow their example. Default: None
        pixels_per_step (int, optional): Pixels revealed per step.
                    Default: None (the image width: 224 for 224 x 224, giving
                    225 scores)
        blur_kernel_size (int, optional): Odd size of the Gaussian kernel of
                    the start image, per channel. Default: 11
        blur_sigma (float, optional): Its standard deviation. Default: 5.0
        score (str or Callable, optional): ``"softmax"`` (probability of the
                    target), ``"logit"``, or a function mapping ``(N, classes)``
                    outputs to scores of the same shape. Default: ``"softmax"``
        max_examples_per_batch (int, optional): Most images per forward pass.
                    Default: None (all steps of all examples at once)
        blur_padding (str, optional): ``"zeros"``: RISE's blur (see the
                    module docstring); ``"reflect"``: torchvision's
                    ``gaussian_blur``, a truncated Gaussian with reflected
                    borders. Default: ``"zeros"``

    Returns:
        *Tensor* ``(batch, n_steps + 1)``: the score before any pixel is
        inserted, then after each step.
    """
    if isinstance(blur_kernel_size, bool) or not isinstance(blur_kernel_size, int) or (
            blur_kernel_size < 1 or blur_kernel_size % 2 == 0):
        raise ValueError(f"blur_kernel_size must be odd and positive, got {blur_kernel_size!r}")
    if isinstance(blur_sigma, bool) or not isinstance(blur_sigma, (int, float)) or not (
            math.isfinite(blur_sigma) and blur_sigma > 0):
        raise ValueError(f"blur_sigma must be a finite number > 0, got {blur_sigma!r}")
    check_choice("blur_padding", blur_padding, BLUR_PADDINGS)
    check_images(inputs, attributions)
    if blur_kernel_size // 2 >= min(inputs.shape[-2:]):
        raise ValueError(
            f"blur_kernel_size {blur_kernel_size} is too large for images of size "
            f"{tuple(inputs.shape[-2:])}"
        )
    if blur_padding == "reflect":
        blurred = gaussian_blur(inputs, [blur_kernel_size] * 2, [float(blur_sigma)] * 2)
    else:
        blurred = rise_blur(inputs, blur_kernel_size, float(blur_sigma))
    return _curve(forward_func, blurred, inputs, inputs, attributions, target,
                  additional_forward_args, pixels_per_step, score, max_examples_per_batch)


def rise_blur(images: Tensor, kernel_size: int = 11, sigma: float = 5.0) -> Tensor:
    r"""RISE's blur of ``images`` ``(batch, channels, height, width)``: each
    channel convolved, zero-padded, with :func:`rise_kernel`."""
    kernel = rise_kernel(kernel_size, sigma).to(images)
    channels = images.shape[1]
    weight = kernel.expand(channels, 1, kernel_size, kernel_size)
    return torch.nn.functional.conv2d(images, weight, padding=kernel_size // 2, groups=channels)


def rise_kernel(kernel_size: int = 11, sigma: float = 5.0) -> Tensor:
    r"""
    scipy's ``gaussian_filter`` (truncate 4, ``mode="reflect"``) of a
    ``kernel_size`` square delta, as RISE's ``gkern`` builds it, float64:
    a 1-D Gaussian of radius ``int(4 sigma + 0.5)`` read off the delta and
    its mirror images about the half-sample borders, squared into 2-D.
    """
    taps = gaussian_taps(sigma)
    radius = (len(taps) - 1) // 2
    offsets = torch.arange(-radius, radius + 1)
    centre, period = kernel_size // 2, 2 * kernel_size
    row = torch.zeros(kernel_size, dtype=torch.float64)
    for j in range(kernel_size):
        for offset, tap in zip(offsets.tolist(), taps.tolist()):
            source = (j + int(offset)) % period  # unfold the reflections of the signal
            if min(source, period - 1 - source) == centre:
                row[j] += tap
    return torch.outer(row, row)


def deletion_curve(
    forward_func: Callable[..., Tensor],
    inputs: Tensor,
    attributions: Tensor,
    target: TargetType = None,
    additional_forward_args: Optional[object] = None,
    pixels_per_step: Optional[int] = None,
    baseline: Union[float, Tensor] = 0.0,
    score: Score = "softmax",
    max_examples_per_batch: Optional[int] = None,
) -> Tensor:
    r"""
    The deletion curve: scores as the most salient pixels of ``inputs`` are
    replaced with ``baseline``.

    ``forward_func``, ``inputs``, ``attributions``, ``target``,
    ``additional_forward_args``, ``pixels_per_step``, ``score`` and
    ``max_examples_per_batch`` are as in :func:`insertion_curve`.

    Args:
        baseline (float or Tensor, optional): The value deleted pixels take,
                    a number or a tensor that broadcasts to ``inputs`` (e.g.
                    ``(1, C, 1, 1)``). Default: 0.0 (the mean colour in
                    normalised space)

    Returns:
        *Tensor* ``(batch, n_steps + 1)``: the score of the intact image, then
        after each step.
    """
    check_images(inputs, attributions)
    if isinstance(baseline, bool) or not isinstance(baseline, (int, float, Tensor)):
        raise ValueError(
            f"baseline must be a number or a Tensor, got {type(baseline).__name__} {baseline!r}")
    substrate = torch.as_tensor(baseline, dtype=inputs.dtype, device=inputs.device)
    check_values("baseline", substrate)
    try:
        substrate = substrate.expand_as(inputs)
    except RuntimeError as error:
        raise ValueError(f"baseline does not broadcast to inputs: {error}") from None
    return _curve(forward_func, inputs, substrate, inputs, attributions, target,
                  additional_forward_args, pixels_per_step, score, max_examples_per_batch)


def curve_auc(curve: Tensor) -> Tensor:
    r"""Area under each row of ``curve``, with x running from 0 to 1."""
    return (curve.sum(dim=-1) - (curve[..., 0] + curve[..., -1]) / 2) / (curve.shape[-1] - 1)


def summary_of(curves: Callable[..., Any], summarise: Callable[[Any], Tensor], name: str,
               doc: str) -> Callable[..., Tensor]:
    """``summarise`` of ``curves``' result, with ``curves``' signature (for ``help``)."""

    @functools.wraps(curves)
    def summary(*args: Any, **kwargs: Any) -> Tensor:
        return summarise(curves(*args, **kwargs))

    summary.__name__ = summary.__qualname__ = name
    summary.__doc__ = doc
    return summary


insertion = summary_of(insertion_curve, curve_auc, "insertion", r"""Insertion AUC per example:
    :func:`curve_auc` of :func:`insertion_curve` (same arguments). Higher is better.""")
deletion = summary_of(deletion_curve, curve_auc, "deletion", r"""Deletion AUC per example:
    :func:`curve_auc` of :func:`deletion_curve` (same arguments). Lower is better.""")


def pixel_order(attributions: Tensor) -> Tensor:
    r"""Pixels ``(batch, height * width)`` from most to least salient, where
    saliency is ``|sum over channels|``; ties keep raster order."""
    saliency = attributions.sum(dim=1) if attributions.dim() == 4 else attributions
    return saliency.abs().flatten(1).argsort(dim=1, descending=True, stable=True)


def check_images(inputs: Tensor, attributions: Tensor) -> None:
    if not isinstance(inputs, Tensor) or inputs.dim() != 4:
        raise ValueError("inputs must be a Tensor of images (batch, channels, height, width)")
    if inputs.shape[0] == 0:
        raise ValueError("inputs must hold at least one image")
    check_values("inputs", inputs)
    if not isinstance(attributions, Tensor) or attributions.dim() not in (3, 4):
        raise ValueError("attributions must be a Tensor (batch, [channels,] height, width)")
    batch, channels, height, width = inputs.shape
    expected = {(batch, height, width), (batch, 1, height, width),
                (batch, channels, height, width)}
    if tuple(attributions.shape) not in expected:
        raise ValueError(
            f"attributions of shape {tuple(attributions.shape)} do not fit inputs of "
            f"shape {tuple(inputs.shape)}"
        )
    if not torch.isfinite(attributions).all():
        raise ValueError("attributions contain NaN or inf")


def _curve(
    forward_func: Callable[..., Tensor],
    start: Tensor,
    finish: Tensor,
    inputs: Tensor,
    attributions: Tensor,
    target: TargetType,
    additional_forward_args: Optional[object],
    pixels_per_step: Optional[int],
    score: Score,
    max_examples_per_batch: Optional[int],
) -> Tensor:
    """Scores of ``where(rank < k * step, finish, start)`` for every step k."""
    batch, _, height, width = inputs.shape
    step = width if pixels_per_step is None else pixels_per_step
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise ValueError(f"pixels_per_step must be a positive integer, got {pixels_per_step!r}")
    n_points = -(-height * width // step) + 1
    rank = torch.empty(batch, height * width, dtype=torch.long, device=inputs.device)
    order = pixel_order(attributions.to(inputs.device))
    rank.scatter_(1, order, torch.arange(height * width, device=inputs.device).expand(batch, -1))

    def images(example: Tensor, k: Tensor) -> Tensor:
        shown = (rank[example] < (k * step)[:, None]).view(-1, 1, height, width)
        return torch.where(shown, finish[example], start[example])

    curve = score_points(forward_func, inputs, images, n_points, target,
                         additional_forward_args, score, max_examples_per_batch)
    fraction = torch.arange(n_points, dtype=torch.float64) / (n_points - 1)
    check_finite("forward_func's scores", curve.T, fraction[:, None].expand(-1, batch),
                 "along the curve", "fraction of pixels")
    return curve


def score_points(
    forward_func: Callable[..., Tensor],
    inputs: Tensor,
    images: Callable[[Tensor, Tensor], Tensor],
    n_points: int,
    target: TargetType,
    additional_forward_args: Optional[object],
    score: Score,
    max_examples_per_batch: Optional[int],
) -> Tensor:
    r"""
    The model's score for the target of every example of ``inputs`` on
    ``images(example, k)`` (the perturbed images of those examples at points
    ``k``), for ``k`` in ``range(n_points)``: ``(batch, n_points)``. ``target``
    None scores the class predicted on ``inputs``; at most
    ``max_examples_per_batch`` images go through the model at once.
    """
    batch = len(inputs)
    if max_examples_per_batch is not None and max_examples_per_batch < 1:
        raise ValueError(f"max_examples_per_batch must be >= 1, got {max_examples_per_batch}")
    scorer = _scorer(score)
    warn_if_training(forward_func)
    args = _format_additional_forward_args(additional_forward_args)
    with torch.no_grad():
        if target is None:
            predicted = forward_func(inputs, *(args or ()))
            check_output(predicted, 0)  # one score per class
            check_finite("forward_func's outputs", predicted[None], torch.zeros(1, batch),
                         "on inputs", "fraction of pixels")
            target = predicted.argmax(dim=1)
        if isinstance(target, tuple):
            raise ValueError("target must be one class index for all images or one per image")
        check_target(target, batch)
        target = torch.as_tensor(target, device=inputs.device).flatten().expand(batch)
        scores = []
        for rows in row_slices(batch * n_points, max_examples_per_batch):
            index = torch.arange(rows.start, rows.stop, device=inputs.device)
            example, k = index // n_points, index % n_points
            outputs = forward_func(images(example, k),
                                   *(take_forward_args(args, example, batch) or ()))
            if rows.start == 0:
                check_output(outputs, target, len(index))
            scored = scorer(outputs)
            if not isinstance(scored, Tensor) or scored.shape != outputs.shape:
                raise ValueError(
                    "score must map the (N, classes) outputs to scores of the same shape, got "
                    f"{tuple(getattr(scored, 'shape', ()))} for {tuple(outputs.shape)}")
            scores.append(scored.gather(1, target[example][:, None])[:, 0])
    return torch.cat(scores).view(batch, n_points)


def _scorer(score: Score) -> Callable[[Tensor], Tensor]:
    if callable(score):
        return score
    if score == "softmax":
        return lambda out: out.softmax(dim=1)
    if score == "logit":
        return lambda out: out
    raise ValueError(f"score must be 'softmax', 'logit' or a callable, got {score!r}")
