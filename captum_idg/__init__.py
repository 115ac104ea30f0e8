"""captum-idg: Integrated Decision Gradients and its companions for Captum."""

from captum_idg.attr import (
    AdaptiveIntegratedGradients,
    IntegratedDecisionGradients,
    adaptive_schedule,
    uniform_schedule,
)

__version__ = "0.1.0"

__all__ = [
    "AdaptiveIntegratedGradients",
    "IntegratedDecisionGradients",
    "adaptive_schedule",
    "uniform_schedule",
]
