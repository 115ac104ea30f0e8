"""IDGI: each segment's logit change goes to the gradient's direction."""

import pytest
import torch
from captum.attr import NoiseTunnel
from models import LinearNet, SaturatingNet, TwoInputNet

from captum_idg import ImportantDirectionGradientIntegration as IDGI


def plain_idgi(model, x, baseline, target, n_steps):
    """The formula written out for one example, one segment at a time."""
    total = torch.zeros_like(x)
    for k in range(n_steps):
        start = (baseline + k / n_steps * (x - baseline)).requires_grad_()
        end = baseline + (k + 1) / n_steps * (x - baseline)
        logit = model(start[None])[0, target]
        (grad,) = torch.autograd.grad(logit, start)
        change = model(end[None])[0, target] - logit
        if (grad**2).sum() > 0:  # a fully saturated point has no direction
            total += grad**2 / (grad**2).sum() * change.detach()
    return total


@pytest.mark.parametrize("seed", range(4))
def test_matches_the_formula_and_is_complete(seed):
    model = SaturatingNet(seed=seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 6, generator=g, dtype=torch.float64)
    base = torch.randn(3, 6, generator=g, dtype=torch.float64) * 0.2
    target = model(x).argmax(1)
    attr, delta = IDGI(model).attribute(x, base, target=target, n_steps=13,
                                        return_convergence_delta=True)
    for b in range(3):
        torch.testing.assert_close(attr[b], plain_idgi(model, x[b], base[b], int(target[b]), 13))
    change = (model(x) - model(base)).gather(1, target[:, None])[:, 0].detach()
    torch.testing.assert_close(attr.sum(1), change)
    assert delta.abs().max() < 1e-12


def test_linear_model_closed_form():
    model = LinearNet(seed=3)
    x = torch.randn(2, 6, dtype=torch.float64)
    w = model.linear.weight[0].detach()
    expected = w**2 / (w**2).sum() * (x @ w)[:, None]
    torch.testing.assert_close(IDGI(model).attribute(x, target=0, n_steps=5), expected)


@pytest.mark.parametrize("internal_batch_size", [1, 2, 5, 8, 100])
def test_chunks_do_not_change_the_result(internal_batch_size):
    model = SaturatingNet(seed=2)
    x = torch.randn(2, 6, dtype=torch.float64)
    full = IDGI(model).attribute(x, target=[0, 1], n_steps=7)
    chunked = IDGI(model).attribute(x, target=[0, 1], n_steps=7,
                                    internal_batch_size=internal_batch_size)
    torch.testing.assert_close(chunked, full)


def test_tuple_inputs_and_noise_tunnel():
    model = TwoInputNet(seed=0)
    x1, x2 = torch.randn(2, 4, dtype=torch.float64), torch.randn(2, 2, 3, dtype=torch.float64)
    a1, a2 = IDGI(model).attribute((x1, x2), target=2, additional_forward_args=2.0, n_steps=9)
    change = (model(x1, x2, 2.0) - model(0 * x1, 0 * x2, 2.0))[:, 2].detach()
    torch.testing.assert_close(a1.sum(1) + a2.flatten(1).sum(1), change)
    smooth = NoiseTunnel(IDGI(model)).attribute((x1, x2), nt_samples=2, stdevs=1e-12, target=2,
                                                additional_forward_args=2.0, n_steps=9)
    torch.testing.assert_close(smooth[1], a2)


def test_flat_model_gives_zeros():
    model = torch.nn.Linear(6, 2).double()
    with torch.no_grad():
        model.weight.zero_()
    attr = IDGI(model).attribute(torch.randn(2, 6, dtype=torch.float64), target=1, n_steps=4)
    assert torch.equal(attr, torch.zeros_like(attr))


def test_an_input_equal_to_its_baseline_gets_exact_zeros():
    # the rows of one batch may differ in their last bits; a path of length 0 changes nothing
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Softplus(),
                                torch.nn.Flatten(), torch.nn.Linear(8 * 14 * 14, 3))
    x = torch.rand(3, 3, 16, 16)
    baselines = x.clone()
    baselines[1] = 0
    idgi = IDGI(model)
    attributions, delta = idgi.attribute(x, baselines=baselines, target=0, n_steps=16,
                                         return_convergence_delta=True)
    assert torch.equal(attributions[[0, 2]], torch.zeros_like(attributions[[0, 2]]))
    assert torch.equal(delta[[0, 2]], torch.zeros(2))
    alone = idgi.attribute(x[1:2], baselines=baselines[1:2], target=0, n_steps=16)
    torch.testing.assert_close(attributions[1:2], alone, atol=1e-6, rtol=1e-5)
