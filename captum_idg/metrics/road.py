"""ROAD: RemOve And Debias (Rong et al., ICML 2022).

Insertion and deletion fill removed pixels with blur or a constant, images the
model never saw in training, so a score can drop because the image left the
training distribution rather than because its evidence went. ROAD fills them by
*noisy linear imputation* instead: every removed pixel is the weighted mean of
its eight neighbours (1/6 for edge, 1/12 for corner neighbours; known pixels
fixed), solved as one sparse linear system per image, plus Gaussian noise of
standard deviation ``noise``, so the filled region carries no shape of the
mask. The imputation is the authors' (``road_evaluation``), as Quantus 0.6
ships it.

MoRF removes the most relevant pixels first, LeRF the least relevant; pixels
are ranked as insertion and deletion rank them (``|sum over channels|``). A
faithful attribution makes the score fall fast under MoRF and slowly under
LeRF. :func:`road` summarises both as the mean over fractions of the LeRF
score minus the MoRF score: higher is better.
"""

from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import torch
from captum._utils.typing import TargetType
from scipy.sparse import csc_matrix
from scipy.sparse.linalg import spsolve
from torch import Tensor

from captum_idg._validation import check_finite, check_real
from captum_idg.metrics.insertion_deletion import (
    Score,
    check_images,
    pixel_order,
    score_points,
    summary_of,
)

ROAD_FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9)
# (row offset, column offset, weight) of a pixel's neighbours in the imputation
NEIGHBOURS = ((1, 1, 1 / 12), (0, 1, 1 / 6), (-1, 1, 1 / 12), (1, -1, 1 / 12),
              (0, -1, 1 / 6), (-1, -1, 1 / 12), (1, 0, 1 / 6), (-1, 0, 1 / 6))


def noisy_linear_imputation(
    image: Tensor,
    removed: Tensor,
    noise: float = 0.01,
    generator: Optional[torch.Generator] = None,
) -> Tensor:
    r"""
    ``image`` ``(channels, height, width)`` with the pixels where ``removed``
    (``(height, width)``, bool) is True replaced by the weighted mean of their
    neighbours, solved jointly (float64), plus ``noise`` times standard normal
    noise drawn from ``generator``. A new tensor; ``image`` is not changed.
    """
    channels, height, width = image.shape
    missing = np.flatnonzero(removed.reshape(-1).cpu().numpy())
    if len(missing) == 0:
        return image.clone()
    if len(missing) == height * width:
        raise ValueError("noisy linear imputation needs at least one pixel kept")
    known = image.detach().reshape(channels, -1).double().cpu().numpy()
    variable = np.full(height * width, -1)
    variable[missing] = np.arange(len(missing))
    row, column = np.divmod(missing, width)
    diagonal = np.ones(len(missing))
    b = np.zeros((len(missing), channels))
    equations, unknowns, weights = [], [], []
    for dr, dc, weight in NEIGHBOURS:
        r, c = row + dr, column + dc
        inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        diagonal[~inside] -= weight
        equation, neighbour = np.flatnonzero(inside), r[inside] * width + c[inside]
        free = variable[neighbour] >= 0
        equations.append(equation[free])
        unknowns.append(variable[neighbour[free]])
        weights.append(np.full(int(free.sum()), weight))
        b[equation[~free]] -= weight * known[:, neighbour[~free]].T
    everything = np.arange(len(missing))
    system = csc_matrix((np.concatenate(weights + [-diagonal]),
                         (np.concatenate(equations + [everything]),
                          np.concatenate(unknowns + [everything]))),
                        shape=(len(missing), len(missing)))
    solution = torch.from_numpy(spsolve(system, b).reshape(len(missing), channels).T)
    solution += noise * torch.randn(solution.shape, generator=generator, dtype=torch.float64)
    imputed = image.detach().clone().reshape(channels, -1)
    imputed[:, torch.from_numpy(missing).to(image.device)] = solution.to(image)
    return imputed.reshape(image.shape)


def road_curves(
    forward_func: Callable[..., Tensor],
    inputs: Tensor,
    attributions: Tensor,
    target: TargetType = None,
    additional_forward_args: Optional[object] = None,
    fractions: Sequence[float] = ROAD_FRACTIONS,
    noise: float = 0.01,
    score: Score = "softmax",
    max_examples_per_batch: Optional[int] = None,
    seed: int = 0,
) -> Tuple[Tensor, Tensor]:
    r"""
    ROAD's MoRF and LeRF curves: the score for the target after the most
    (MoRF) or least (LeRF) relevant ``int(fraction * height * width)`` pixels
    are imputed, for every fraction.

    ``forward_func``, ``inputs``, ``attributions``, ``target``,
    ``additional_forward_args``, ``score`` and ``max_examples_per_batch`` are
    as in :func:`~captum_idg.metrics.insertion_curve`.

    Args:
        fractions (sequence of float, optional): Fractions of the pixels
                    removed, each in ``(0, 1)``. Default: 0.1, 0.3, 0.5, 0.7,
                    0.9
        noise (float, optional): Standard deviation of the noise added to
                    imputed pixels, in the units of ``inputs``. Default: 0.01
        seed (int, optional): Seed of the noise, so a score is reproducible.
                    Default: 0

    Returns:
        *tuple* of 2 Tensors ``(batch, len(fractions))``: the MoRF and the LeRF
        scores.
    """
    check_images(inputs, attributions)
    check_real("noise", noise, low=0.0)
    fractions = tuple(fractions)
    if not fractions or not all(isinstance(f, (int, float)) and 0 < f < 1 for f in fractions):
        raise ValueError(f"fractions must be numbers in (0, 1), got {fractions!r}")
    batch, _, height, width = inputs.shape
    order = pixel_order(attributions.to(inputs.device)).cpu()
    generator = torch.Generator().manual_seed(seed)
    images = []  # (batch, 2 * fractions): MoRF then LeRF of each example
    for i in range(batch):
        for most_first in (True, False):
            for fraction in fractions:
                k = int(fraction * height * width)
                chosen = order[i, :k] if most_first else order[i, height * width - k:]
                removed = torch.zeros(height * width, dtype=torch.bool)
                removed[chosen] = True
                images.append(noisy_linear_imputation(inputs[i], removed.view(height, width),
                                                      noise, generator))
    stacked = torch.stack(images).view(batch, 2 * len(fractions), *inputs.shape[1:])
    scores = score_points(forward_func, inputs, lambda example, k: stacked[example, k],
                          2 * len(fractions), target, additional_forward_args, score,
                          max_examples_per_batch)
    check_finite("forward_func's scores", scores.T,
                 torch.tensor(fractions * 2, dtype=torch.float64)[:, None].expand(-1, batch),
                 "on imputed images", "fraction of pixels removed")
    return scores[:, : len(fractions)], scores[:, len(fractions):]


def road_score(morf: Tensor, lerf: Tensor) -> Tensor:
    r"""ROAD's summary per example: the mean over fractions of the LeRF score
    minus the MoRF score (``(batch, fractions)`` each). Higher is better."""
    return (lerf - morf).mean(dim=-1)


road = summary_of(road_curves, lambda curves: road_score(*curves), "road",
                  r"""ROAD per example: the mean over fractions of the LeRF score minus the
    MoRF score of :func:`road_curves` (same arguments). Higher is better.""")
