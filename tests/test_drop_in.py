"""Our classes where Captum's IntegratedGradients / LayerIntegratedGradients go."""

import inspect

import pytest
import torch
from captum.attr import (
    IntegratedGradients,
    LayerIntegratedGradients,
    LLMGradientAttribution,
    NoiseTunnel,
    TextTokenInput,
)
from language_model import TinyCausalLM, WordTokenizer
from models import LinearNet, SaturatingNet

from captum_idg import (
    AdaptiveIntegratedGradients,
    AdversarialGradientIntegration,
    GuidedIntegratedGradients,
    ImportantDirectionGradientIntegration,
    IntegratedDecisionGradients,
    LayerIntegratedDecisionGradients,
    LeftIntegratedGradients,
)

IG_LIKE = [IntegratedDecisionGradients, AdaptiveIntegratedGradients, LeftIntegratedGradients]
ALL = IG_LIKE + [ImportantDirectionGradientIntegration, GuidedIntegratedGradients,
                 AdversarialGradientIntegration]


def parameters(function, first):
    return list(inspect.signature(function).parameters)[1 : first + 1]


@pytest.mark.parametrize("method", IG_LIKE)
def test_first_eight_parameters_are_integrated_gradients(method):
    assert parameters(method.attribute, 8) == parameters(IntegratedGradients.attribute, 8)
    assert inspect.signature(method.attribute).parameters["method"].default == "adaptive"


def test_layer_parameters_are_layer_integrated_gradients():
    ours, theirs = LayerIntegratedDecisionGradients.attribute, LayerIntegratedGradients.attribute
    assert parameters(ours, 10) == parameters(theirs, 10)
    assert parameters(LayerIntegratedDecisionGradients.__init__, 4) == parameters(
        LayerIntegratedGradients.__init__, 4)


def case(batch=3, seed=2):
    model = SaturatingNet(seed=seed)
    x = torch.randn(batch, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return model, x, model(x).argmax(dim=1)


@pytest.mark.parametrize("method", IG_LIKE)
@pytest.mark.parametrize("rule", ["riemann_left", "riemann_right", "riemann_middle",
                                  "trapezoid", "gausslegendre", "adaptive"])
def test_every_method_value_integrates_the_path(method, rule):
    model, x, target = case()
    coarse, fine = (
        method(model).attribute(x, target=target, n_steps=n, method=rule,
                                return_convergence_delta=True)
        for n in (50, 400)
    )
    assert fine[0].shape == x.shape and torch.isfinite(fine[0]).all()
    # delta, the rule's completeness error on the path (to a* for Left-IG), shrinks
    assert (fine[1].abs() <= coarse[1].abs() + 1e-10).all()
    first_order = rule in ("riemann_left", "riemann_right")
    assert fine[1].abs().max() < (0.2 if first_order else 5e-3)


@pytest.mark.parametrize("rule", ["riemann_middle", "gausslegendre"])
def test_adaptive_ig_with_a_fixed_rule_is_captums_ig(rule):
    model, x, target = case()
    ours = AdaptiveIntegratedGradients(model).attribute(x, target=target, n_steps=20, method=rule)
    theirs = IntegratedGradients(model).attribute(x, target=target, n_steps=20, method=rule)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)  # Captum's nodes are float32


def test_adaptive_ig_delta_is_captums_compute_convergence_delta():
    model, x, target = case()
    aig = AdaptiveIntegratedGradients(model)
    attributions, delta = aig.attribute(x, target=target, n_steps=12,
                                        return_convergence_delta=True)
    captum_delta = aig.compute_convergence_delta(attributions, torch.zeros_like(x), x,
                                                 target=target)
    torch.testing.assert_close(delta, captum_delta)


def image_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Tanh(),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                               torch.nn.Linear(4, 3)).double()


def call(method, model, x, baselines, **kwargs):
    if method is AdversarialGradientIntegration:  # no baseline: bounds broadcast the same way
        low = baselines[:1]
        return method(model).attribute(x, target=1, max_iter=4, input_range=(low, 2.0))
    steps = dict(n_steps=8) if method is not GuidedIntegratedGradients else dict(n_steps=6)
    return method(model).attribute(x, baselines, target=1, **steps, **kwargs)


