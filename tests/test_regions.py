"""method='regions': exact on networks of linear layers and ReLU modules, refused elsewhere."""

import inspect

import pytest
import torch
from torch import nn

from captum_idg import AdaptiveIntegratedGradients, IntegratedDecisionGradients
from captum_idg.attr._path import StraightLinePath, summed_gradients
from captum_idg.attr._path_integral import ModelOnPath
from captum_idg.attr._regions import region_edges
from captum_idg.testing import ReluMLP, dense_path_reference, piecewise_linear_suite


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


def test_other_nonlinearities_and_closures_are_refused_by_name():
    pooled = nn.Sequential(nn.Conv1d(4, 4, 3), nn.ReLU(), nn.MaxPool1d(2), nn.Flatten(),
                           nn.Linear(12, 1))
    with pytest.raises(ValueError, match="method: 'regions'.*MaxPool1d"):
        IntegratedDecisionGradients(pooled).attribute(torch.rand(2, 4, 8), target=0,
                                                      method="regions")
    mlp = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    with pytest.raises(ValueError, match="forward_func must be an nn.Module"):
        IntegratedDecisionGradients(lambda z: mlp(z)).attribute(torch.rand(2, 3), target=0,
                                                                method="regions")


def test_too_many_regions_fall_back_to_the_midpoint_rule_with_one_warning():
    net = ReluMLP(10, seed=3).eval()  # 50-75 regions along a path
    x = torch.randn(2, 10, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    explainer = IntegratedDecisionGradients(net)
    with pytest.warns(UserWarning, match="cross more than 32 linear regions; they use the "
                                         "midpoint rule"):
        ours = explainer.attribute(x, target=0, n_steps=8, method="regions", rescale=False)
    midpoint = explainer.attribute(x, target=0, n_steps=8, method="riemann_middle",
                                   rescale=False)
    torch.testing.assert_close(ours, midpoint)


def test_a_relu_called_as_a_function_is_caught_not_integrated_wrongly():
    case = [c for c in piecewise_linear_suite(6, 4) if c.kind == "residual-cnn"][0]
    assert "torch.relu" in inspect.getsource(type(case.model).forward)  # besides its modules
    with pytest.raises(ValueError, match="method: 'regions' found the target output nonlinear"):
        IntegratedDecisionGradients(case.model).attribute(case.x[None], target=case.target,
                                                          n_steps=64, method="regions")
