"""Property tests on small random MLPs (hypothesis draws the models and inputs)."""

import copy

import torch

from captum_idg import (
    AdaptiveIntegratedGradients,
    IntegratedDecisionGradients,
    LeftIntegratedGradients,
    adaptive_schedule,
)
from tests.oracles import oracle

hypothesis = oracle("hypothesis")
given, settings, st = hypothesis.given, hypothesis.settings, hypothesis.strategies

seeds = st.integers(min_value=0, max_value=2**31 - 1)


def mlp(seed: int, width: int = 8) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(5, width), torch.nn.Tanh(), torch.nn.Linear(width, 3)
    ).double()


def data(seed: int, batch: int = 3) -> torch.Tensor:
    return 3 * torch.randn(batch, 5, generator=torch.Generator().manual_seed(seed),
                           dtype=torch.float64)


class Shifted(torch.nn.Module):
    def __init__(self, model, shift=0.0, scale=1.0):
        super().__init__()
        self.model, self.shift, self.scale = model, shift, scale

    def forward(self, x):
        return self.scale * self.model(x) + self.shift


@settings(max_examples=40, deadline=None)
@given(seed=seeds, n_probe=st.integers(2, 40), n_steps=st.integers(1, 60),
       mix=st.floats(0.01, 1.0), power=st.floats(0.1, 2.0))
def test_adaptive_schedule_properties(seed, n_probe, n_steps, mix, power):
    probe = torch.randn(n_probe, 4, generator=torch.Generator().manual_seed(seed),
                        dtype=torch.float64).cumsum(0)
    grid = torch.linspace(0, 1, n_probe, dtype=torch.float64)[:, None].expand(-1, 4)
    alphas, weights = adaptive_schedule(grid, probe, n_steps, uniform_mix=mix, power=power)
    torch.testing.assert_close(weights.sum(0), torch.ones(4, dtype=torch.float64))
    edges = torch.cat([torch.zeros(1, 4, dtype=torch.float64), weights.cumsum(0)])
    assert (weights > 0).all() and (alphas > edges[:-1]).all() and (alphas < edges[1:]).all()
    assert ((alphas > 0) & (alphas < 1)).all()
    for b in range(4):  # per-example independence
        a_b, w_b = adaptive_schedule(grid[:, :1], probe[:, b : b + 1], n_steps, uniform_mix=mix,
                                     power=power)
        torch.testing.assert_close(a_b[:, 0], alphas[:, b])


@settings(max_examples=25, deadline=None)
@given(seed=seeds, shift=st.floats(-50, 50), scale=st.floats(0.1, 10))
def test_idg_shift_invariance_and_output_scale(seed, shift, scale):
    model, x = mlp(seed), data(seed)
    idg = IntegratedDecisionGradients(model).attribute(x, target=1, n_steps=12, rescale=False)
    shifted = IntegratedDecisionGradients(Shifted(model, shift)).attribute(x, target=1, n_steps=12,
                                                                           rescale=False)
    torch.testing.assert_close(shifted, idg)
    # a constant shift leaves the adaptive schedule alone; scaling the logit by c
    # scales raw IDG by c^2 (gradient times dF/da) and rescaled IDG by c
    scaled = IntegratedDecisionGradients(Shifted(model, 0.0, scale)).attribute(
        x, target=1, n_steps=12, rescale=False)
    torch.testing.assert_close(scaled, scale**2 * idg)
    rescaled = IntegratedDecisionGradients(model).attribute(x, target=1, n_steps=12, rescale=True)
    scaled_rescaled = IntegratedDecisionGradients(Shifted(model, 0.0, scale)).attribute(
        x, target=1, n_steps=12, rescale=True)
    torch.testing.assert_close(scaled_rescaled, scale * rescaled)


@settings(max_examples=15, deadline=None)
@given(seed=seeds)
def test_determinism_and_no_mutation(seed):
    model, x = mlp(seed), data(seed)
    model.train()
    baseline = data(seed + 1, batch=1)
    before = (x.clone(), baseline.clone(), copy.deepcopy(model.state_dict()))
    for method in (IntegratedDecisionGradients, AdaptiveIntegratedGradients,
                   LeftIntegratedGradients):
        first = method(model).attribute(x, baseline, target=[0, 1, 2], n_steps=9)
        second = method(model).attribute(x, baseline, target=[0, 1, 2], n_steps=9)
        assert torch.equal(first, second) and torch.isfinite(first).all()
    assert torch.equal(x, before[0]) and torch.equal(baseline, before[1]) and model.training
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[2][name])
