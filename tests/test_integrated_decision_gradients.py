"""IDG against an independent dense float64 reference, and its Captum contract."""

import pytest
import torch
from authors_idg import authors_idg
from captum.attr import IntegratedGradients
from models import LinearNet, SaturatingNet, TwoInputNet, dense_path_reference

from captum_idg import AdaptiveIntegratedGradients, IntegratedDecisionGradients

SEEDS = range(4)


def saturating_case(seed: int, batch: int = 1):
    model = SaturatingNet(seed=seed)
    g = torch.Generator().manual_seed(100 + seed)
    x = torch.randn(batch, 6, generator=g, dtype=torch.float64)
    target = model(x).argmax(dim=1)
    return model, x, target


def relative_error(estimate, reference):
    return ((estimate - reference).norm() / reference.norm()).item()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("method", ["adaptive", "riemann_middle", "gausslegendre"])
def test_idg_converges_to_dense_reference(seed, method):
    model, x, target = saturating_case(seed)
    t = int(target)
    _, reference = dense_path_reference(model, x[0], torch.zeros(6, dtype=torch.float64), t)
    idg = IntegratedDecisionGradients(model)
    errors = [relative_error(idg.attribute(x, target=t, n_steps=n, method=method,
                                           rescale=False)[0], reference)
              for n in (16, 32, 64)]
    floor = 5e-6  # the 20 000-point reference's own error (measured <= 2.6e-6)
    assert errors[0] > errors[1] and errors[2] < max(errors[1], floor), errors
    # measured, adaptive (13 gradients and a probe of 6 points at 16 steps, 29 and 6
    # at 32, a probe point charged half a gradient): 16 steps <= 2.0e-2, 32 steps
    # <= 1.3e-4 (with 10 probe points at 32 steps, before 2026-12-07: <= 6.3e-5)
    if method == "adaptive":
        assert errors[0] < 3e-2 and errors[1] < 2e-4, errors


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("probe", ["default", "half"])
def test_adaptive_beats_fixed_rules_on_a_saturating_model(seed, probe):
    model, x, target = saturating_case(seed)
    t = int(target)
    _, reference = dense_path_reference(model, x[0], torch.zeros(6, dtype=torch.float64), t)
    idg = IntegratedDecisionGradients(model)
    for n in (16, 32):
        n_probe_steps = None if probe == "default" else n // 2
        adaptive = relative_error(
            idg.attribute(x, target=t, n_steps=n, n_probe_steps=n_probe_steps, rescale=False),
            reference)
        midpoint = relative_error(
            idg.attribute(x, target=t, n_steps=n, method="riemann_middle", rescale=False),
            reference)
        # measured adaptive / midpoint error over seeds 0-3, the probe paid for out
        # of n_steps: <= 0.26 at 16 steps (<= 0.005 but for seed 3), <= 0.028 at 32
        assert adaptive < (0.35 if n == 16 else 0.1) * midpoint, (n, adaptive, midpoint)


def test_linear_model_closed_form():
    # F = w.z + c: IDG_i = d_i w_i (w.d), and with rescale=True it equals IG exactly
    model = LinearNet(seed=1)
    x = torch.randn(5, 6, dtype=torch.float64)
    baseline = torch.randn(1, 6, dtype=torch.float64)
    w = model.linear.weight[2].detach()
    d = x - baseline
    expected = d * w * (d @ w)[:, None]
    idg = IntegratedDecisionGradients(model)
    for method in IntegratedDecisionGradients.methods[:-1]:  # all but the authors' reference
        got = idg.attribute(x, baseline, target=2, n_steps=7, method=method, rescale=False)
        # Captum's riemann_trapezoid weights sum to (n - 1) / n, as in Captum's IG
        torch.testing.assert_close(got, expected * (6 / 7 if method == "riemann_trapezoid"
                                                    else 1))
    rescaled = idg.attribute(x, baseline, target=2, n_steps=7, rescale=True)
    ig = IntegratedGradients(model).attribute(x, baseline, target=2, n_steps=7)
    torch.testing.assert_close(rescaled, ig)


@pytest.mark.parametrize("seed", SEEDS)
def test_rescale_gives_completeness_and_keeps_ranking(seed):
    model, x, target = saturating_case(seed, batch=3)
    idg = IntegratedDecisionGradients(model)
    raw = idg.attribute(x, target=target, n_steps=32)
    rescaled = idg.attribute(x, target=target, n_steps=32, rescale=True)
    change = model(x).gather(1, target[:, None])[:, 0] - model(torch.zeros_like(x)).gather(
        1, target[:, None]
    )[:, 0]
    torch.testing.assert_close(rescaled.sum(dim=1), change.detach())
    ratio = rescaled / raw
    torch.testing.assert_close(ratio, ratio[:, :1].expand_as(ratio))


