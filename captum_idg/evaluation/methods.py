"""The one registry of the attribution methods that the benchmark, ``explain`` and
the speed benchmark compare, each as ``explain(x, target)``.

A method is named by its key, optionally with its own step count after a colon
(``idg_uniform:256``), so an ablation can run one method at several step counts
next to the others. Settings follow the IDG paper's comparison: the same
``n_steps`` for every path method, baseline 0 in normalised space, Guided IG
with fraction 0.5 and max_dist 1.0 on softmax gradients, AGI with epsilon 0.05
for at most 20 steps against one false class in ``[0, 1]`` pixel space on
softmax outputs.
"""

import contextlib
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from captum.attr import (
    DeepLift,
    GradientShap,
    GuidedBackprop,
    InputXGradient,
    IntegratedGradients,
    KernelShap,
    Lime,
    NoiseTunnel,
    Occlusion,
    Saliency,
)
from torch import Tensor

from captum_idg import (
    AdaptiveIntegratedGradients,
    AdversarialGradientIntegration,
    BlurIntegratedDecisionGradients,
    BlurIntegratedGradients,
    GuidedIntegratedGradients,
    ImportantDirectionGradientIntegration,
    IntegratedDecisionGradients,
    LeftIntegratedGradients,
)
from captum_idg.evaluation.models import ImageModel
from captum_idg.evaluation.propagation import deeplift_ready, lrp
from captum_idg.metrics.randomisation import Explain
from captum_idg.names import METHOD_NAMES

Builder = Callable[[ImageModel, int, Optional[int]], Explain]
INTERNAL_BATCH_SIZE = 25


@dataclass(frozen=True)
class Method:
    """A method's label in tables, what it is in a few words, and how to build it."""

    label: str
    about: str
    build: Builder
    uses_steps: bool = True


def _path_method(cls: Callable, **settings: object) -> Builder:
    """IG, one of its straight-line variants or Blur IG, with fixed ``settings``."""

    def build(model: ImageModel, n_steps: int, internal_batch_size: Optional[int]) -> Explain:
        explainer = cls(model.module)
        return lambda x, t: explainer.attribute(x, target=t, n_steps=n_steps,
                                                internal_batch_size=internal_batch_size,
                                                **settings)

    return build


def _guided_ig(model: ImageModel, n_steps: int, internal_batch_size: Optional[int]) -> Explain:
    gig = GuidedIntegratedGradients(lambda x: model.module(x).softmax(dim=1))
    return lambda x, t: gig.attribute(x, target=t, n_steps=n_steps, fraction=0.5, max_dist=1.0,
                                      internal_batch_size=internal_batch_size)


def _agi(model: ImageModel, n_steps: int, internal_batch_size: Optional[int]) -> Explain:
    agi = AdversarialGradientIntegration(
        lambda p: model.module(model.normalise(p)).softmax(dim=1)
    )
    # attributions in pixel space equal those in normalised space: the
    # gradient scales by 1/std and the step by std
    return lambda x, t: agi.attribute(model.pixels(x), target=t, epsilon=0.05, max_iter=20,
                                      false_classes=1, input_range=(0.0, 1.0),
                                      internal_batch_size=internal_batch_size)


def _gradient(cls: Callable) -> Builder:
    """A one-pass gradient method of Captum (Saliency, Input x Gradient, ...)."""

    def build(model: ImageModel, n_steps: int, internal_batch_size: Optional[int]) -> Explain:
        explainer = cls(model.module)

        def explain(x: Tensor, t: Tensor) -> Tensor:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
                # a copy that requires grad, so Captum neither warns nor flags the caller's
                return explainer.attribute(x.detach().clone().requires_grad_(), target=t)

        return explain

    return build


def _occlusion(model: ImageModel, n_steps: int, internal_batch_size: Optional[int]) -> Explain:
    occlusion = Occlusion(model.module)
    return lambda x, t: occlusion.attribute(x, target=t, sliding_window_shapes=(3, 16, 16),
                                            strides=(3, 8, 8), perturbations_per_eval=64)


def _smoothgrad(cls: Callable, **settings: object) -> Builder:
    """SmoothGrad over ``cls`` (IG or IDG, with fixed ``settings``): the mean of its
    maps on ``SMOOTHGRAD_SAMPLES`` copies with Gaussian noise of 15% of the pixel range."""

    def build(model: ImageModel, n_steps: int, internal_batch_size: Optional[int]) -> Explain:
        tunnel = NoiseTunnel(cls(model.module))
        stdev = 0.15 / (sum(model.std) / 3)  # 15% of [0, 1] pixels, in normalised units
        return lambda x, t: tunnel.attribute(x, nt_type="smoothgrad",
                                             nt_samples=SMOOTHGRAD_SAMPLES,
                                             nt_samples_batch_size=1, stdevs=stdev, target=t,
                                             n_steps=n_steps,
                                             internal_batch_size=internal_batch_size,
                                             **settings)

    return build


