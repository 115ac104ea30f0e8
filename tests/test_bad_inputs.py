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
    LayerIntegratedDecisionGradients,
    LeftIntegratedGradients,
)
from captum_idg.metrics import deletion, insertion

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
    with pytest.raises(ValueError, match="n_steps=10000000000000"):
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
    # Guided IG walks one step at a time: its memory does not grow with n_steps,
    # and with many steps its path integral meets F(x) - F(x') closely
    kwargs = {**good_kwargs(GuidedIntegratedGradients), "n_steps": 2_000}
    net = model()
    attributions = GuidedIntegratedGradients(net).attribute(**kwargs)
    with torch.no_grad():
        change = net(kwargs["inputs"])[:, 1] - net(torch.zeros_like(kwargs["inputs"]))[:, 1]
    torch.testing.assert_close(attributions.sum(dim=1), change, rtol=1e-2, atol=1e-3)


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


def layer_idg(net):
    """IDG in the space of the model's hidden layer."""
    return LayerIntegratedDecisionGradients(net, net[1])


LAYER_CASES = [case for case in COMMON + PATH_ONLY
               if case[0] not in ("integer inputs", "baseline of wrong type")]


@pytest.mark.parametrize("case, overrides, error, name", LAYER_CASES,
                         ids=[c[0] for c in LAYER_CASES])
def test_layer_idg_bad_input_raises_naming_the_argument(case, overrides, error, name):
    kwargs = {**good_kwargs(IntegratedDecisionGradients), **overrides}
    with pytest.raises(error, match=name):
        layer_idg(model()).attribute(**kwargs)


def test_layer_idg_takes_integer_inputs_and_train_mode():
    embedding = torch.nn.Embedding(10, 4)
    net = torch.nn.Sequential(embedding, torch.nn.Flatten(), torch.nn.Linear(12, 3)).train()
    tokens = torch.tensor([[1, 2, 3], [4, 5, 6]])
    attributions = LayerIntegratedDecisionGradients(net, embedding).attribute(
        tokens, target=1, n_steps=8, rescale=True)
    with torch.no_grad():  # rescaled IDG sums to F(x) - F(x'), baseline token 0
        change = net(tokens)[:, 1] - net(torch.zeros_like(tokens))[:, 1]
    assert attributions.shape == (2, 3, 4)
    torch.testing.assert_close(attributions.flatten(1).sum(dim=1), change)
    assert net.training


def image_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 12 * 13, 4))


def metric_kwargs():
    return dict(forward_func=image_model(), inputs=torch.rand(2, 3, 12, 13),
                attributions=torch.rand(2, 12, 13), target=1)


nan_image = torch.rand(2, 3, 12, 13)
nan_image[0, 1, 2, 3] = float("nan")
METRIC_CASES = [  # (case, overrides, exception, the argument the message names)
    ("inputs as list", dict(inputs=[[0.0]]), ValueError, "inputs"),
    ("3-D inputs", dict(inputs=torch.rand(2, 12, 13)), ValueError, "inputs"),
    ("integer inputs", dict(inputs=torch.ones(2, 3, 12, 13, dtype=torch.long)), ValueError,
     "inputs"),
    ("NaN input", dict(inputs=nan_image), ValueError, "inputs"),
    ("empty batch", dict(inputs=torch.rand(0, 3, 12, 13), attributions=torch.rand(0, 12, 13)),
     ValueError, "inputs"),
    ("attributions of wrong shape", dict(attributions=torch.rand(2, 13, 12)), ValueError,
     "attributions"),
    ("attributions for another batch", dict(attributions=torch.rand(3, 12, 13)), ValueError,
     "attributions"),
    ("NaN attributions", dict(attributions=torch.full((2, 12, 13), float("nan"))), ValueError,
     "attributions"),
    ("tuple target", dict(target=(1,)), ValueError, "target"),
    ("target out of range", dict(target=4), ValueError, "target"),
    ("negative target", dict(target=-1), ValueError, "target"),
    ("target list too long", dict(target=[0, 1, 2]), ValueError, "target"),
    ("float target", dict(target=torch.tensor([0.5, 1.0])), ValueError, "target"),
    ("pixels_per_step 0", dict(pixels_per_step=0), ValueError, "pixels_per_step"),
    ("unknown score", dict(score="prob"), ValueError, "score"),
    ("model output not 2-D", dict(forward_func=lambda x: image_model()(x)[:, 0]), ValueError,
     "forward_func"),
]
METRIC_TABLE = [(metric, *case) for metric in (insertion, deletion) for case in METRIC_CASES]


@pytest.mark.parametrize("metric, case, overrides, error, name", METRIC_TABLE,
                         ids=[f"{m.__name__}-{c[0]}" for m, *c in METRIC_TABLE])
def test_metric_bad_input_raises_naming_the_argument(metric, case, overrides, error, name):
    with pytest.raises(error, match=name):
        metric(**{**metric_kwargs(), **overrides})


@pytest.mark.parametrize("metric", [insertion, deletion])
def test_metric_on_a_train_mode_model_works_and_leaves_the_flag(metric):
    kwargs = metric_kwargs()
    net = torch.nn.Sequential(kwargs["forward_func"], torch.nn.Dropout(0.5)).train()
    first = metric(**{**kwargs, "forward_func": net})
    assert net.training and torch.isfinite(first).all()
