"""Guided IG against PAIR's numpy saliency.core.GuidedIG, the independent oracle.

PAIR calls ``np.quantile(..., interpolation='lower')``, a keyword numpy 2.4
removed; the oracle runs unchanged with its module's ``np`` swapped for a
namespace whose ``quantile`` maps ``interpolation`` to ``method``."""

import types

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients, NoiseTunnel
from models import SaturatingNet, TwoInputNet

from captum_idg import GuidedIntegratedGradients
from tests.oracles import oracle

pair = oracle("saliency.core.guided_ig")


@pytest.fixture(autouse=True)
def numpy_shim_for_pair(monkeypatch):
    shim = types.SimpleNamespace(**{k: getattr(np, k) for k in dir(np) if not k.startswith("__")})

    def quantile(a, q, interpolation="linear", **kwargs):
        return np.quantile(a, q, method=interpolation, **kwargs)

    shim.quantile = quantile
    monkeypatch.setattr(pair, "np", shim)


def pair_guided_ig(model, x, baseline, target, **kwargs):
    def call_model(batch, call_model_args=None, expected_keys=None):
        points = torch.tensor(batch, dtype=torch.float64, requires_grad=True)
        (grad,) = torch.autograd.grad(model(points)[:, target].sum(), points)
        return {pair.INPUT_OUTPUT_GRADIENTS: grad.numpy()}

    return torch.from_numpy(
        pair.GuidedIG().GetMask(x.numpy(), call_model, x_baseline=baseline.numpy(), **kwargs)
    )


class ConvNet(torch.nn.Module):
    def __init__(self, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = torch.nn.Conv2d(3, 5, 3).double()
        self.linear = torch.nn.Linear(5 * 4 * 4, 4).double()

    def forward(self, x):
        return self.linear(torch.tanh(self.conv(x)).flatten(1))


CASES = [
    ("mlp", lambda seed: (SaturatingNet(seed=seed, gain=3.0), (6,))),
    ("conv", lambda seed: (ConvNet(seed), (3, 6, 6))),
]
SETTINGS = [dict(x_steps=20, fraction=0.25, max_dist=0.02),
            dict(x_steps=15, fraction=0.5, max_dist=1.0),
            dict(x_steps=10, fraction=0.1, max_dist=0.1)]


@pytest.mark.parametrize("name, make", CASES)
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("setting", SETTINGS)
def test_matches_pair_saliency_in_float64(name, make, seed, setting):
    model, shape = make(seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, *shape, generator=g, dtype=torch.float64)
    baseline = torch.randn(3, *shape, generator=g, dtype=torch.float64) * 0.1
    target = model(x).argmax(dim=1)
    ours = GuidedIntegratedGradients(model).attribute(
        x, baseline, target=target, n_steps=setting["x_steps"],
        fraction=setting["fraction"], max_dist=setting["max_dist"],
    )
    for b in range(3):
        theirs = pair_guided_ig(model, x[b], baseline[b], int(target[b]), **setting)
        assert (ours[b] - theirs).abs().max() < 1e-5, (b, (ours[b] - theirs).abs().max())
        assert theirs.abs().sum() > 0


def test_batch_equals_examples_alone_and_chunks():
    model = SaturatingNet(seed=5, gain=3.0)
    x = torch.randn(5, 6, dtype=torch.float64)
    gig = GuidedIntegratedGradients(model)
    batched = gig.attribute(x, target=[0, 1, 2, 0, 1], n_steps=12, max_dist=0.1)
    chunked = gig.attribute(x, target=[0, 1, 2, 0, 1], n_steps=12, max_dist=0.1,
                            internal_batch_size=2)
    torch.testing.assert_close(chunked, batched)
    for b, t in enumerate([0, 1, 2, 0, 1]):
        single = gig.attribute(x[b : b + 1], target=t, n_steps=12, max_dist=0.1)
        torch.testing.assert_close(batched[b : b + 1], single)


def test_max_dist_zero_is_straight_line_ig():
    model = SaturatingNet(seed=2, gain=3.0)
    x = torch.randn(4, 6, dtype=torch.float64)
    base = torch.randn(1, 6, dtype=torch.float64)
    ours = GuidedIntegratedGradients(model).attribute(x, base, target=1, n_steps=16, max_dist=0.0)
    ig = IntegratedGradients(model).attribute(x, base, target=1, n_steps=16, method="riemann_left")
    torch.testing.assert_close(ours, ig)


def test_tuple_inputs_forward_args_and_noise_tunnel():
    model = TwoInputNet(seed=1)
    x1 = torch.randn(2, 4, dtype=torch.float64)
    x2 = torch.randn(2, 2, 3, dtype=torch.float64)
    gig = GuidedIntegratedGradients(model)
    a1, a2 = gig.attribute((x1, x2), target=[1, 2], additional_forward_args=0.5, n_steps=30,
                           max_dist=1.0, fraction=0.5)
    # a tuple is one feature vector per example: same as the concatenated model
    flat = GuidedIntegratedGradients(
        lambda z: model(z[:, :4], z[:, 4:].view(-1, 2, 3), 0.5)
    ).attribute(torch.cat([x1, x2.flatten(1)], 1), target=[1, 2], n_steps=30,
                max_dist=1.0, fraction=0.5)
    torch.testing.assert_close(torch.cat([a1, a2.flatten(1)], 1), flat)
    with torch.no_grad():
        smooth = NoiseTunnel(gig).attribute((x1, x2), nt_samples=3, stdevs=1e-12, target=[1, 2],
                                            additional_forward_args=0.5, n_steps=30,
                                            max_dist=1.0, fraction=0.5)
    torch.testing.assert_close(smooth[0], a1)


@pytest.mark.parametrize("bad, name", [
    (dict(n_steps=0), "n_steps"), (dict(fraction=0.0), "fraction"),
    (dict(fraction=1.5), "fraction"), (dict(max_dist=-0.1), "max_dist"),
    (dict(target=9), "target"), (dict(internal_batch_size=0), "internal_batch_size"),
])
def test_bad_arguments(bad, name):
    model = SaturatingNet(seed=0)
    kwargs = dict(inputs=torch.randn(2, 6, dtype=torch.float64), target=0, n_steps=4)
    kwargs.update(bad)
    with pytest.raises(ValueError, match=name):
        GuidedIntegratedGradients(model).attribute(**kwargs)
