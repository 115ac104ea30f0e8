"""Bad input gets a ValueError that names the argument; nothing is mutated."""

import copy

import pytest
import torch
from models import SaturatingNet

from captum_idg import AdaptiveIntegratedGradients, IntegratedDecisionGradients

METHODS = [IntegratedDecisionGradients, AdaptiveIntegratedGradients]


def x_and_model():
    return torch.randn(2, 6, dtype=torch.float64), SaturatingNet(seed=0)


NAN_INPUT = torch.tensor([[0.0, float("nan"), 0, 0, 0, 0]] * 2, dtype=torch.float64)
INF_INPUT = torch.tensor([[0.0, float("inf"), 0, 0, 0, 0]] * 2, dtype=torch.float64)

BAD_CALLS = [
    # (keyword arguments replacing the good ones, argument named in the error)
    (dict(baselines=torch.zeros(3, 6, dtype=torch.float64)), "baselines"),
    (dict(baselines=torch.zeros(2, 5, dtype=torch.float64)), "baselines"),
    (dict(baselines=(0.0, 0.0)), "baselines"),
    (dict(baselines=torch.zeros(1, 6, dtype=torch.float32)), "baselines"),
    (dict(baselines=torch.full((1, 6), float("nan"), dtype=torch.float64)), "baselines"),
    (dict(n_steps=1), "n_steps"),
    (dict(n_steps=0), "n_steps"),
    (dict(n_steps=2.5), "n_steps"),
    (dict(n_probe_steps=1), "n_probe_steps"),
    (dict(internal_batch_size=0), "internal_batch_size"),
    (dict(inputs=NAN_INPUT), "inputs"),
    (dict(inputs=INF_INPUT), "inputs"),
    (dict(inputs=torch.ones(2, 6, dtype=torch.int64)), "inputs"),
    (dict(inputs=torch.empty(0, 6, dtype=torch.float64)), "inputs"),
    (dict(target=3), "target"),
    (dict(target=-1), "target"),
    (dict(target=[0, 7]), "target"),
    (dict(target=[0, 1, 2]), "target"),
    (dict(target=torch.tensor([0, 5])), "target"),
    (dict(target=torch.tensor([0.0, 1.0])), "target"),
    (dict(target=None), "target"),
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("bad, name", BAD_CALLS)
def test_bad_arguments_raise_value_error_naming_them(method, bad, name):
    x, model = x_and_model()
    kwargs = dict(inputs=x, target=0, n_steps=4)
    kwargs.update(bad)
    with pytest.raises(ValueError, match=name):
        method(model).attribute(**kwargs)


@pytest.mark.parametrize("method", METHODS)
def test_unknown_method_name(method):
    x, model = x_and_model()
    with pytest.raises(ValueError, match="method"):
        method(model).attribute(x, target=0, method="gauss")


def test_inputs_of_wrong_type():
    _, model = x_and_model()
    with pytest.raises(TypeError, match="inputs"):
        IntegratedDecisionGradients(model).attribute([[0.0] * 6], target=0)


def test_model_with_one_output_per_example_rejects_a_target():
    x, model = x_and_model()
    with pytest.raises(ValueError, match="target"):
        IntegratedDecisionGradients(lambda z: model(z)[:, 0]).attribute(x, target=1)
    # and works without one
    out = IntegratedDecisionGradients(lambda z: model(z)[:, 0]).attribute(x, n_steps=4)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("method", METHODS)
def test_nothing_is_mutated(method):
    x, model = x_and_model()
    model.train()
    baseline = torch.rand(1, 6, dtype=torch.float64)
    x_before, base_before = x.clone(), baseline.clone()
    params_before = copy.deepcopy(model.state_dict())
    method(model).attribute(x, baseline, target=[0, 1], n_steps=6, return_convergence_delta=True)
    assert model.training
    assert torch.equal(x, x_before) and torch.equal(baseline, base_before)
    assert not x.requires_grad and x.grad is None
    for name, value in model.state_dict().items():
        assert torch.equal(value, params_before[name]), name
    assert all(p.grad is None for p in model.parameters())


def test_inputs_that_require_grad_are_left_alone():
    x, model = x_and_model()
    x.requires_grad_()
    attr = IntegratedDecisionGradients(model).attribute(x, target=0, n_steps=4)
    assert x.grad is None and not attr.requires_grad


def test_default_passes_fit_a_quarter_of_free_memory(monkeypatch):
    from captum_idg import _batching

    monkeypatch.setattr(_batching, "device_memory", lambda device: 2**30)
    images = (torch.zeros(2, 3, 32, 32),)  # 12 KiB a row, 3 MiB with activations
    rows = _batching.rows_per_pass(images, None)
    assert rows == 2**30 // 4 // (3 * 32 * 32 * 4 * _batching.ACTIVATION_FACTOR)
    assert _batching.rows_per_pass(images, 7) == 7  # an explicit value is honoured
    assert _batching.rows_per_pass(images, 1) == 2  # but a pass holds the whole batch
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 3))
    sizes = []
    model.register_forward_hook(lambda m, i, o: sizes.append(i[0].shape[0]))
    IntegratedDecisionGradients(model).attribute(torch.rand(2, 3, 32, 32), target=1,
                                                 n_steps=400, method="riemann_middle",
                                                 rescale=False)
    assert max(sizes) <= rows and sum(sizes) == 2 * 400