@pytest.mark.parametrize("seed", SEEDS)
def test_delta_is_the_completeness_error_of_ig_on_the_same_schedule(seed):
    model, x, target = saturating_case(seed, batch=2)
    idg = IntegratedDecisionGradients(model)
    ends = model(torch.stack([torch.zeros_like(x), x])).detach()
    change = (ends[1] - ends[0]).gather(1, target[:, None])[:, 0]
    for method, ig in (
        ("adaptive", AdaptiveIntegratedGradients(model)),
        ("riemann_middle", IntegratedGradients(model)),
        ("gausslegendre", IntegratedGradients(model)),
    ):
        _, delta = idg.attribute(
            x, target=target, n_steps=8, method=method, return_convergence_delta=True
        )
        ig_attr = ig.attribute(x, target=target, n_steps=8, method=method)
        # Captum keeps its nodes and weights in float32
        torch.testing.assert_close(delta, ig_attr.sum(dim=1) - change, rtol=1e-5, atol=1e-6)
    _, small = idg.attribute(x, target=target, n_steps=256, return_convergence_delta=True)
    assert small.abs().max() < 1e-3


def test_batch_equals_each_example_alone():
    model, x, target = saturating_case(7, batch=5)
    baselines = torch.randn(5, 6, dtype=torch.float64) * 0.1
    idg = IntegratedDecisionGradients(model)
    batched, delta = idg.attribute(
        x, baselines, target=target, n_steps=20, return_convergence_delta=True
    )
    for b in range(5):
        single, single_delta = idg.attribute(
            x[b : b + 1], baselines[b : b + 1], target=int(target[b]), n_steps=20,
            return_convergence_delta=True,
        )
        torch.testing.assert_close(batched[b : b + 1], single)
        torch.testing.assert_close(delta[b : b + 1], single_delta)


@pytest.mark.parametrize("internal_batch_size", [1, 3, 4, 7, 12, 40, 1000])
@pytest.mark.parametrize("method", ["adaptive", "riemann_middle", "reference"])
def test_internal_batch_size_does_not_change_the_result(internal_batch_size, method):
    model, x, target = saturating_case(2, batch=4)
    idg = IntegratedDecisionGradients(model)
    full = idg.attribute(x, target=target.tolist(), n_steps=10, method=method)
    chunked = idg.attribute(
        x, target=target.tolist(), n_steps=10, method=method,
        internal_batch_size=internal_batch_size,
    )
    torch.testing.assert_close(chunked, full)


def test_internal_batch_size_bounds_each_forward_pass():
    model, x, target = saturating_case(2, batch=4)
    sizes = {True: [], False: []}
    model.register_forward_hook(
        lambda m, i, o: sizes[torch.is_grad_enabled()].append(i[0].shape[0]))
    IntegratedDecisionGradients(model).attribute(
        x, target=target, n_steps=40, internal_batch_size=12
    )
    # gradients: 37 steps (40 less the probe's cost, 6 / 2) x 4 examples in
    # chunks of 3 steps, the last of 1; the probe: the default 6 points, then
    # refinement rounds, in chunks of at most 3 steps
    assert sizes[True] == [12] * 12 + [4]
    assert sizes[False][:2] == [12, 12] and max(sizes[False]) == 12


@pytest.mark.parametrize("n_steps, probe_steps", [(2, 2), (5, 5), (16, 6), (50, 6), (128, 16)])
def test_default_probe_is_an_eighth_of_n_steps_but_at_least_6(n_steps, probe_steps):
    model = LinearNet(seed=1)  # the logit moves evenly: no refinement round
    x = torch.randn(2, 6, dtype=torch.float64)
    sizes = []
    model.register_forward_hook(
        lambda m, i, o: None if torch.is_grad_enabled() else sizes.append(i[0].shape[0])
    )
    IntegratedDecisionGradients(model).attribute(x, target=1, n_steps=n_steps)
    assert sum(sizes) == probe_steps * 2


