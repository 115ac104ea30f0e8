"""AGI: the true class's gradient integrated along a signed-gradient attack."""

import pytest
import torch
from captum.attr import NoiseTunnel
from models import LinearNet, SaturatingNet, TwoInputNet

from captum_idg import AdversarialGradientIntegration as AGI


def hand_computed_linear_agi(weight, bias, x, true, false, epsilon, max_iter, low=None, high=None):
    """The paper's cumulative path on F = W z + b, one step at a time."""
    z, attr = x.clone(), torch.zeros_like(x)
    for _ in range(max_iter):
        if int((weight @ z + bias).argmax()) == false:
            break
        new = z + epsilon * torch.sign(weight[false])
        if low is not None:
            new = new.clamp(low, high)
        attr -= weight[true] * (new - z)
        z = new
    return attr


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("clamp", [False, True])
def test_linear_model_matches_hand_computed_path(seed, clamp):
    model = LinearNet(seed=seed, n_classes=4)
    weight, bias = model.linear.weight.detach(), model.linear.bias.detach()
    x = torch.rand(3, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    true = model(x).argmax(1)
    bounds = (0.0, 1.0) if clamp else None
    ours = AGI(model).attribute(x, target=true, epsilon=0.05, max_iter=30, false_classes=2,
                                input_range=bounds)
    scores = model(x).detach()
    scores[torch.arange(3), true] = -torch.inf
    for b in range(3):
        falses = scores[b].topk(2).indices.tolist()
        expected = torch.stack([
            hand_computed_linear_agi(weight, bias, x[b], int(true[b]), f, 0.05, 30,
                                     *(bounds or (None, None)))
            for f in falses
        ]).mean(0)
        torch.testing.assert_close(ours[b], expected)
        assert expected.abs().sum() > 0


def test_attack_stops_when_the_false_class_wins():
    model = LinearNet(seed=1, n_classes=3)
    x = torch.rand(1, 6, dtype=torch.float64)
    true = int(model(x).argmax())
    false = [c for c in range(3) if c != true][0]
    few = AGI(model).attribute(x, target=true, epsilon=0.5, max_iter=1000, false_classes=[false])
    many = AGI(model).attribute(x, target=true, epsilon=0.5, max_iter=2000, false_classes=[false])
    torch.testing.assert_close(few, many)  # stopped long before either limit


def test_per_example_false_classes_chunks_and_batch():
    model = SaturatingNet(seed=2, gain=2.0, n_classes=4)
    x = torch.randn(3, 6, dtype=torch.float64)
    target = model(x).argmax(1)
    false = torch.stack([(target + 1) % 4, (target + 2) % 4], dim=1)
    agi = AGI(model)
    full = agi.attribute(x, target=target, false_classes=false, max_iter=5)
    torch.testing.assert_close(
        agi.attribute(x, target=target, false_classes=false, max_iter=5, internal_batch_size=4),
        full,
    )
    for b in range(3):
        single = agi.attribute(x[b : b + 1], target=int(target[b]),
                               false_classes=false[b : b + 1], max_iter=5)
        torch.testing.assert_close(full[b : b + 1], single)


def test_bounds_per_example_equal_each_example_run_with_its_own():
    model = SaturatingNet(seed=5)
    x = torch.randn(3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    low = x - torch.tensor([0.01, 0.05, 0.2], dtype=torch.float64)[:, None]
    high = x + 0.1
    target = model(x).argmax(1)
    agi = AGI(model)
    together = agi.attribute(x, target=target, input_range=(low, high), max_iter=6,
                             internal_batch_size=2)
    for b in range(3):
        alone = agi.attribute(x[b : b + 1], target=int(target[b]), max_iter=6,
                              input_range=(low[b : b + 1], high[b : b + 1]))
        torch.testing.assert_close(together[b : b + 1], alone)
    with pytest.raises(ValueError, match="does not broadcast"):
        agi.attribute(x, target=target, input_range=(low[:2], high[:2]))


def test_tuple_inputs_tensor_bounds_and_noise_tunnel():
    model = TwoInputNet(seed=3)
    x1, x2 = torch.rand(2, 4, dtype=torch.float64), torch.rand(2, 2, 3, dtype=torch.float64)
    low, high = torch.zeros(1), torch.ones(1)
    a1, a2 = AGI(model).attribute((x1, x2), target=0, additional_forward_args=0.5,
                                  input_range=(low, high), max_iter=4)
    assert a1.shape == x1.shape and a2.shape == x2.shape and torch.isfinite(a1).all()
    with torch.no_grad():
        smooth = NoiseTunnel(AGI(model)).attribute(
            (x1, x2), nt_samples=2, stdevs=1e-12, target=0, additional_forward_args=0.5,
            input_range=(low, high), max_iter=4,
        )
    torch.testing.assert_close(smooth[0], a1)


@pytest.mark.parametrize("bad, name", [
    (dict(target=None), "target"), (dict(epsilon=0.0), "epsilon"),
    (dict(max_iter=0), "max_iter"), (dict(false_classes=0), "false_classes"),
    (dict(false_classes=3), "false_classes"), (dict(false_classes=[0]), "false_classes"),
    (dict(false_classes=[7]), "false_classes"), (dict(target=3), "target"),
])
def test_bad_arguments(bad, name):
    kwargs = dict(inputs=torch.randn(2, 6, dtype=torch.float64), target=0)
    kwargs.update(bad)
    with pytest.raises(ValueError, match=name):
        AGI(SaturatingNet(seed=0)).attribute(**kwargs)


def test_single_class_model_has_no_false_class():
    with pytest.raises(ValueError, match="false_classes"):
        AGI(torch.nn.Linear(6, 1).double()).attribute(torch.randn(2, 6, dtype=torch.float64),
                                                       target=0)
