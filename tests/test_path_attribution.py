"""The shared template: tolerance mode, rescaling, the schedule hooks."""

import statistics

import pytest
import torch
from models import LinearNet, SaturatingNet, dense_path_reference

from captum_idg import AdaptiveIntegratedGradients, IntegratedDecisionGradients
from captum_idg.attr import _tolerance
from captum_idg.attr.schedules import default_probe_steps
from captum_idg.testing import FRESH_KINDS, fresh_suite

GAINS = (3, 6, 12, 24)


def saturating_suite():
    """16 examples: SaturatingNet of four steepnesses, four inputs each."""
    for gain in GAINS:
        for seed in range(4):
            model = SaturatingNet(seed=seed, gain=gain)
            x = torch.randn(1, 6, generator=torch.Generator().manual_seed(300 + seed),
                            dtype=torch.float64)
            yield model, x, int(model(x).argmax())


def relative_error(estimate, reference):
    return ((estimate - reference).norm() / reference.norm()).item()


@pytest.mark.parametrize("method", [IntegratedDecisionGradients, AdaptiveIntegratedGradients])
def test_tolerance_meets_its_error_against_a_dense_reference(method):
    errors, evaluations, converged = [], [], []
    for model, x, target in saturating_suite():
        ig_ref, idg_ref = dense_path_reference(model, x[0], torch.zeros(6, dtype=torch.float64),
                                               target)
        explainer = method(model)
        raw = dict(rescale=False) if method is IntegratedDecisionGradients else {}
        attributions = explainer.attribute(x, target=target, n_steps=1024, tolerance=1e-3, **raw)
        reference = idg_ref if method is IntegratedDecisionGradients else ig_ref
        errors.append(relative_error(attributions[0], reference))
        report = explainer.refinement
        if report.converged[0]:
            assert errors[-1] <= 1e-3
        converged.append(bool(report.converged[0]))
        evaluations.append(int(report.evaluations[0]))
    print(statistics.median(evaluations), max(errors), sum(converged))
    # most converge before the cap (randomized rounds cost more than the
    # Gauss-Legendre panels of a fixed call on these smooth paths)
    assert sum(converged) >= 12 and statistics.median(evaluations) <= 600, evaluations