@contextlib.contextmanager
def _seeded(x: Tensor) -> Iterator[None]:
    """Random draws seeded with 0 on ``x``'s device, the caller's state kept."""
    with torch.random.fork_rng(devices=[x.device] if x.is_cuda else []):
        torch.manual_seed(0)
        yield


def _gradient_shap(model: ImageModel, n_steps: int, internal_batch_size: Optional[int]
                   ) -> Explain:
    """GradientSHAP with ``n_steps`` samples against the mean-colour image (0
    in normalised space) and a uniform noise image (seeded), taken
    ``internal_batch_size`` samples at a time."""
    shap = GradientShap(model.module)
    chunk = max(1, internal_batch_size or n_steps)

    def explain(x: Tensor, t: Tensor) -> Tensor:
        noise = torch.rand((1, *x.shape[1:]), generator=torch.Generator().manual_seed(0))
        baselines = torch.cat([torch.zeros_like(noise), model.normalise(noise)]).to(x)
        total = torch.zeros_like(x)
        for i in range(len(x)):
            with _seeded(x):
                for start in range(0, n_steps, chunk):
                    samples = min(chunk, n_steps - start)
                    total[i] += samples * shap.attribute(
                        x[i : i + 1], baselines, n_samples=samples, stdevs=0.0,
                        target=t[i : i + 1])[0]
        return total / n_steps

    return explain


def _superpixel_method(cls: Callable, surrogate: Optional[Callable[[], Any]] = None
                       ) -> Builder:
    """KernelSHAP or LIME (with the ``surrogate()`` model) on ``SUPERPIXELS``
    SLIC superpixels of each image (scikit-image), ``PERTURBATIONS`` samples,
    removed superpixels set to 0."""

    def build(model: ImageModel, n_steps: int, internal_batch_size: Optional[int]) -> Explain:
        explainer = cls(model.module, **(dict(interpretable_model=surrogate()) if surrogate
                                         else {}))

        def explain(x: Tensor, t: Tensor) -> Tensor:
            maps = []
            for i in range(len(x)):
                with _seeded(x):
                    maps.append(explainer.attribute(
                        x[i : i + 1], target=t[i : i + 1], baselines=0.0,
                        feature_mask=superpixels(model.pixels(x[i : i + 1])),
                        n_samples=PERTURBATIONS,
                        perturbations_per_eval=internal_batch_size or 1)[0])
            return torch.stack(maps)

        return explain

    return build


def _ridge() -> Any:
    """The LIME package's surrogate, ridge regression (alpha 1): Captum's default
    lasso shrinks every superpixel to 0 where the model's score moves little."""
    from captum._utils.models.linear_model import SkLearnRidge

    return SkLearnRidge(alpha=1.0)


def superpixels(pixels: Tensor) -> Tensor:
    """SLIC superpixels of ``[0, 1]`` images ``(1, 3, H, W)`` as a Captum
    feature mask ``(1, 1, H, W)``; a grid of about as many squares where SLIC
    finds a single segment (noise or flat images)."""
    try:
        from skimage.segmentation import slic
    except ImportError:
        raise ValueError('superpixels need scikit-image: pip install "captum-idg[bench]"'
                         ) from None

    image = pixels[0].permute(1, 2, 0).clamp(0, 1).cpu().numpy()
    segments = torch.from_numpy(slic(image, n_segments=SUPERPIXELS, compactness=10,
                                     start_label=0))
    if segments.max() == 0:
        height, width = segments.shape
        side = max(1, round((height * width / SUPERPIXELS) ** 0.5))
        rows, columns = torch.arange(height) // side, torch.arange(width) // side
        segments = rows[:, None] * (int(columns.max()) + 1) + columns[None, :]
    return segments.to(pixels.device)[None, None]


def _deeplift(model: ImageModel, n_steps: int, internal_batch_size: Optional[int]) -> Explain:
    """DeepLIFT (rescale) from the mean-colour image (0 in normalised space) on
    :func:`deeplift_ready`'s copy,
    made at each call so it follows the model."""

    def explain(x: Tensor, t: Tensor) -> Tensor:
        deeplift = DeepLift(deeplift_ready(model.module, x[:1]))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Setting forward, backward hooks")
            return deeplift.attribute(x.detach().clone().requires_grad_(), target=t)

    return explain


def _lrp(model: ImageModel, n_steps: int, internal_batch_size: Optional[int]) -> Explain:
    return lambda x, t: lrp(model.module, x, t)


SMOOTHGRAD_SAMPLES = 10
SUPERPIXELS = 50
PERTURBATIONS = 200

