"""method='regions': exact on networks of linear layers and ReLU modules, refused elsewhere."""


import pytest
import torch
from torch import nn

from captum_idg import AdaptiveIntegratedGradients, IntegratedDecisionGradients
from captum_idg.attr._path import StraightLinePath, summed_gradients
from captum_idg.attr._path_integral import ModelOnPath
from captum_idg.attr._regions import region_edges
from captum_idg.testing import (
    DnaCNN,
    ReluMLP,
    dense_path_reference,
    one_hot_dna,
)


def test_the_edges_are_where_the_pre_activations_cross_zero():
    class Hinges(nn.Module):  # F = relu(z1 - 0.3) + 2 relu(0.5 - z2) on z = alpha * (1, 1)
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(2, 2).double()
            with torch.no_grad():
                self.linear.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, -1.0]]))
                self.linear.bias.copy_(torch.tensor([-0.3, 0.5]))
            self.relu = nn.ReLU()

        def forward(self, z):
            h = self.relu(self.linear(z))
            return (h[:, 0] + 2 * h[:, 1])[:, None]

    x = torch.ones(1, 2, dtype=torch.float64)
    model = ModelOnPath(Hinges(), summed_gradients, StraightLinePath((x,), (0 * x,)), target=0)
    edges, walked = region_edges(model, 16)
    assert walked.all()
    torch.testing.assert_close(edges[:, 0].unique(), torch.tensor([0.0, 0.3, 0.5, 1.0],
                                                                  dtype=torch.float64))


@pytest.mark.parametrize("cls, integrand", [(IntegratedDecisionGradients, 1),
                                            (AdaptiveIntegratedGradients, 0)])
