"""Every method on a CUDA device gives what it gives on the CPU (skipped without CUDA)."""

import copy

import pytest
import torch
from models import SaturatingNet

from captum_idg import (
    AdaptiveIntegratedGradients,
    AdversarialGradientIntegration,
    GuidedIntegratedGradients,
    ImportantDirectionGradientIntegration,
    IntegratedDecisionGradients,
    LeftIntegratedGradients,
)
from captum_idg.metrics import deletion, insertion

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CALLS = {
    "IDG adaptive": (IntegratedDecisionGradients, dict(n_steps=24)),
    "IDG uniform": (IntegratedDecisionGradients, dict(n_steps=24, sampling="uniform")),
    "IDG rescaled": (IntegratedDecisionGradients, dict(n_steps=24, rescale=True)),
    "Adaptive IG": (AdaptiveIntegratedGradients, dict(n_steps=24)),
    "Left-IG": (LeftIntegratedGradients, dict(n_steps=24)),
    "IDGI": (ImportantDirectionGradientIntegration, dict(n_steps=24)),
    "Guided IG": (GuidedIntegratedGradients, dict(n_steps=24)),
    "AGI": (AdversarialGradientIntegration, dict(max_iter=8, epsilon=0.05)),
}


def case(device: str):
    model = SaturatingNet(seed=3, gain=8.0).to(device)
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    with torch.no_grad():
        target = model(x.to(device)).argmax(dim=1)
    return model, x.to(device), target


@pytest.mark.parametrize("name", CALLS)
@pytest.mark.parametrize("internal_batch_size", [None, 10])
def test_cuda_matches_cpu(name, internal_batch_size):
    method, kwargs = CALLS[name]
    model, x, target = case("cpu")
    expected = method(model).attribute(x, target=target, internal_batch_size=internal_batch_size,
                                       **kwargs)
    model, x, target = case("cuda")
    got = method(model).attribute(x, target=target, internal_batch_size=internal_batch_size,
                                  **kwargs)
    assert got.device == x.device and got.dtype == x.dtype
    torch.testing.assert_close(got.cpu(), expected, rtol=1e-6, atol=1e-8)


def test_cuda_convergence_delta_and_metrics():
    model, x, target = case("cuda")
    attributions, delta = AdaptiveIntegratedGradients(model).attribute(
        x, target=target, n_steps=64, return_convergence_delta=True)
    assert delta.device == x.device
    with torch.no_grad():
        change = model(x).gather(1, target[:, None]) - model(torch.zeros_like(x)).gather(
            1, target[:, None])
    torch.testing.assert_close(attributions.sum(dim=1), change[:, 0] + delta)
    images = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0),
                        dtype=torch.float64)
    torch.manual_seed(0)
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 4)).double()
    scores = images.sum(dim=1)
    on_cuda = copy.deepcopy(linear).cuda()
    for metric in (insertion, deletion):
        expected = metric(linear, images, scores, target=1)
        got = metric(on_cuda, images.cuda(), scores.cuda(), target=1)
        assert got.device.type == "cuda"
        torch.testing.assert_close(got.cpu(), expected)