def test_each_round_is_one_pass_over_the_examples_still_refining():
    model = SaturatingNet(seed=1, gain=24)
    x = torch.randn(3, 6, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    x[2] = 1e-3 * x[2]  # a nearly linear path: converges in the second round
    target = model(x).argmax(dim=1)
    passes = []
    model.register_forward_hook(
        lambda m, i, o: passes.append(i[0].shape[0]) if torch.is_grad_enabled() else None)
    explainer = IntegratedDecisionGradients(model)
    explainer.attribute(x, target=target, n_steps=512, tolerance=1e-2, rescale=False)
    report = explainer.refinement
    # a first round of 16 samples, then larger ones; a pass holds the examples
    # still refining, each taking the round's samples
    assert report.evaluations[2] == 16 and report.converged.all()  # nearly linear: one round
    assert passes[0] == 16 * 3 and sum(passes) == int(report.evaluations.sum())
    # the two examples left refine together while both need to: each later
    # pass is a round of those still refining (whole strata of 4 samples), so
    # the example that needs more takes every round
    assert all(p % 4 == 0 for p in passes[1:]) and len(passes) > 2
    assert 16 + sum(passes[1:]) - int(report.evaluations[:2].min()) + 16 == \
        int(report.evaluations[:2].max())


def test_tolerance_in_a_batch_equals_each_example_alone():
    model = SaturatingNet(seed=2, gain=12)
    x = torch.randn(3, 6, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    target = model(x).argmax(dim=1)
    explainer = AdaptiveIntegratedGradients(model)
    batch, delta = explainer.attribute(x, target=target, n_steps=128, tolerance=1e-5,
                                       return_convergence_delta=True)
    evaluations = explainer.refinement.evaluations.clone()
    for b in range(3):
        single, single_delta = explainer.attribute(x[b:b + 1], target=int(target[b]),
                                                   n_steps=128, tolerance=1e-5,
                                                   return_convergence_delta=True)
        torch.testing.assert_close(batch[b:b + 1], single)
        torch.testing.assert_close(delta[b:b + 1], single_delta)
        assert explainer.refinement.evaluations[0] == evaluations[b]


def test_the_probe_of_a_batch_refines_each_example_as_alone():
    # a sharp gate needs refinement rounds, a nearly linear path none: in a batch
    # each gets its own probe points, with its own target, baseline and forward
    # argument, and none pays for another's
    gate = fresh_suite(seed=3, n_cases=2)[1]

    def two_logits(z, scale):
        logit = gate.model(z * scale[:, None])
        return torch.cat([logit, -logit], dim=1)

    x = torch.stack([gate.x, 1e-3 * gate.x, 0.5 * gate.x])
    baselines = torch.stack([-0.2 * gate.x, torch.zeros_like(gate.x), torch.zeros_like(gate.x)])
    scale = torch.tensor([1.0, 1.0, 2.0], dtype=torch.float64)
    target = [0, 1, 1]
    rows = []
    gate.model.register_forward_hook(
        lambda m, i, o: rows.append(i[0].shape[0]) if not torch.is_grad_enabled() else None)
    explainer = IntegratedDecisionGradients(two_logits)
    batch = explainer.attribute(x, baselines, target, scale, n_steps=32)
    probe_rows = sum(rows)
    alone = []
    for b in range(3):
        rows.clear()
        one = explainer.attribute(x[b:b + 1], baselines[b:b + 1], target[b], scale[b:b + 1],
                                  n_steps=32)
        torch.testing.assert_close(batch[b:b + 1], one)
        alone.append(sum(rows))
    assert probe_rows == sum(alone)
    torch.testing.assert_close(batch, explainer.attribute(  # passes of one step, 3 rows
        x, baselines, target, scale, n_steps=32, internal_batch_size=2))
    steps = default_probe_steps(32)
    assert alone[0] > steps and alone[2] > steps and alone[1] == steps  # the gates refined


def test_a_cap_too_small_warns_naming_the_examples():
    model = SaturatingNet(seed=0, gain=24)
    x = torch.randn(2, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    explainer = IntegratedDecisionGradients(model)
    with pytest.warns(UserWarning, match=r"tolerance=1e-09 not met within n_steps=20 for "
                                         r"2 of 2 examples \(0, 1\)"):
        explainer.attribute(x, target=model(x).argmax(1), n_steps=20, tolerance=1e-9)
    report = explainer.refinement
    assert not report.converged.any() and (report.evaluations <= 20).all()
    assert (report.estimated_error > 1e-9).all()


@pytest.mark.parametrize("walked", [True, False])
def test_a_linear_model_converges_at_once_to_the_closed_form(walked, monkeypatch):
    model = LinearNet(seed=3)
    x = torch.randn(4, 6, dtype=torch.float64)
    if not walked:  # as a network the walk cannot read: the randomized rounds
        monkeypatch.setattr(_tolerance, "_walk", lambda model, sampler, most: None)
    explainer = AdaptiveIntegratedGradients(model)
    attributions = explainer.attribute(x, target=2, n_steps=64, tolerance=1e-8)
    torch.testing.assert_close(attributions, x * model.linear.weight[2].detach())
    # one linear region: one gradient; the rounds' error is 0: one round
    assert (explainer.refinement.evaluations == (1 if walked else 16)).all()
    assert explainer.attribute(x, target=2, n_steps=8) is not None
    assert explainer.refinement is None  # only tolerance calls report


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_middle", "trapezoid"])
def test_tolerance_works_with_a_fixed_rule(method):
    errors = []
    for model, x, target in list(saturating_suite())[::3]:
        ig_ref, idg_ref = dense_path_reference(model, x[0], torch.zeros(6, dtype=torch.float64),
                                               target)
        explainer = IntegratedDecisionGradients(model)
        attributions = explainer.attribute(x, target=target, n_steps=4096, method=method,
                                           tolerance=1e-3, rescale=False)
        report = explainer.refinement
        assert bool(report.converged[0]) and int(report.evaluations[0]) < 4096
        # the fixed rules probe nothing: the end points only, one pass of two rows
        assert int(report.probe_evaluations[0]) == 2
        errors.append(relative_error(attributions[0], idg_ref))
    assert max(errors) <= 5e-3, errors


@pytest.mark.parametrize("bad, name", [
    (dict(tolerance=0.0), "tolerance"), (dict(tolerance=float("nan")), "tolerance"),
    (dict(tolerance="small"), "tolerance"),
])
def test_bad_tolerance(bad, name):
    model = SaturatingNet(seed=0)
    x = torch.randn(2, 6, dtype=torch.float64)
    with pytest.raises(ValueError, match=name):
        IntegratedDecisionGradients(model).attribute(x, target=0, **bad)


def test_a_new_method_is_a_short_composition_of_the_parts():
    # IDG's weight on Left-IG's cut, composed from the public parts, against the slow loop
    from captum_idg.attr.schedules import saturation_point
    from captum_idg.paths import DecisionWeight, FixedRule, PathAttribution, SaturationCut

    left_idg = PathAttribution(SaturatingNet(seed=1, gain=6), weight=DecisionWeight(),
                               sampler=SaturationCut(FixedRule("riemann_middle"), 0.9, "max"))

    model = SaturatingNet(seed=1, gain=6)
    x = torch.randn(2, 6, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    target = model(x).argmax(dim=1)
    ours = left_idg.attribute(x, target=target, n_steps=24)
    for b in range(2):
        t = int(target[b])
        probe = model(torch.linspace(0, 1, 24, dtype=torch.float64)[:, None] * x[b])[:, t]
        cut = float(saturation_point(probe[:, None].detach())[0])
        expected = torch.zeros(6, dtype=torch.float64)
        for k in range(24):
            z = ((k + 0.5) / 24 * cut * x[b]).requires_grad_()
            (g,) = torch.autograd.grad(model(z[None])[0, t], z)
            expected += cut / 24 * float(g @ x[b]) * g
        torch.testing.assert_close(ours[b], x[b] * expected)


def test_the_fresh_families_are_reproducible_and_disjoint():

    a, b, other = fresh_suite(0, 8), fresh_suite(0, 8), fresh_suite(1, 8)
    assert [c.kind for c in a] == list(FRESH_KINDS) * 2
    for first, again, different in zip(a, b, other):
        points = torch.linspace(0, 1, 5, dtype=torch.float64)[:, None] * first.x
        torch.testing.assert_close(first.model(points), again.model(points))
        assert not torch.equal(first.x, different.x)