@pytest.mark.parametrize("method", ALL)
def test_channel_baselines_broadcast_as_in_captum(method):
    model = image_model()
    x = torch.rand(2, 3, 5, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    channel = torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64).view(1, 3, 1, 1)
    torch.testing.assert_close(call(method, model, x, channel),
                               call(method, model, x, channel.expand_as(x).clone()))


def test_channel_baselines_broadcast_for_the_layer_method():
    model = image_model()
    x = torch.rand(2, 3, 5, 5, dtype=torch.float64)
    channel = torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64).view(1, 3, 1, 1)
    layer = LayerIntegratedDecisionGradients(model, model[1])
    torch.testing.assert_close(layer.attribute(x, channel, target=1, n_steps=8),
                               layer.attribute(x, channel.expand_as(x).clone(), target=1,
                                               n_steps=8))


@pytest.mark.parametrize("method", ALL)
def test_multiply_by_inputs_on_every_class(method):
    model, x, target = case()
    local, global_ = method(model, multiply_by_inputs=False), method(model)
    assert not local.multiplies_by_inputs and global_.multiplies_by_inputs
    kwargs = dict(target=target, max_iter=5) if method is AdversarialGradientIntegration else dict(
        target=target, n_steps=12)
    local_attr = local.attribute(x, **kwargs)
    global_attr = global_.attribute(x, **kwargs)
    if method in (ImportantDirectionGradientIntegration, AdversarialGradientIntegration):
        # steps along gradients: the local attribution is the step-weighted mean gradient,
        # on a linear model the gradient itself (AGI integrates minus the true class's)
        linear = LinearNet(seed=1, n_classes=4)
        predicted = linear(x).argmax(1)  # AGI attacks away from the predicted class
        local_linear = method(linear, multiply_by_inputs=False).attribute(x, **{
            **kwargs, "target": predicted})
        sign = -1 if method is AdversarialGradientIntegration else 1
        torch.testing.assert_close(local_linear, sign * linear.linear.weight[predicted].detach())
    else:  # features move one way along these paths: global = local * (x - x')
        torch.testing.assert_close(global_attr, local_attr * x)


def test_layer_multiply_by_inputs():
    model, x, target = case()
    local = LayerIntegratedDecisionGradients(model, model, multiply_by_inputs=False)
    assert not local.multiplies_by_inputs


