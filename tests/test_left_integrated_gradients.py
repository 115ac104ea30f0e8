"""Left-IG: IG on [0, a*], where a* is where the logit saturates."""

import pytest
import torch
from captum.attr import IntegratedGradients, NoiseTunnel
from models import SaturatingNet
from torch import nn

from captum_idg import LeftIntegratedGradients, saturation_point
from captum_idg.attr._tolerance import FIRST_ROUND


class RidgeNet(nn.Module):
    """Logits ``(h(w.z), -h(w.z))`` with ``h(s) = 10 tanh(s)``: the path logit
    is ``10 tanh(a s)`` with ``s = w.x``, so a* has a closed form."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.w = torch.randn(6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)

    def forward(self, z):
        logit = 10 * torch.tanh(z @ self.w)
        return torch.stack([logit, -logit], dim=1)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("rule", ["relative", "max"])
def test_stops_where_the_closed_form_says(seed, rule):
    model = RidgeNet(seed)
    g = torch.Generator().manual_seed(10 + seed)
    x = 3 * torch.randn(1, 6, generator=g, dtype=torch.float64)
    s = float(x[0] @ model.w)
    target = 0 if s > 0 else 1
    r = 0.8
    # path logit 10 tanh(a |s|) rises monotonically from 0, so both rules agree
    a_star = torch.atanh(torch.tensor(r * torch.tanh(torch.tensor(abs(s))).item())).item() / abs(s)
    grid = torch.linspace(0, 1, 400, dtype=torch.float64)[:, None]
    probe = model(grid * x)[:, target : target + 1]
    assert saturation_point(probe, r, rule).item() == pytest.approx(a_star, abs=1e-4)
    # IG on [0, a*] in closed form: d_i w_i (h(a* s) - h(0)) / s
    attr, delta = LeftIntegratedGradients(model).attribute(
        x, target=target, n_steps=200, n_probe_steps=400, threshold=r, threshold_type=rule,
        return_convergence_delta=True,
    )
    sign = 1 if target == 0 else -1
    expected = x * model.w * sign * 10 * torch.tanh(torch.tensor(a_star * s)) / s
    torch.testing.assert_close(attr, expected, rtol=1e-3, atol=1e-4)
    assert delta.abs().item() < 1e-3


@pytest.mark.parametrize("seed", range(3))
def test_threshold_one_is_ig_on_the_same_grid(seed):
    model = RidgeNet(seed)
    x = torch.randn(3, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    target = (x @ model.w < 0).long()  # the class whose logit rises along the path
    ours = LeftIntegratedGradients(model).attribute(
        x, target=target, n_steps=24, method="riemann_middle", threshold=1.0,
        threshold_type="relative",
    )
    ig = IntegratedGradients(model).attribute(x, target=target, n_steps=24, method="riemann_middle")
    torch.testing.assert_close(ours, ig)


def test_per_example_cuts_in_a_batch_and_chunking():
    model = SaturatingNet(seed=3)
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    target = model(x).argmax(1)
    left = LeftIntegratedGradients(model)
    batched = left.attribute(x, target=target, n_steps=16)
    torch.testing.assert_close(
        left.attribute(x, target=target, n_steps=16, internal_batch_size=5), batched
    )
    for b in range(4):
        torch.testing.assert_close(
            batched[b : b + 1], left.attribute(x[b : b + 1], target=int(target[b]), n_steps=16)
        )
    # a saturating path stops early: attributions sum to well under F(x) - F(x')
    total = batched.sum(1)
    change = (model(x) - model(torch.zeros_like(x))).gather(1, target[:, None])[:, 0]
    assert (total.abs() < change.abs()).all()


def test_noise_tunnel_and_no_grad():
    model = SaturatingNet(seed=1)
    x = torch.randn(2, 6, dtype=torch.float64)
    left = LeftIntegratedGradients(model)
    plain, delta = left.attribute(x, target=0, n_steps=8, return_convergence_delta=True)
    with torch.no_grad():
        smooth, nt_delta = NoiseTunnel(left).attribute(
            x, nt_samples=2, stdevs=1e-12, target=0, n_steps=8, return_convergence_delta=True
        )
    torch.testing.assert_close(smooth, plain)
    assert nt_delta.shape == (4,)


def test_saturation_point_edge_cases():
    grid = torch.linspace(0, 1, 11, dtype=torch.float64)
    probe = torch.stack([-1 - grid, torch.zeros(11, dtype=torch.float64), 5 - grid], 1)
    # largest logit negative: 0.9 x max is above it, never reached -> whole path
    assert saturation_point(probe, 0.9, "max")[0] == 1.0
    # flat logit: no progress from F(x') to F(x) -> whole path
    assert saturation_point(probe, 0.9, "relative")[1] == 1.0
    # the baseline is already the largest: nothing left of it
    assert saturation_point(probe, 0.9, "max")[2] == 0.0


@pytest.mark.parametrize("bad, name", [
    (dict(threshold=0.0), "threshold"), (dict(threshold=1.5), "threshold"),
    (dict(threshold_type="mean"), "threshold_type"), (dict(n_probe_steps=1), "n_probe_steps"),
    (dict(n_steps=1), "n_steps"), (dict(target=5), "target"),
])
def test_bad_arguments(bad, name):
    kwargs = dict(inputs=torch.randn(2, 6, dtype=torch.float64), target=0, n_steps=4)
    kwargs.update(bad)
    with pytest.raises(ValueError, match=name):
        LeftIntegratedGradients(SaturatingNet(seed=0)).attribute(**kwargs)


@pytest.mark.parametrize("method", ["adaptive", "riemann_middle"])
def test_tolerance_integrates_the_same_cut_to_its_tolerance(method):
    model = SaturatingNet(seed=4, gain=12)
    x = torch.randn(3, 6, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    target = model(x).argmax(dim=1)
    left = LeftIntegratedGradients(model)
    # the same probe finds the same a*; Gauss-Legendre at 256 steps is exact there
    exact = left.attribute(x, target=target, n_steps=256, method="gausslegendre",
                           n_probe_steps=30)
    rounds = left.attribute(x, target=target, n_steps=1024, method=method, n_probe_steps=30,
                            tolerance=1e-3)
    report = left.refinement
    assert report.converged.all() and (report.evaluations < 1024).all()
    error = (rounds - exact).flatten(1).norm(dim=1) / exact.flatten(1).norm(dim=1)
    assert (error <= 1e-3).all(), error
    assert (left.refinement.estimated_error >= error).all()
    left.attribute(x, target=target, n_steps=96, method=method, tolerance=1e-2)
    # n_steps is a cap: the probe is the first round's, plus the logit at a*
    assert (left.refinement.probe_evaluations == FIRST_ROUND + 1).all()
