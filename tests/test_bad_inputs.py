"""A table of bad inputs tried on every public attribution class.

Each case either raises ValueError/TypeError naming the argument, or works and
returns finite attributions. Never NaN, never a silent wrong shape."""

import pytest
import torch

from captum_idg import (
    AdaptiveIntegratedGradients,
    AdversarialGradientIntegration,
    GuidedIntegratedGradients,
    ImportantDirectionGradientIntegration,
    IntegratedDecisionGradients,
    LeftIntegratedGradients,
)

PATH_METHODS = [IntegratedDecisionGradients, AdaptiveIntegratedGradients,
                LeftIntegratedGradients, ImportantDirectionGradientIntegration,
                GuidedIntegratedGradients]
ALL_METHODS = PATH_METHODS + [AdversarialGradientIntegration]


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))


def good_kwargs(method):
    kwargs = dict(inputs=torch.randn(2, 4), target=1)
    if method is AdversarialGradientIntegration:
        kwargs.update(max_iter=3)
    else:
        kwargs.update(n_steps=4)
    return kwargs


nan = torch.randn(2, 4)
nan[1, 2] = float("nan")
inf = torch.randn(2, 4)
inf[0, 0] = -float("inf")

COMMON = [  # (case, overrides, exception, the argument the message names)
    ("inputs as list", dict(inputs=[[0.0] * 4] * 2), TypeError, "inputs"),
    ("integer inputs", dict(inputs=torch.ones(2, 4, dtype=torch.long)), ValueError, "inputs"),
    ("NaN input", dict(inputs=nan), ValueError, "inputs"),
    ("inf input", dict(inputs=inf), ValueError, "inputs"),
    ("empty batch", dict(inputs=torch.zeros(0, 4)), ValueError, "inputs"),
    ("scalar input", dict(inputs=torch.tensor(1.0)), ValueError, "inputs"),
    ("target out of range", dict(target=3), ValueError, "target"),
    ("negative target", dict(target=-4), ValueError, "target"),
    ("target list too long", dict(target=[0, 1, 2]), ValueError, "target"),
    ("2-D target", dict(target=torch.zeros(2, 2, dtype=torch.long)), ValueError, "target"),
    ("float target", dict(target=torch.tensor([0.0, 1.0])), ValueError, "target"),
    ("target of wrong type", dict(target="cat"), ValueError, "target"),
]
PATH_ONLY = [
    ("baseline of wrong shape", dict(baselines=torch.zeros(2, 5)), ValueError, "baselines"),
    ("baseline batch mismatch", dict(baselines=torch.zeros(3, 4)), ValueError, "baselines"),
    ("baseline on another device", dict(baselines=torch.zeros(1, 4, device="meta")),
     ValueError, "baselines"),
    ("float64 baseline for float32 input", dict(baselines=torch.zeros(1, 4, dtype=torch.float64)),
     ValueError, "baselines"),
    ("NaN baseline", dict(baselines=float("nan")), ValueError, "baselines"),
    ("baseline of wrong type", dict(baselines="zero"), TypeError, "baselines"),
    ("n_steps 0", dict(n_steps=0), ValueError, "n_steps"),
    ("n_steps as float", dict(n_steps=4.0), ValueError, "n_steps"),
    ("internal_batch_size 0", dict(internal_batch_size=0), ValueError, "internal_batch_size"),
]
CASES = [(m, *case) for m in ALL_METHODS for case in COMMON] + [
    (m, *case) for m in PATH_METHODS for case in PATH_ONLY]


@pytest.mark.parametrize("method, case, overrides, error, name", CASES,
                         ids=[f"{c[0].__name__}-{c[1]}" for c in CASES])
def test_bad_input_raises_naming_the_argument(method, case, overrides, error, name):
    kwargs = good_kwargs(method)
    kwargs.update(overrides)
    with pytest.raises(error, match=name):
        method(model()).attribute(**kwargs)


@pytest.mark.parametrize("method", [m for m in PATH_METHODS if m is not GuidedIntegratedGradients])
def test_one_step_is_too_few_for_a_riemann_path(method):
    with pytest.raises(ValueError, match="n_steps"):
        method(model()).attribute(**{**good_kwargs(method), "n_steps": 1})


STRAIGHT_PATH_METHODS = [m for m in PATH_METHODS if m is not GuidedIntegratedGradients]


@pytest.mark.parametrize("method", STRAIGHT_PATH_METHODS)
@pytest.mark.parametrize("internal_batch_size", [None, 64])
def test_n_steps_too_large_for_memory_names_n_steps(method, internal_batch_size):
    kwargs = {**good_kwargs(method), "n_steps": 10**13,
              "internal_batch_size": internal_batch_size}
    with pytest.raises(ValueError, match="n_steps=10000000000000.*internal_batch_size"):
        method(model()).attribute(**kwargs)


@pytest.mark.parametrize("method", [IntegratedDecisionGradients, AdaptiveIntegratedGradients,
                                    LeftIntegratedGradients])
def test_n_probe_steps_too_large_for_memory_names_n_probe_steps(method):
    kwargs = {**good_kwargs(method), "n_probe_steps": 10**13}
    with pytest.raises(ValueError, match="n_probe_steps=10000000000000"):
        method(model()).attribute(**kwargs)


@pytest.mark.parametrize("method", STRAIGHT_PATH_METHODS)
def test_many_steps_work_in_chunks(method):
    kwargs = good_kwargs(method)
    many = method(model()).attribute(**{**kwargs, "n_steps": 20_000,
                                        "internal_batch_size": 4096})
    some = method(model()).attribute(**{**kwargs, "n_steps": 2_000})
    assert torch.isfinite(many).all()
    torch.testing.assert_close(many, some, rtol=1e-2, atol=1e-3)


def test_guided_ig_takes_many_steps():
    # Guided IG walks one step at a time: its memory does not grow with n_steps
    kwargs = {**good_kwargs(GuidedIntegratedGradients), "n_steps": 2_000}
    assert torch.isfinite(GuidedIntegratedGradients(model()).attribute(**kwargs)).all()


@pytest.mark.parametrize("method", ALL_METHODS)
@pytest.mark.parametrize("output, name", [
    (lambda out: out[:, 0], "target"),  # one value per example, yet a target given
    (lambda out: (out,), "forward_func"),  # not a Tensor
])
def test_model_output_that_does_not_fit(method, output, name):
    net = model()
    with pytest.raises(ValueError, match=name):
        method(lambda x: output(net(x))).attribute(**good_kwargs(method))


@pytest.mark.parametrize("method", PATH_METHODS)
def test_model_with_vector_output_needs_a_target(method):
    kwargs = good_kwargs(method)
    kwargs["target"] = None
    with pytest.raises(ValueError, match="target"):
        method(model()).attribute(**kwargs)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_train_mode_model_works_and_stays_in_train_mode(method):
    net = model().train()
    attributions = method(net).attribute(**good_kwargs(method))
    assert net.training and torch.isfinite(attributions).all()


@pytest.mark.parametrize("method", ALL_METHODS)
def test_saturated_model_gives_finite_output(method):
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))
    with torch.no_grad():
        net[0].weight.mul_(1e4)  # tanh saturates: gradients vanish almost everywhere
    attributions = method(net).attribute(**good_kwargs(method))
    assert torch.isfinite(attributions).all()
