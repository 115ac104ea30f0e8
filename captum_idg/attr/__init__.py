"""Attribution methods, each a Captum ``GradientAttribution``."""

from captum_idg.attr._schedule import adaptive_schedule, uniform_schedule
from captum_idg.attr.adaptive_integrated_gradients import AdaptiveIntegratedGradients
from captum_idg.attr.integrated_decision_gradients import IntegratedDecisionGradients

__all__ = [
    "AdaptiveIntegratedGradients",
    "IntegratedDecisionGradients",
    "adaptive_schedule",
    "uniform_schedule",
]
