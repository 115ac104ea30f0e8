"""Perturbation metrics and sanity checks in the style of ``captum.metrics``."""

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
from captum_idg.metrics.quantus_explain import quantus_explain_func
from captum_idg.metrics.randomisation import model_randomisation, spearman
from captum_idg.metrics.road import noisy_linear_imputation, road, road_curves

__all__ = [
    "curve_auc",
    "deletion",
    "deletion_curve",
    "insertion",
    "insertion_curve",
    "model_randomisation",
    "noisy_linear_imputation",
    "pixel_order",
    "quantus_explain_func",
    "rise_blur",
    "rise_kernel",
    "road",
    "road_curves",
    "spearman",
]
