"""The cascading model-parameter randomisation test: it flags an explanation that
ignores the model, passes Saliency, and never touches the caller's model."""

import pytest
import scipy.stats
import torch
from captum.attr import GuidedBackprop, Saliency
from torch import nn

from captum_idg import IntegratedDecisionGradients
from captum_idg.metrics import model_randomisation, spearman
from captum_idg.metrics.randomisation import cascade, randomisation_stages


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(128, 10)).eval()


class EdgeDetector:
    """An 'explanation' of the image alone: vertical differences of the input."""

    def __init__(self, model: nn.Module) -> None:
        self.forward_func = model

    def attribute(self, inputs, target=None):
        return nn.functional.pad((inputs[..., 1:, :] - inputs[..., :-1, :]).abs(), (0, 0, 0, 1))


def _images() -> torch.Tensor:
    return torch.randn(6, 3, 16, 16, generator=torch.Generator().manual_seed(1))


def test_spearman_equals_scipy_with_ties_and_is_zero_on_a_constant_row():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 5, (4, 60), generator=g).float()
    b = torch.randn(4, 60, generator=g)
    b[1, :30] = 0.0
    expected = [scipy.stats.spearmanr(x, y)[0] for x, y in zip(a, b)]
    torch.testing.assert_close(spearman(a, b), torch.tensor(expected, dtype=torch.float64))
    assert spearman(torch.ones(1, 5), torch.arange(5.0)[None]).item() == 0.0


def test_an_explanation_that_ignores_the_model_is_flagged():
    net = _net()
    scores = model_randomisation(EdgeDetector(net), _images(), target=3)
    torch.testing.assert_close(scores, torch.ones(6, dtype=torch.float64))


def test_saliency_passes_and_the_others_are_reported():
    net, x = _net(), _images()
    saliency = model_randomisation(Saliency(net), x, target=3)
    assert saliency.mean() < 0.3  # model-sensitive: far from the edge detector's 1
    for explainer, kwargs in ((GuidedBackprop(net), {}),
                              (IntegratedDecisionGradients(net), dict(n_steps=8))):
        scores = model_randomisation(explainer, x, target=3, stages=3, **kwargs)
        assert scores.shape == (6,) and torch.isfinite(scores).all()
        assert (scores.abs() <= 1).all()


def test_the_callers_model_and_random_state_are_untouched():
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    model_randomisation(Saliency(net), _images(), target=1, stages=2)
    assert torch.equal(torch.rand(3), expected)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())


def test_stages_split_every_parameterised_layer_from_the_top_and_cascade_reproducibly():
    net = _net()
    stages = randomisation_stages(net, 2)
    assert [[name for name, _ in s] for s in stages] == [["6", "2"], ["0"]]
    assert len(randomisation_stages(net)) == 3 and len(randomisation_stages(net, 10)) == 3
    with pytest.raises(ValueError, match="stages"):
        randomisation_stages(net, 0)
    copies = [_net(), _net()]
    for model in copies:
        for _ in cascade(model, stages=None, seed=4):
            pass
    assert all(torch.equal(a, b) for a, b in zip(copies[0].parameters(), copies[1].parameters()))
    assert not torch.equal(copies[0][0].weight, net[0].weight)


def test_equals_the_slow_obvious_loop_with_scipy():
    import copy

    net, x = _net(), _images()
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))][::-1]
    original = Saliency(net).attribute(x, target=2).sum(1).abs().flatten(1)
    randomised, per_stage = copy.deepcopy(net), []
    for k, layer in enumerate(layers):  # one layer a stage, from the top, cumulatively
        torch.manual_seed(9 + k)
        dict(randomised.named_modules())[
            next(n for n, m in net.named_modules() if m is layer)].reset_parameters()
        maps = Saliency(randomised).attribute(x, target=2).sum(1).abs().flatten(1)
        per_stage.append([scipy.stats.spearmanr(a, b)[0] for a, b in zip(original, maps)])
    expected = torch.tensor(per_stage, dtype=torch.float64).mean(dim=0)
    torch.testing.assert_close(model_randomisation(Saliency(net), x, target=2, seed=9), expected)