def test_exact_on_relu_mlps_against_a_dense_reference(cls, integrand):
    net = ReluMLP(10, seed=3).eval()
    x = torch.randn(3, 10, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    settings = dict(rescale=False) if cls is IntegratedDecisionGradients else {}
    explainer = cls(net)
    ours = explainer.attribute(x, target=0, n_steps=160, method="regions", **settings)
    more = explainer.attribute(x, target=0, n_steps=320, method="regions", **settings)
    torch.testing.assert_close(ours, more, rtol=1e-9, atol=1e-12)  # exact: more steps agree
    for b in range(3):
        reference = dense_path_reference(net, x[b], torch.zeros(10, dtype=torch.float64), 0,
                                         2**16, 8192)[integrand]
        assert float((ours[b] - reference).norm() / reference.norm()) < 2e-4
    alone = explainer.attribute(x[1:2], target=0, n_steps=160, method="regions", **settings)
    torch.testing.assert_close(alone[0], ours[1], rtol=1e-12, atol=1e-14)
    midpoint = explainer.attribute(x, target=0, n_steps=160, method="riemann_middle", **settings)
    assert not torch.allclose(midpoint, ours, rtol=1e-6)  # a fixed rule is not exact here


def test_smooth_functions_are_refused_by_name_and_unread_kinks_by_the_check():
    smooth = nn.Sequential(nn.Conv1d(4, 4, 3), nn.GELU(), nn.Flatten(), nn.Linear(24, 1))
    with pytest.raises(ValueError, match="method: 'regions'.*forward_func calls gelu"):
        IntegratedDecisionGradients(smooth).attribute(torch.rand(2, 4, 8), target=0,
                                                      method="regions")
    layer, head = nn.Linear(3, 8), nn.Linear(8, 1)  # abs: piecewise linear, but not read
    with pytest.raises(ValueError, match="method: 'regions' found the target output nonlinear"):
        IntegratedDecisionGradients(lambda z: head(layer(z).abs())).attribute(
            torch.randn(2, 3), target=0, method="regions")


def test_functional_relus_in_a_closure_are_read():
    # torch.relu, Tensor.relu, F.leaky_relu, F.hardtanh and F.relu6 in a plain
    # function: exact against a dense float64 reference
    torch.manual_seed(5)
    w1, w2, w3, w4 = (torch.randn(m, n, dtype=torch.float64) for m, n in
                      ((10, 24), (24, 24), (24, 24), (24, 1)))

    def forward(z):
        h = torch.relu(z @ w1).relu() + nn.functional.leaky_relu(z @ w1 - 0.5, 0.2)
        h = nn.functional.hardtanh(h @ w2 / 3, -1.0, 2.0)
        return nn.functional.relu6(h @ w3 + 1) @ w4

    x = torch.randn(2, 10, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    ours = IntegratedDecisionGradients(forward).attribute(x, target=0, n_steps=512,
                                                          method="regions", rescale=False)
    for b in range(2):
        reference = dense_path_reference(forward, x[b], torch.zeros(10, dtype=torch.float64),
                                         0, 2**17, 2**14)[1]
        assert float((ours[b] - reference).norm() / reference.norm()) < 5e-5


def test_too_many_regions_fall_back_to_the_midpoint_rule_with_one_warning():
    net = ReluMLP(10, seed=3).eval()  # 50-75 regions along a path
    x = torch.randn(2, 10, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    explainer = IntegratedDecisionGradients(net)
    with pytest.warns(UserWarning, match="cross more than 32 linear regions .*; they use the "
                                         "midpoint rule"):
        ours = explainer.attribute(x, target=0, n_steps=8, method="regions", rescale=False)
    midpoint = explainer.attribute(x, target=0, n_steps=8, method="riemann_middle",
                                   rescale=False)
    torch.testing.assert_close(ours, midpoint)


class PooledCNN(nn.Module):
    """Convolutions, ReLUs and 2-D max pools with padding, stride and dilation."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1), nn.MaxPool2d(3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(4, 4, 3), nn.MaxPool2d((2, 3), stride=1, dilation=(1, 2)), nn.ReLU(),
            nn.Flatten(), nn.Linear(4 * 5 * 2, 1)).double()

    def forward(self, z):
        return self.features(z)


@pytest.mark.parametrize("kind", ["dna", "2d"])
def test_max_pools_are_walked_exactly(kind):
    # a 1-D CNN on one-hot DNA (max pools of 4) and a 2-D CNN whose pools pad,
    # stride and dilate: each window's new maximum ends a region, so the map
    # matches a dense float64 reference where the midpoint rule does not
    if kind == "dna":
        net = DnaCNN(seed=1, channels=4, length=32).eval()
        x = one_hot_dna(32, torch.Generator().manual_seed(2))
    else:
        net = PooledCNN().eval()
        x = 3 * torch.randn(2, 16, 16, generator=torch.Generator().manual_seed(2),
                            dtype=torch.float64)
    explainer = IntegratedDecisionGradients(net)
    ours = explainer.attribute(x[None], target=0, n_steps=512, method="regions",
                               rescale=False)[0]
    reference = dense_path_reference(net, x, torch.zeros_like(x), 0, 2**17, 2**14)[1]
    midpoint = explainer.attribute(x[None], target=0, n_steps=512, method="riemann_middle",
                                   rescale=False)[0]
    assert float((ours - reference).norm() / reference.norm()) < 5e-5
    assert float((midpoint - reference).norm() / reference.norm()) > 2e-4


def test_tolerance_walks_the_regions_of_a_walkable_network_and_is_exact():
    # a ReLU MLP: tolerance mode takes one gradient per linear region (as many
    # as the example with most has), reports converged with an estimate of
    # rounding size, and agrees with a dense reference; where an example has
    # more regions than n_steps it runs the randomized rounds instead
    net = ReluMLP(10, seed=3).eval()
    x = torch.randn(4, 10, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    model = ModelOnPath(net, summed_gradients, StraightLinePath((x,), (0 * x,)), target=0)
    edges, walked = region_edges(model, 1000)
    counts = torch.tensor([len(edges[:, b].unique()) - 1 for b in range(4)])
    explainer = IntegratedDecisionGradients(net)
    ours = explainer.attribute(x, target=0, n_steps=256, tolerance=1e-6, rescale=False)
    report = explainer.refinement
    assert report.converged.all() and (report.estimated_error < 1e-12).all()
    assert (report.evaluations == counts.max()).all()
    for b in range(4):
        reference = dense_path_reference(net, x[b], torch.zeros(10, dtype=torch.float64), 0,
                                         2**16, 8192)[1]
        assert float((ours[b] - reference).norm() / reference.norm()) < 2e-4
    middle = int(counts.sort().values[2])  # the three with fewest regions walk, the other not
    with pytest.warns(UserWarning, match="tolerance=1e-06 not met"):
        mixed = explainer.attribute(x, target=0, n_steps=middle, tolerance=1e-6, rescale=False)
    exact = counts <= middle
    torch.testing.assert_close(mixed[exact], ours[exact], rtol=1e-10, atol=1e-12)
    report = explainer.refinement
    assert report.converged.tolist() == exact.tolist()
    assert not torch.allclose(mixed[~exact], ours[~exact], rtol=1e-6)
    for b in range(4):  # an example does not depend on its batch
        alone = explainer.attribute(x[b:b + 1], target=0, n_steps=middle, tolerance=1e-6,
                                    rescale=False) if not exact[b] else None
        if alone is not None:
            torch.testing.assert_close(alone[0], mixed[b])


def test_an_operation_without_forward_mode_is_refused_and_tolerance_runs_its_rounds():
    grid = torch.zeros(1, 2, 2, 2, dtype=torch.float64)

    def forward(z):  # grid_sample has no forward-mode derivative in torch
        sampled = nn.functional.grid_sample(z.view(-1, 1, 2, 3), grid.expand(len(z), -1, -1, -1),
                                            align_corners=False)
        return torch.relu(sampled.flatten(1)).sum(dim=1, keepdim=True) + z.sum(1, keepdim=True)

    x = torch.randn(2, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with pytest.raises(ValueError, match="method: 'regions' needs forward-mode derivatives"):
        IntegratedDecisionGradients(forward).attribute(x, target=0, method="regions")
    explainer = IntegratedDecisionGradients(forward)
    explainer.attribute(x, target=0, n_steps=64, tolerance=1e-2)
    assert (explainer.refinement.evaluations >= 16).all()  # the rounds, not a walk


def test_a_model_that_breaks_on_the_path_is_named_where():
    layer = nn.Linear(3, 4).double()

    def forward(z):  # inf before the path passes half way, where the walk starts
        h = torch.relu(layer(z))
        return h.sum(dim=1, keepdim=True) / (z[:, :1] > 0.5).to(z.dtype)

    x = torch.ones(1, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="forward_func's outputs.*example 0 at alpha 0.0"):
        IntegratedDecisionGradients(forward).attribute(x, target=0, method="regions")
