"""Perturbation metrics in the style of ``captum.metrics``."""

from captum_idg.metrics.insertion_deletion import (
    curve_auc,
    deletion,
    deletion_curve,
    insertion,
    insertion_curve,
    pixel_order,
    rise_blur,
    rise_kernel,
)

__all__ = [
    "curve_auc",
    "deletion",
    "deletion_curve",
    "insertion",
    "insertion_curve",
    "pixel_order",
    "rise_blur",
    "rise_kernel",
]
