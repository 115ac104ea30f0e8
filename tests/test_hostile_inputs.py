"""Hostile calls: models that break on part of the path, train mode, odd arguments.

Each gets a ValueError that names the argument (or the examples and where on
the path), an announced warning, or a correct result; never NaN, silent
garbage or a changed model."""

import copy

import pytest
import torch
from torch import nn

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

STRAIGHT = [IntegratedDecisionGradients, AdaptiveIntegratedGradients, LeftIntegratedGradients,
            ImportantDirectionGradientIntegration]
ALL = STRAIGHT + [GuidedIntegratedGradients, AdversarialGradientIntegration]


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))


def call(method, model, **overrides):
    kwargs = dict(inputs=torch.ones(2, 4), target=1)
    kwargs.update(dict(max_iter=3) if method is AdversarialGradientIntegration else dict(
        n_steps=8))
    kwargs.update(overrides)
    return method(model).attribute(**kwargs)


class BreaksBeyond(nn.Module):
    """NaN (and, with ``zero_gradient``, a zero gradient there) once the input's
    sum passes ``edge``: part of the path from 0 to the input breaks."""

    def __init__(self, edge=2.0, zero_gradient=False, inf=False):
        super().__init__()
        self.model, self.edge, self.zero_gradient, self.inf = net(), edge, zero_gradient, inf

    def forward(self, z):
        out = self.model(z)
        broken = (z.sum(dim=1, keepdim=True) > self.edge).expand_as(out)
        bad = torch.full_like(out, float("inf") if self.inf else float("nan"))
        if self.zero_gradient:
            return torch.where(broken, bad, out)
        return out + torch.where(broken, bad * z.sum(dim=1, keepdim=True), torch.zeros_like(out))


@pytest.mark.parametrize("method", ALL)
@pytest.mark.parametrize("zero_gradient", [False, True])
@pytest.mark.parametrize("inf", [False, True])
def test_a_model_broken_on_part_of_the_path_is_named_where(method, zero_gradient, inf):
    model = BreaksBeyond(zero_gradient=zero_gradient, inf=inf)
    x = torch.stack([torch.full((4,), 0.1), torch.ones(4)])  # example 1 crosses the edge
    with pytest.raises(ValueError, match=r"NaN or inf .*example 1 at"):
        call(method, model, inputs=x)


@pytest.mark.parametrize("metric", [insertion, deletion])
def test_metrics_with_a_nan_model_say_so(metric):
    def model(images):
        out = images.flatten(1)[:, :3] * 1.0
        return torch.where(images.flatten(1)[:, :1] > 0.5, float("nan"), out)

    images = torch.rand(2, 3, 6, 6)
    images[1, 0, 0, 0] = 0.9
    with pytest.raises(ValueError, match="NaN or inf"):
        metric(model, images, torch.rand(2, 6, 6), target=0)


def batchnorm_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Dropout(0.3), nn.Linear(6, 3))


@pytest.mark.parametrize("method", ALL)
def test_train_mode_is_announced(method):
    model = batchnorm_net().train()
    with pytest.warns(UserWarning, match="training mode with BatchNorm1d, Dropout"):
        call(method, model, inputs=torch.randn(3, 4))
    evaluated = batchnorm_net().eval()
    before = copy.deepcopy(evaluated.state_dict())
    first = call(method, evaluated, inputs=torch.randn(3, 4, generator=torch.Generator()
                                                       .manual_seed(0)))
    second = call(method, evaluated, inputs=torch.randn(3, 4, generator=torch.Generator()
                                                        .manual_seed(0)))
    torch.testing.assert_close(first, second)  # in eval mode nothing changes
    for name, value in evaluated.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_train_mode_is_announced_by_the_layer_method_and_metrics():
    model = batchnorm_net().train()
    with pytest.warns(UserWarning, match="training mode"):
        LayerIntegratedDecisionGradients(model, model[0]).attribute(torch.randn(3, 4), target=1,
                                                                     n_steps=4)
    image_model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 36, 3), nn.Dropout(0.5)).train()
    for metric, kwargs in ((insertion, dict(blur_kernel_size=3)), (deletion, {})):
        with pytest.warns(UserWarning, match="training mode"):
            metric(image_model, torch.rand(2, 3, 6, 6), torch.rand(2, 6, 6), target=0, **kwargs)