class TwoHeads(torch.nn.Module):
    """Two independent hidden layers feeding one output."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.left, self.right = torch.nn.Linear(4, 5), torch.nn.Linear(4, 5)
        self.out = torch.nn.Linear(10, 3)

    def forward(self, x):
        return self.out(torch.cat([torch.tanh(self.left(x)), torch.tanh(self.right(x))], 1))


def test_a_list_of_layers_equals_each_layer_alone_when_the_other_is_fixed():
    model = TwoHeads().double()
    x = torch.randn(2, 4, dtype=torch.float64)
    both = LayerIntegratedDecisionGradients(model, [model.left, model.right])
    left, right = both.attribute(x, target=0, n_steps=16, method="gausslegendre")
    assert left.shape == right.shape == (2, 5)
    # on the joint path the layers move together: the sums are IDG's on their concatenation
    with torch.no_grad():
        joint = torch.cat([model.left(x), model.right(x)], 1)
        start = torch.cat([model.left(torch.zeros_like(x)), model.right(torch.zeros_like(x))], 1)

    def from_layers(z):
        return model.out(torch.cat([torch.tanh(z[:, :5]), torch.tanh(z[:, 5:])], 1))

    direct = IntegratedDecisionGradients(from_layers).attribute(
        joint, start, target=0, n_steps=16, method="gausslegendre")
    torch.testing.assert_close(torch.cat([left, right], 1), direct)


def test_grad_kwargs_reach_autograd():
    model = TwoHeads().double()
    x = torch.randn(2, 4, dtype=torch.float64)
    layer = LayerIntegratedDecisionGradients(model, model.left)
    plain = layer.attribute(x, target=0, n_steps=8)
    with pytest.raises(TypeError, match="unexpected"):
        layer.attribute(x, target=0, n_steps=8, grad_kwargs={"no_such_option": True})
    torch.testing.assert_close(
        layer.attribute(x, target=0, n_steps=8, grad_kwargs={"retain_graph": True}), plain)


def test_is_a_layer_integrated_gradients_for_captum():
    model = TwoHeads()
    assert isinstance(LayerIntegratedDecisionGradients(model, model.left),
                      LayerIntegratedGradients)


@pytest.fixture(scope="module")
def language_model():
    return TinyCausalLM().double(), WordTokenizer()


def test_llm_gradient_attribution_takes_layer_idg_unchanged(language_model):
    model, tokenizer = language_model
    prompt = TextTokenInput("the cat sat on", tokenizer)
    ig = LLMGradientAttribution(LayerIntegratedGradients(model, model.embed), tokenizer)
    idg = LLMGradientAttribution(LayerIntegratedDecisionGradients(model, model.embed), tokenizer)
    theirs = ig.attribute(prompt, target="the mat", n_steps=200)
    ours = idg.attribute(prompt, target="the mat", n_steps=64, rescale=True)
    assert ours.token_attr.shape == theirs.token_attr.shape == (2, 5)
    assert ours.output_tokens == theirs.output_tokens == ["the", "mat"]
    # rescaled IDG sums, per generated token, to the change of its log-probability
    torch.testing.assert_close(ours.token_attr.sum(1), theirs.token_attr.sum(1),
                               rtol=1e-4, atol=1e-5)
    raw = idg.attribute(prompt, target="the mat", n_steps=64, rescale=False)
    assert not torch.allclose(raw.token_attr.sum(1), theirs.token_attr.sum(1))


def test_noise_tunnel_passes_method_through():
    model, x, target = case()
    idg = IntegratedDecisionGradients(model)
    plain = idg.attribute(x, target=target, n_steps=10, method="gausslegendre")
    smooth = NoiseTunnel(idg).attribute(x, nt_samples=2, stdevs=1e-12, target=target,
                                        n_steps=10, method="gausslegendre")
    torch.testing.assert_close(smooth, plain)


def test_agi_takes_one_backward_pass_per_step():
    model, x, target = case(seed=4)
    backwards = []

    class Counting(torch.nn.Module):
        def forward(self, z):
            out = model(z)
            if out.requires_grad:
                out.register_hook(lambda grad: backwards.append(len(grad)))
            return out

    AdversarialGradientIntegration(Counting()).attribute(x, target=target, max_iter=3,
                                                         epsilon=1e-3)
    assert backwards == [2 * len(x)] * 3  # both copies of the rows in one backward


@pytest.mark.slow
def test_agi_under_torch_compile():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 4))
    x = torch.randn(3, 6)
    target = net(x).argmax(1)
    expected = AdversarialGradientIntegration(net).attribute(x, target=target, max_iter=4)
    compiled = AdversarialGradientIntegration(torch.compile(net)).attribute(
        x, target=target, max_iter=4)
    torch.testing.assert_close(compiled, expected)


@pytest.mark.parametrize("target", [[(0,), (1,), (0,)], (1,), None])
def test_agi_refuses_targets_that_are_not_one_class_per_example(target):
    model, x, _ = case()
    with pytest.raises(ValueError, match="target"):
        AdversarialGradientIntegration(model).attribute(x, target=target)


@pytest.mark.parametrize("cls", ALL)
def test_inputs_with_only_a_batch_dimension(cls):
    # Captum's IG tests feed (N,) inputs; the engine used to flatten from dimension 2
    def model(x):
        return torch.stack([(3 * x).sigmoid() * 2, x**2], dim=1).reshape(len(x), 2)

    x = torch.rand(5, dtype=torch.float64, generator=torch.Generator().manual_seed(3)) + 0.5
    flat = cls(model).attribute(x, target=0)
    column = cls(model).attribute(x[:, None], target=0)[:, 0]
    assert flat.shape == (5,)
    torch.testing.assert_close(flat, column)  # the same as one feature per example
    if cls is AdaptiveIntegratedGradients:
        captum = IntegratedGradients(model).attribute(x, target=0)
        ours = cls(model).attribute(x, target=0, method="gausslegendre")
        torch.testing.assert_close(ours, captum, atol=1e-8, rtol=1e-7)


@pytest.mark.parametrize("cls", ALL)
def test_attribute_future_is_refused_as_captum_refuses_it(cls):
    with pytest.raises(NotImplementedError, match="attribute_future"):
        cls(LinearNet()).attribute_future()
    with pytest.raises(NotImplementedError, match="attribute_future"):
        IntegratedGradients(LinearNet()).attribute_future()


def test_integer_baselines_as_captum_takes_them():
    model = LinearNet()
    x = torch.rand(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) + 2
    baselines = torch.ones(4, 6, dtype=torch.int64)
    captum = IntegratedGradients(model).attribute(x, baselines=baselines, target=1)
    ours = AdaptiveIntegratedGradients(model).attribute(x, baselines=baselines, target=1,
                                                        method="gausslegendre")
    torch.testing.assert_close(ours, captum)
    idg = IntegratedDecisionGradients(model)
    torch.testing.assert_close(idg.attribute(x, baselines=baselines, target=1),
                               idg.attribute(x, baselines=baselines.double(), target=1))


@pytest.mark.parametrize("cls", ALL + [LayerIntegratedDecisionGradients])
@pytest.mark.parametrize("fail_on_call", [1, 2])
def test_the_models_out_of_memory_reaches_the_caller_as_it_is(cls, fail_on_call):
    # code that catches a CUDA out-of-memory to retry with a smaller batch must see it
    linear = LinearNet()
    calls = []

    class Hungry(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = linear.linear

        def forward(self, z):
            calls.append(len(z))
            if len(calls) >= fail_on_call:
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
            return self.linear(z)

    model = Hungry()
    explainer = cls(model, model.linear) if cls is LayerIntegratedDecisionGradients else cls(model)
    x = torch.rand(2, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with pytest.raises(torch.OutOfMemoryError, match="simulated"):
        explainer.attribute(x, target=0)


@pytest.mark.parametrize("rule", ["riemann_left", "riemann_right", "riemann_middle",
                                  "riemann_trapezoid", "gausslegendre"])
def test_captums_rules_give_captums_numbers(rule):
    model, x, target = case()
    captum = IntegratedGradients(model).attribute(x, target=target, n_steps=50, method=rule,
                                                  return_convergence_delta=True)
    ours = AdaptiveIntegratedGradients(model).attribute(x, target=target, n_steps=50,
                                                        method=rule,
                                                        return_convergence_delta=True)
    # Captum rounds its step sizes to float32: agreement to that, not to float64
    torch.testing.assert_close(ours[0], captum[0], atol=1e-6, rtol=1e-7)
    if rule == "riemann_trapezoid":  # its weights sum to (n - 1) / n: 2% from exact
        exact = AdaptiveIntegratedGradients(model).attribute(x, target=target, n_steps=50,
                                                             method="trapezoid")
        assert not torch.allclose(exact, captum[0], rtol=1e-3)


@pytest.mark.parametrize("rule", ["gausslegendre", "adaptive"])
def test_the_delta_is_captums_compute_convergence_delta(rule):
    # Captum's own IG tests compare the two with tolerance 0, in float32
    model = SaturatingNet(seed=2).float()
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(2))
    aig = AdaptiveIntegratedGradients(model)
    attributions, delta = aig.attribute(x, target=1, n_steps=20, method=rule,
                                        return_convergence_delta=True)
    assert delta.dtype == torch.float32
    assert torch.equal(delta, aig.compute_convergence_delta(attributions, torch.zeros_like(x), x,
                                                            target=1))
