"""The one Gaussian kernel: scipy.ndimage's taps, which Blur IG's path and RISE's blur share."""

from typing import Optional

import torch
from torch import Tensor


def gaussian_taps(sigma: float, device: Optional[torch.device] = None) -> Tensor:
    r"""The normalised 1-D Gaussian taps of ``scipy.ndimage.gaussian_filter``
    (truncate 4): offsets ``-r .. r``, ``r = int(4 sigma + 0.5)``, float64."""
    radius = int(4 * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    taps = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return taps / taps.sum()