METHODS: Dict[str, Method] = {
    # IDG as the paper defines it: raw (rescale=False), as the verdicts in docs/ were measured
    "idg": Method("IDG", "IG with each gradient weighted by dF/da, adaptive samples",
                  _path_method(IntegratedDecisionGradients, rescale=False)),
    "idg_uniform": Method("IDG uniform", "IDG on evenly spaced samples",
                          _path_method(IntegratedDecisionGradients, method="riemann_middle",
                                       rescale=False)),
    "idg_reference": Method("IDG reference", "IDG as the authors' code samples it",
                            _path_method(IntegratedDecisionGradients, method="reference")),
    "ig": Method("IG", "Integrated Gradients: gradients averaged from the mean-colour image",
                 _path_method(IntegratedGradients)),
    "left_ig": Method("Left-IG", "IG up to where the logit saturates",
                      _path_method(LeftIntegratedGradients)),
    "guided_ig": Method("Guided IG", "IG on a path that moves low-gradient pixels first",
                        _guided_ig),
    "agi": Method("AGI", "gradients along adversarial steps", _agi, uses_steps=False),
    "adaptive_ig": Method("Adaptive IG", "IG on IDG's adaptive samples",
                          _path_method(AdaptiveIntegratedGradients)),
    "idgi": Method("IDGI", "IG's logit change given to the gradient direction only",
                   _path_method(ImportantDirectionGradientIntegration)),
    "blur_ig": Method("Blur IG", "IG along a path that blurs the image (sigma up to 50 px)",
                      _path_method(BlurIntegratedGradients)),
    "blur_idg": Method("Blur IDG", "Blur IG with IDG's dF/da weights",
                       _path_method(BlurIntegratedDecisionGradients)),
    "saliency": Method("Saliency", "the gradient at the image", _gradient(Saliency),
                       uses_steps=False),
    "input_x_gradient": Method("Input x Gradient", "pixel times its gradient",
                               _gradient(InputXGradient), uses_steps=False),
    "guided_backprop": Method("Guided Backprop", "gradient with negative signals cut at ReLUs",
                              _gradient(GuidedBackprop), uses_steps=False),
    "occlusion": Method("Occlusion", "score drop when a 16 px patch is greyed",
                        _occlusion, uses_steps=False),
    "gradient_shap": Method("GradientSHAP", "expected gradients from mean-colour and noise images",
                            _gradient_shap),
    "kernel_shap": Method("KernelSHAP", f"Shapley values of {SUPERPIXELS} superpixels, "
                          f"{PERTURBATIONS} samples", _superpixel_method(KernelShap),
                          uses_steps=False),
    "lime": Method("LIME", f"ridge surrogate on {SUPERPIXELS} superpixels, {PERTURBATIONS} "
                   "samples", _superpixel_method(Lime, _ridge),
                   uses_steps=False),
    "lrp": Method("LRP", "relevance propagation, zennit EpsilonPlusFlat, BatchNorm merged",
                  _lrp, uses_steps=False),
    "deeplift": Method("DeepLIFT", "rescale rule from the mean-colour image", _deeplift,
                       uses_steps=False),
    "smoothgrad": Method("SmoothGrad IG", f"IG averaged over {SMOOTHGRAD_SAMPLES} noisy copies",
                         _smoothgrad(IntegratedGradients)),
    "idg_smoothgrad": Method("SmoothGrad IDG", f"IDG averaged over {SMOOTHGRAD_SAMPLES} noisy "
                             "copies", _smoothgrad(IntegratedDecisionGradients, rescale=False)),
}
if tuple(METHODS) != METHOD_NAMES:  # the command line checks names against the list
    raise ImportError("captum_idg.evaluation.methods: METHODS and captum_idg.names.METHOD_NAMES "
                      "differ")


def parse_method(spec: str) -> Tuple[str, Optional[int]]:
    """``"name"`` or ``"name:steps"`` as ``(name, steps or None)``, checked."""
    name, _, steps = spec.partition(":")
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}: choose from {', '.join(METHODS)}")
    if not steps:
        return name, None
    if not steps.isdigit() or int(steps) < 2 or not METHODS[name].uses_steps:
        raise ValueError(f"method {spec!r}: steps after ':' must be an integer >= 2, for a "
                         "path method")
    return name, int(steps)


def is_method(spec: str) -> bool:
    """Whether ``spec`` names a method of the registry."""
    try:
        parse_method(spec)
    except ValueError:
        return False
    return True


def check_methods(specs: Sequence[str]) -> List[str]:
    """``specs`` if every one names a method (see :func:`parse_method`), else ValueError."""
    for spec in specs:
        parse_method(spec)
    return list(specs)


def method_label(spec: str) -> str:
    """The label of ``spec`` in tables: ``"IDG uniform (256)"`` for ``idg_uniform:256``."""
    name, steps = parse_method(spec)
    return METHODS[name].label + (f" ({steps})" if steps else "")


def method_about(spec: str) -> str:
    """What the method of ``spec`` is, in a few words."""
    return METHODS[parse_method(spec)[0]].about


def method_steps(spec: str, n_steps: int) -> int:
    """The steps ``spec`` runs with: its own, else ``n_steps``; 0 for a method without steps."""
    name, steps = parse_method(spec)
    return (steps or n_steps) if METHODS[name].uses_steps else 0


def make_method(spec: str, model: ImageModel, n_steps: int = 50,
                internal_batch_size: Optional[int] = INTERNAL_BATCH_SIZE) -> Explain:
    """``explain(x, target)`` for the method ``spec`` on ``model``; ``n_steps``
    unless ``spec`` gives its own."""
    name, steps = parse_method(spec)
    return METHODS[name].build(model, steps or n_steps, internal_batch_size)
