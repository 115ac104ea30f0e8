"""Attribution methods, each a Captum ``GradientAttribution``, and their schedules."""

from captum_idg.attr import _regions  # noqa: F401  (registers method="regions")
from captum_idg.attr._path_integral import RefinementReport
from captum_idg.attr.adaptive_integrated_gradients import AdaptiveIntegratedGradients
from captum_idg.attr.adversarial_gradient_integration import AdversarialGradientIntegration
from captum_idg.attr.blur_integrated_gradients import (
    BlurIntegratedDecisionGradients,
    BlurIntegratedGradients,
)
from captum_idg.attr.guided_integrated_gradients import GuidedIntegratedGradients
from captum_idg.attr.important_direction_gradient_integration import (
    ImportantDirectionGradientIntegration,
)
from captum_idg.attr.integrated_decision_gradients import IntegratedDecisionGradients
from captum_idg.attr.layer.layer_integrated_decision_gradients import (
    LayerIntegratedDecisionGradients,
)
from captum_idg.attr.left_integrated_gradients import LeftIntegratedGradients
from captum_idg.attr.schedules import (
    adaptive_schedule,
    default_probe_steps,
    reference_schedule,
    riemann_schedule,
    saturation_point,
)

__all__ = [
    "AdaptiveIntegratedGradients",
    "AdversarialGradientIntegration",
    "BlurIntegratedDecisionGradients",
    "BlurIntegratedGradients",
    "GuidedIntegratedGradients",
    "ImportantDirectionGradientIntegration",
    "IntegratedDecisionGradients",
    "LayerIntegratedDecisionGradients",
    "LeftIntegratedGradients",
    "RefinementReport",
    "adaptive_schedule",
    "default_probe_steps",
    "reference_schedule",
    "riemann_schedule",
    "saturation_point",
]
