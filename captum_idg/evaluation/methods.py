"""The attribution methods a benchmark compares, each as ``explain(x, target)``.

Settings follow the IDG paper's comparison: the same ``n_steps`` for every
path method, baseline 0 in normalised space, Guided IG with fraction 0.5 and
max_dist 1.0 on softmax gradients, AGI with epsilon 0.05 for at most 20 steps
against one false class in ``[0, 1]`` pixel space on softmax outputs.
"""

import warnings
from typing import Callable, Dict, Tuple

from captum.attr import (
    GuidedBackprop,
    InputXGradient,
    IntegratedGradients,
    Occlusion,
    Saliency,
)
from torch import Tensor

from captum_idg import (
    AdaptiveIntegratedGradients,
    AdversarialGradientIntegration,
    GuidedIntegratedGradients,
    ImportantDirectionGradientIntegration,
    IntegratedDecisionGradients,
    LeftIntegratedGradients,
)
from captum_idg.evaluation.models import ImageModel

Explain = Callable[[Tensor, Tensor], Tensor]
PAPER_METHODS = ("idg", "ig", "left_ig", "guided_ig", "agi")
DEFAULT_METHODS = PAPER_METHODS + (
    "adaptive_ig", "idgi", "saliency", "input_x_gradient", "guided_backprop", "occlusion",
)
INTERNAL_BATCH_SIZE = 25


def _straight_path(method: Callable) -> Callable[[ImageModel, int], Explain]:
    """The factory of a straight-line path method (IG and its variants)."""

    def factory(model: ImageModel, n_steps: int) -> Explain:
        explainer = method(model.module)
        return lambda x, t: explainer.attribute(x, target=t, n_steps=n_steps,
                                                internal_batch_size=INTERNAL_BATCH_SIZE)

    return factory


def _guided_ig(model: ImageModel, n_steps: int) -> Explain:
    gig = GuidedIntegratedGradients(lambda x: model.module(x).softmax(dim=1))
    return lambda x, t: gig.attribute(x, target=t, n_steps=n_steps, fraction=0.5, max_dist=1.0)


def _agi(model: ImageModel, n_steps: int) -> Explain:
    agi = AdversarialGradientIntegration(
        lambda p: model.module(model.normalise(p)).softmax(dim=1)
    )
    # attributions in pixel space equal those in normalised space: the
    # gradient scales by 1/std and the step by std
    return lambda x, t: agi.attribute(model.pixels(x), target=t, epsilon=0.05, max_iter=20,
                                      false_classes=1, input_range=(0.0, 1.0))


def _saliency(model: ImageModel, n_steps: int) -> Explain:
    saliency = Saliency(model.module)
    return lambda x, t: saliency.attribute(_leaf(x), target=t)


def _input_x_gradient(model: ImageModel, n_steps: int) -> Explain:
    input_x_gradient = InputXGradient(model.module)
    return lambda x, t: input_x_gradient.attribute(_leaf(x), target=t)


def _guided_backprop(model: ImageModel, n_steps: int) -> Explain:
    guided_backprop = GuidedBackprop(model.module)

    def explain(x: Tensor, t: Tensor) -> Tensor:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
            return guided_backprop.attribute(_leaf(x), target=t)

    return explain


def _leaf(x: Tensor) -> Tensor:
    """A copy that requires grad, so Captum neither warns nor flags the caller's."""
    return x.detach().clone().requires_grad_()


def _occlusion(model: ImageModel, n_steps: int) -> Explain:
    occlusion = Occlusion(model.module)
    return lambda x, t: occlusion.attribute(x, target=t, sliding_window_shapes=(3, 16, 16),
                                            strides=(3, 8, 8), perturbations_per_eval=64)


METHODS: Dict[str, Tuple[str, Callable[[ImageModel, int], Explain]]] = {
    "idg": ("IDG", _straight_path(IntegratedDecisionGradients)),
    "ig": ("IG", _straight_path(IntegratedGradients)),
    "left_ig": ("Left-IG", _straight_path(LeftIntegratedGradients)),
    "guided_ig": ("Guided IG", _guided_ig),
    "agi": ("AGI", _agi),
    "adaptive_ig": ("Adaptive IG", _straight_path(AdaptiveIntegratedGradients)),
    "idgi": ("IDGI", _straight_path(ImportantDirectionGradientIntegration)),
    "saliency": ("Saliency", _saliency),
    "input_x_gradient": ("Input x Gradient", _input_x_gradient),
    "guided_backprop": ("Guided Backprop", _guided_backprop),
    "occlusion": ("Occlusion", _occlusion),
}


def make_method(name: str, model: ImageModel, n_steps: int = 50) -> Explain:
    """``explain(x, target)`` for the method called ``name`` on ``model``."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}: choose from {', '.join(METHODS)}")
    return METHODS[name][1](model, n_steps)