@pytest.mark.parametrize("overrides, name", [
    (dict(epsilon=float("nan")), "epsilon"), (dict(epsilon=float("inf")), "epsilon"),
    (dict(epsilon=-0.1), "epsilon"), (dict(input_range=(float("nan"), 1.0)), "input_range"),
    (dict(input_range=(1.0, -1.0)), "input_range"),
    (dict(input_range=(torch.zeros(3), 1.0)), "input_range"),
    (dict(input_range=(0.0,)), "input_range"), (dict(input_range="0-1"), "input_range"),
    (dict(false_classes=1.5), "false_classes"),
])
def test_agi_arguments(overrides, name):
    with pytest.raises(ValueError, match=name):
        call(AdversarialGradientIntegration, net(), **overrides)


def test_agi_refuses_an_attack_that_turns_nan():
    model = net()

    class Nan(nn.Module):
        def forward(self, z):
            return torch.where(z.abs().amax(1, keepdim=True) > 1.02, float("nan"), model(z))

    x = torch.ones(2, 4)
    with pytest.raises(ValueError, match="NaN or inf on the attack"):
        AdversarialGradientIntegration(Nan()).attribute(x, target=model(x).argmax(1),
                                                        epsilon=0.05, max_iter=5)


@pytest.mark.parametrize("method", STRAIGHT + [GuidedIntegratedGradients])
@pytest.mark.parametrize("args, error, match", [
    (torch.ones(3, 1), ValueError, r"additional_forward_args\[0\] has 3 rows for a batch of 2"),
    # the model's own error, with a note that names what it was called with
    ("text", TypeError, r"forward_func failed on the first path points \(called with Tensor "
                        r"\(\d+, 4\), str"),
])
def test_bad_forward_arguments(method, args, error, match):
    class Scaled(nn.Module):
        def forward(self, z, scale):
            return net()(z) * scale

    with pytest.raises(error, match=match):
        call(method, Scaled(), additional_forward_args=args)


@pytest.mark.parametrize("method", STRAIGHT)
def test_an_input_without_a_batch_dimension(method):
    # (4,) is four examples to Captum: the model's own error, noted with the shapes
    with pytest.raises(RuntimeError, match="dimension 0 of inputs is the batch"):
        call(method, net(), inputs=torch.ones(4))


@pytest.mark.parametrize("method", ALL)
def test_an_output_without_grad_fn(method):
    model = net()
    with pytest.raises(ValueError, match="grad_fn"):
        call(method, lambda z: model(z).detach())


def test_layer_method_with_inputs_its_model_cannot_take():
    model = net()
    layer = LayerIntegratedDecisionGradients(model, model[1])
    for inputs in (torch.ones(2, 4, dtype=torch.long), torch.ones(2, 4, dtype=torch.bool)):
        # the model's own error, as Captum's LayerIG gives it, with a note of the inputs
        with pytest.raises(RuntimeError, match=r"forward_func failed on inputs \[\(2, 4\)\]"):
            layer.attribute(inputs, target=1, n_steps=4)


def test_layer_method_with_a_layer_the_model_never_runs():
    model = net()
    with pytest.raises(AssertionError, match="the layer did not run"):  # Captum's, noted
        LayerIntegratedDecisionGradients(model, nn.Linear(4, 4)).attribute(
            torch.ones(2, 4), target=1, n_steps=4)


def test_left_ig_when_the_baseline_already_reaches_the_threshold():
    class Falling(nn.Module):  # the logit is largest at the baseline
        def forward(self, z):
            logit = 5 - z.sum(dim=1)
            return torch.stack([logit, -logit], dim=1)

    x = torch.ones(2, 4)
    with pytest.warns(UserWarning, match=r"baseline of 2 of 2 examples \(0, 1\) already reaches"):
        attributions = LeftIntegratedGradients(Falling()).attribute(x, target=0, n_steps=8)
    # the first probe interval of 8 points: the logit falls by 4/7 there
    torch.testing.assert_close(attributions.sum(dim=1), torch.full((2,), -4 / 7))


@pytest.mark.parametrize("rescale", [True, False])
def test_inputs_so_large_that_no_sample_sees_a_change_warn(rescale):
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh())
    x = torch.full((2, 4), 1e30)  # the logit jumps within the first 1e-29 of the path
    with pytest.warns(UserWarning, match=r"the samples of 2 of 2 examples \(0, 1\) saw no"):
        IntegratedDecisionGradients(model).attribute(x, target=1, n_steps=8, rescale=rescale)