def test_tuple_inputs_and_additional_forward_args():
    model = TwoInputNet(seed=0)
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(3, 4, generator=g, dtype=torch.float64)
    x2 = torch.randn(3, 2, 3, generator=g, dtype=torch.float64)
    base = (torch.zeros(1, 4, dtype=torch.float64), 0.5)
    idg = IntegratedDecisionGradients(model)
    a1, a2 = idg.attribute((x1, x2), base, target=torch.tensor([0, 2, 1]),
                           additional_forward_args=0.7, n_steps=4000, method="riemann_middle",
                           rescale=False)
    assert a1.shape == x1.shape and a2.shape == x2.shape
    # dense reference over the concatenated features
    flat = torch.cat([x1, x2.flatten(1)], dim=1)
    flat_base = torch.cat([base[0].expand(3, 4), torch.full((3, 6), 0.5, dtype=torch.float64)], 1)

    def flat_model(z):
        return model(z[:, :4], z[:, 4:].view(-1, 2, 3), 0.7)

    for b, t in enumerate([0, 2, 1]):
        _, ref = dense_path_reference(flat_model, flat[b], flat_base[b], t)
        got = torch.cat([a1[b], a2[b].flatten()])
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)


def test_multiply_by_inputs_false_gives_the_local_integral():
    model, x, target = saturating_case(1, batch=2)
    idg_global = IntegratedDecisionGradients(model)
    idg_local = IntegratedDecisionGradients(model, multiply_by_inputs=False)
    assert not idg_local.multiplies_by_inputs and idg_global.multiplies_by_inputs
    base = torch.full_like(x, 0.2)
    glob = idg_global.attribute(x, base, target=target, n_steps=12)
    loc = idg_local.attribute(x, base, target=target, n_steps=12)
    torch.testing.assert_close(glob, loc * (x - base))


def test_flat_logit_returns_zeros_not_nan():
    model = torch.nn.Linear(6, 2).double()
    with torch.no_grad():
        model.weight.zero_()
    x = torch.randn(3, 6, dtype=torch.float64)
    idg = IntegratedDecisionGradients(model)
    for rescale in (False, True):
        attr, delta = idg.attribute(x, target=1, rescale=rescale, return_convergence_delta=True)
        assert torch.equal(attr, torch.zeros_like(x))
        assert torch.equal(delta, torch.zeros(3, dtype=torch.float64))


def test_float32_agrees_with_float64():
    model, x, target = saturating_case(3, batch=2)
    idg64 = IntegratedDecisionGradients(model).attribute(x, target=target, n_steps=32)
    model32 = SaturatingNet(seed=3).float()
    idg32 = IntegratedDecisionGradients(model32).attribute(x.float(), target=target, n_steps=32)
    assert idg32.dtype == torch.float32
    torch.testing.assert_close(idg32.double(), idg64, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("saturating", [False, True])
def test_gradient_evaluations_are_n_steps_less_the_probes_cost(saturating):
    model, x, target = saturating_case(0, batch=3)
    if not saturating:  # a linear logit: no probe refinement
        model, target = LinearNet(seed=0), 1
    rows = {"grad": 0, "no_grad": 0}

    def count(module, inputs, output):
        rows["grad" if torch.is_grad_enabled() else "no_grad"] += inputs[0].shape[0]

    model.register_forward_hook(count)
    IntegratedDecisionGradients(model).attribute(x, target=target, n_steps=17, n_probe_steps=9)
    assert rows["grad"] == (17 - 5) * 3  # 9 probe points cost 5 gradient evaluations (4.5)
    # the probe, then at most two refinement rounds of 4 intervals x 3 points
    refined = rows["no_grad"] - 9 * 3
    assert refined == 0 if not saturating else 0 < refined <= 2 * 12 * 3


@pytest.mark.parametrize("seed", SEEDS)
def test_reference_method_is_the_authors_algorithm(seed):
    model, x, target = saturating_case(seed, batch=3)
    baseline = torch.full((1, 6), 0.1, dtype=torch.float64)
    ours = IntegratedDecisionGradients(model).attribute(
        x, baseline, target=target, n_steps=24, method="reference", internal_batch_size=20)
    for b in range(3):
        theirs = authors_idg(x[b], model, 24, baseline[0], int(target[b]))
        torch.testing.assert_close(ours[b], theirs, rtol=1e-4, atol=1e-6)


def test_reference_probes_n_steps_points_and_refuses_another_probe():
    model, x, target = saturating_case(0, batch=2)
    idg = IntegratedDecisionGradients(model)
    plain = idg.attribute(x, target=target, n_steps=12, method="reference")
    same = idg.attribute(x, target=target, n_steps=12, method="reference", n_probe_steps=12)
    torch.testing.assert_close(plain, same)
    with pytest.raises(ValueError, match="n_probe_steps"):
        idg.attribute(x, target=target, n_steps=12, method="reference", n_probe_steps=8)
