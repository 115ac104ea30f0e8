"""captum-idg: Integrated Decision Gradients and its companions for Captum."""

from captum_idg.attr import (
    AdaptiveIntegratedGradients,
    AdversarialGradientIntegration,
    GuidedIntegratedGradients,
    ImportantDirectionGradientIntegration,
    IntegratedDecisionGradients,
    LayerIntegratedDecisionGradients,
    LeftIntegratedGradients,
    adaptive_schedule,
    saturation_point,
    uniform_schedule,
)

__version__ = "0.1.0"

__all__ = [
    "AdaptiveIntegratedGradients",
    "AdversarialGradientIntegration",
    "GuidedIntegratedGradients",
    "ImportantDirectionGradientIntegration",
    "IntegratedDecisionGradients",
    "LayerIntegratedDecisionGradients",
    "LeftIntegratedGradients",
    "adaptive_schedule",
    "saturation_point",
    "uniform_schedule",
]
