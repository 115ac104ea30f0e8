"""Blur IG against PAIR saliency's BlurIG, Blur IDG against the slow obvious loop."""

import numpy as np
import pytest
import torch
from captum.attr import NoiseTunnel
from torch import nn

from captum_idg import BlurIntegratedDecisionGradients, BlurIntegratedGradients
from captum_idg.attr.blur_integrated_gradients import gaussian_blur
from tests.oracles import oracle

saliency = oracle("saliency.core")


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.Softplus(), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten(), nn.Linear(24, 5)).double().eval()


def _pair(model: nn.Module, image: torch.Tensor, target: int, **settings) -> np.ndarray:
    """PAIR's BlurIG on one (C, H, W) image, as its call_model_function wants it (HWC)."""
    def call(batch, call_model_args=None, expected_keys=None):
        x = torch.tensor(batch).permute(0, 3, 1, 2).requires_grad_()
        (grad,) = torch.autograd.grad(model(x)[:, target].sum(), x)
        return {saliency.INPUT_OUTPUT_GRADIENTS: grad.permute(0, 2, 3, 1).numpy()}

    mask = saliency.BlurIG().GetMask(image.permute(1, 2, 0).numpy(), call, batch_size=1,
                                     **settings)
    return mask.transpose(2, 0, 1)


def test_the_blur_equals_scipys():
    from scipy import ndimage

    x = torch.rand(2, 3, 17, 21, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for sigma in (0.3, 2.5, 40.0):
        expected = ndimage.gaussian_filter(x.numpy(), sigma=[0, 0, sigma, sigma], mode="constant")
        np.testing.assert_allclose(gaussian_blur(x, sigma).numpy(), expected, atol=1e-14)


@pytest.mark.parametrize("sqrt", [False, True])
def test_equals_pair_on_a_random_conv_net_batched_in_chunks(sqrt):
    net = _net()
    x = torch.rand(3, 3, 20, 24, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    settings = dict(max_sigma=10.0, grad_step=0.02, sqrt=sqrt)
    ours = BlurIntegratedGradients(net).attribute(x, target=[1, 3, 0], n_steps=20,
                                                  internal_batch_size=7, **settings)
    for i, target in enumerate([1, 3, 0]):
        expected = _pair(net, x[i], target, steps=20, **settings)
        np.testing.assert_allclose(ours[i].numpy(), expected,
                                   atol=1e-5 * np.abs(expected).max(), rtol=0)


def _slow_loop(net, x, target, n_steps, max_sigma, grad_step, decision):
    """Blur IG / IDG one step at a time, with autograd per step: the global
    attributions and the local ones (the step-weighted mean gradient)."""
    sigmas = [k * max_sigma / n_steps for k in range(n_steps + 1)]
    total, local, weight = torch.zeros_like(x), torch.zeros_like(x), torch.zeros_like(x)
    for k in range(n_steps):
        z = gaussian_blur(x, sigmas[k]).detach().clone().requires_grad_()
        (g,) = torch.autograd.grad(net(z)[:, target].sum(), z)
        dz = -(sigmas[k + 1] - sigmas[k]) * (gaussian_blur(x, sigmas[k] + grad_step)
                                             - z.detach()) / grad_step
        rate = (g * dz).flatten(1).sum(1).view(-1, 1, 1, 1) * n_steps if decision else 1.0
        total += g * dz * rate
        local += g * (dz * rate).abs()
        weight += (dz * rate).abs()
    return total, local / weight


@pytest.mark.parametrize("decision", [False, True])
def test_global_and_local_equal_the_slow_loop(decision):
    net = _net()
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    cls = BlurIntegratedDecisionGradients if decision else BlurIntegratedGradients
    settings = dict(target=2, n_steps=12, max_sigma=6.0, grad_step=0.01)
    total, local = _slow_loop(net, x, 2, 12, 6.0, 0.01, decision)
    torch.testing.assert_close(cls(net).attribute(x, **settings), total)
    torch.testing.assert_close(cls(net, multiply_by_inputs=False).attribute(x, **settings), local)


def test_noise_tunnel_and_float32():
    net = _net().float()
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    blur = BlurIntegratedGradients(net)
    plain = blur.attribute(x, target=1, n_steps=6, max_sigma=4.0)
    tunnel = NoiseTunnel(blur)
    same = tunnel.attribute(x, nt_type="smoothgrad", nt_samples=3, stdevs=0.0, target=1,
                            n_steps=6, max_sigma=4.0)
    torch.testing.assert_close(same, plain)
    noisy = tunnel.attribute(x, nt_type="smoothgrad", nt_samples=3, stdevs=0.1, target=1,
                             n_steps=6, max_sigma=4.0)
    assert noisy.dtype == torch.float32 and torch.isfinite(noisy).all()
    assert not torch.allclose(noisy, plain)


def test_errors_name_the_argument_and_the_models_own_exception_keeps_its_type():
    net = _net()
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    blur = BlurIntegratedGradients(net)
    with pytest.raises(ValueError, match="images"):
        blur.attribute(torch.rand(2, 5, dtype=torch.float64), target=0)
    with pytest.raises(ValueError, match="max_sigma"):
        blur.attribute(x, target=0, max_sigma=0.0)
    with pytest.raises(ValueError, match="n_steps"):
        blur.attribute(x, target=0, n_steps=1)

    def broken(images):
        raise torch.OutOfMemoryError("the model ran out of memory")

    with pytest.raises(torch.OutOfMemoryError):
        BlurIntegratedGradients(broken).attribute(x, target=0, n_steps=4)


@pytest.mark.slow
def test_equals_pair_on_a_photo_with_efficientnet_lite0():
    from captum_idg.evaluation.images import demo_images, prepare
    from captum_idg.evaluation.models import load_model

    model = load_model("efficientnet_lite0")
    net = model.module.to(memory_format=torch.contiguous_format).double()
    photo = next(im for im in demo_images() if im.name == "coffee")
    x = model.normalise(prepare(photo.pixels, model.size)[None].double())
    target = int(net(x).argmax())
    settings = dict(max_sigma=50.0, grad_step=0.01)
    ours = BlurIntegratedGradients(net).attribute(x, target=target, n_steps=8, **settings)
    expected = _pair(net, x[0], target, steps=8, **settings)
    np.testing.assert_allclose(ours[0].numpy(), expected, atol=1e-5 * np.abs(expected).max(),
                               rtol=0)
