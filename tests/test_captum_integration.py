"""Our classes inside Captum's own machinery: NoiseTunnel, metrics, visualization."""

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients, NoiseTunnel, visualization
from captum.metrics import infidelity, sensitivity_max
from matplotlib.backends.backend_agg import FigureCanvasAgg
from models import LinearNet, SaturatingNet

from captum_idg import AdaptiveIntegratedGradients, IntegratedDecisionGradients

METHODS = [IntegratedDecisionGradients, AdaptiveIntegratedGradients]
NT_TYPES = ["smoothgrad", "smoothgrad_sq", "vargrad"]


def small_convnet() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.Tanh(), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(4, 5),
    )


def case(batch: int = 3):
    model = SaturatingNet(seed=4)
    x = torch.randn(batch, 6, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    return model, x, model(x).argmax(dim=1)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("nt_type", NT_TYPES)
def test_noise_tunnel_with_no_noise_equals_plain_method(method, nt_type):
    model, x, target = case()
    explainer = method(model)
    plain, plain_delta = explainer.attribute(
        x, target=target, n_steps=12, return_convergence_delta=True
    )
    nt = NoiseTunnel(explainer)
    assert nt.multiplies_by_inputs and nt.has_convergence_delta()
    attr, delta = nt.attribute(
        x, nt_type=nt_type, nt_samples=4, stdevs=1e-12, target=target, n_steps=12,
        return_convergence_delta=True,
    )
    assert delta.shape == (3 * 4,)
    torch.testing.assert_close(delta, plain_delta.repeat_interleave(4))
    expected = {"smoothgrad": plain, "smoothgrad_sq": plain**2,
                "vargrad": torch.zeros_like(plain)}[nt_type]
    torch.testing.assert_close(attr, expected)
    no_delta = nt.attribute(x, nt_type=nt_type, nt_samples=4, stdevs=1e-12, target=target,
                            n_steps=12)
    torch.testing.assert_close(no_delta, expected)


def test_noise_tunnel_with_noise_averages_noisy_attributions():
    model, x, target = case(batch=2)
    explainer = IntegratedDecisionGradients(model)
    torch.manual_seed(0)
    smooth = NoiseTunnel(explainer).attribute(
        x, nt_samples=5, stdevs=0.1, target=target, n_steps=12,
        baselines=torch.zeros(1, 6, dtype=torch.float64),
    )
    torch.manual_seed(0)
    noisy = x.repeat_interleave(5, dim=0) + torch.normal(0, torch.tensor(0.1).repeat(10, 6))
    per_sample = explainer.attribute(noisy, target=target.repeat_interleave(5), n_steps=12)
    torch.testing.assert_close(smooth, per_sample.view(2, 5, 6).mean(dim=1))


@pytest.mark.parametrize("method", METHODS)
def test_called_under_no_grad(method):
    model, x, target = case()
    expected = method(model).attribute(x, target=target, n_steps=8)
    with torch.no_grad():
        got = method(model).attribute(x, target=target, n_steps=8)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("method", METHODS)
def test_sensitivity_max(method):
    model, x, target = case()
    explainer = method(model)
    sens = sensitivity_max(explainer.attribute, x, target=target, n_steps=8,
                           n_perturb_samples=3, perturb_radius=1e-3)
    assert sens.shape == (3,) and torch.isfinite(sens).all() and (sens > 0).all()
    # a radius of zero leaves the explanation unchanged
    still = sensitivity_max(explainer.attribute, x, target=target, n_steps=8,
                            n_perturb_samples=2, perturb_radius=1e-300)
    assert torch.all(still < 1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_infidelity_like_captum_ig_on_a_linear_model(method):
    # on a linear model IDG(rescale=True) and adaptive IG both equal IG exactly
    model = LinearNet(seed=2)
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    kwargs = {"rescale": True} if method is IntegratedDecisionGradients else {}
    ours = method(model).attribute(x, target=1, n_steps=6, **kwargs)
    theirs = IntegratedGradients(model).attribute(x, target=1)

    def perturb(inputs):
        noise = torch.randn_like(inputs) * 0.1
        return noise, inputs - noise

    scores = []
    for attr in (ours, theirs):
        torch.manual_seed(0)
        scores.append(infidelity(model, perturb, x, attr, target=1, n_perturb_samples=8))
    assert scores[0].shape == (4,) and torch.isfinite(scores[0]).all()
    torch.testing.assert_close(scores[0], scores[1])


def test_visualization_of_an_image_attribution():
    model = small_convnet()
    image = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    attr = IntegratedDecisionGradients(model).attribute(image, target=1, n_steps=8)
    assert attr.abs().sum() > 0
    figure, axis = visualization.visualize_image_attr(
        attr[0].permute(1, 2, 0).numpy(), image[0].permute(1, 2, 0).numpy(),
        method="heat_map", sign="absolute_value", use_pyplot=False,
    )
    assert figure is not None and axis is not None
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())
    assert pixels.std() > 0


def test_convnet_batch_matches_single_images():
    model = small_convnet()
    images = torch.rand(3, 3, 8, 8)
    explainer = IntegratedDecisionGradients(model)
    batch = explainer.attribute(images, target=[0, 3, 4], n_steps=10)
    for b, t in enumerate([0, 3, 4]):
        single = explainer.attribute(images[b : b + 1], target=t, n_steps=10)
        torch.testing.assert_close(batch[b : b + 1], single, rtol=1e-4, atol=1e-6)