SCORES = [(dict(score=lambda out: out.softmax(1)[:, 0]), "score"),
          (dict(score=lambda out: "high"), "score")]
METRIC_ARGUMENTS = [(insertion, *case) for case in SCORES + [
    (dict(blur_kernel_size=3.0), "blur_kernel_size"),
    (dict(blur_sigma=float("nan")), "blur_sigma"),
    (dict(blur_padding="mirror"), "blur_padding"),
]] + [(deletion, *case) for case in SCORES + [
    (dict(baseline=float("nan")), "baseline"),
    (dict(baseline="black"), "baseline"),
]]


@pytest.mark.parametrize("metric, overrides, name", METRIC_ARGUMENTS)
def test_metric_arguments(metric, overrides, name):
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 36, 3))
    with pytest.raises(ValueError, match=name):
        metric(model, torch.rand(2, 3, 6, 6), torch.rand(2, 6, 6), target=0, **overrides)


@pytest.mark.parametrize("method", [IntegratedDecisionGradients, AdaptiveIntegratedGradients])
def test_many_steps_without_internal_batch_size_are_split_into_passes(method):
    model = net()
    rows = []
    model.register_forward_hook(lambda m, i, o: rows.append(i[0].shape[0]))
    attributions = method(model).attribute(torch.ones(2, 4), target=1, n_steps=100_000,
                                           method="riemann_middle")
    end_points = 2 * 2 if method is IntegratedDecisionGradients else 0  # rescale's, one pass
    assert torch.isfinite(attributions).all() and sum(rows) == 2 * 100_000 + end_points
    small = method(model).attribute(torch.ones(2, 4), target=1, n_steps=64,
                                    method="gausslegendre")
    torch.testing.assert_close(attributions, small, rtol=1e-4, atol=1e-6)


class _StepBetweenSamples(torch.nn.Module):
    """A logit that jumps by 10 at alpha = 0.5 of the path from 0 to 1, between
    the midpoint samples of 4 steps, flat everywhere else."""

    def forward(self, x):
        logit = 10 * torch.sigmoid(1e6 * (x.mean(dim=1) - 0.5))
        return torch.stack([logit, -logit], dim=1)


@pytest.mark.parametrize("cls", [IntegratedDecisionGradients, AdaptiveIntegratedGradients,
                                 LeftIntegratedGradients])
def test_samples_that_see_no_change_warn_and_say_why(cls):
    x = torch.ones(2, 3, dtype=torch.float64)
    x[1] = 0.2  # never crosses the step: F(x) = F(x'), no warning for it
    with pytest.warns(UserWarning, match=r"of 2 examples \(0\) saw no change of the target output"):
        attributions = cls(_StepBetweenSamples()).attribute(x, target=0, n_steps=4,
                                                             method="riemann_middle")
    assert torch.equal(attributions, torch.zeros_like(x))


class _FlatStep(torch.nn.Module):
    """Class 0: 10 where the mean of the features is below 0.45 and 0 above, a
    step with zero gradient (float64) at every point the tests below visit;
    class 1: three times the mean."""

    def forward(self, x):
        mean = x.mean(dim=1)
        return torch.stack([10 * torch.sigmoid(1e6 * (0.45 - mean)), 3 * mean], dim=1)


def test_idgi_and_guided_ig_warn_when_no_sample_sees_the_change():
    x = torch.ones(2, 3, dtype=torch.float64)
    x[1] = 0.2  # never crosses the step: no change, no warning
    for attribute in (
        lambda: ImportantDirectionGradientIntegration(_FlatStep()).attribute(
            x, target=0, n_steps=4),
        lambda: GuidedIntegratedGradients(_FlatStep()).attribute(
            x, target=0, n_steps=4, max_dist=0.0),
    ):
        with pytest.warns(UserWarning, match=r"examples \(0\) saw no change of the target"):
            attributions = attribute()
        assert torch.equal(attributions[0], torch.zeros(3, dtype=torch.float64))


def test_agi_warns_when_the_true_class_changes_unseen_along_the_attack():
    x = torch.full((2, 3), 0.31, dtype=torch.float64)  # the attack crosses 0.45 between steps
    with pytest.warns(UserWarning, match=r"examples \(0, 1\) saw no change"):
        attributions = AdversarialGradientIntegration(_FlatStep()).attribute(
            x, target=0, false_classes=[1], epsilon=0.05, max_iter=10)
    assert torch.equal(attributions, torch.zeros_like(x))
