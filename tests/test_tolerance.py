"""Tolerance mode's error estimate: unbiased, honest on piecewise-linear networks, one warning."""

import inspect
import warnings

import pytest
import torch
from scipy.stats import spearmanr

from captum_idg import AdaptiveIntegratedGradients, IntegratedDecisionGradients
from captum_idg.attr import _tolerance
from captum_idg.attr._path import StraightLinePath, summed_gradients
from captum_idg.attr._path_integral import (
    Adaptive,
    DecisionWeight,
    ModelOnPath,
    Schedule,
    Spread,
)
from captum_idg.attr.schedules import PAIRS, randomized_strata
from captum_idg.testing import ReluMLP, dense_path_reference, piecewise_linear_suite


@pytest.fixture
def rounds_only(monkeypatch):
    """Tolerance mode as on networks whose regions cannot be walked: the randomized rounds."""
    monkeypatch.setattr(_tolerance, "_walk", lambda model, sampler, most: None)


def relative_error(estimate, reference):
    return float((estimate - reference).norm() / reference.norm())


def test_each_pair_of_a_randomized_stratum_is_unbiased_on_a_step():
    # a jump at 0.3 inside the stratum [0.2, 0.6]: every pair's mean over the
    # shifts is the exact integral, and each pair integrates a line exactly
    edges = torch.tensor([[0.0], [0.2], [0.6], [1.0]], dtype=torch.float64)
    u = torch.rand(20000, PAIRS, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    step = lambda a: (a > 0.3).to(torch.float64)  # noqa: E731
    estimates = []
    for shifts in u.split(1):
        alphas, weights = randomized_strata(edges, shifts.expand(3, -1))
        assert torch.allclose(weights.sum(), torch.tensor(1.0, dtype=torch.float64))
        line = (weights * (2 * alphas + 1)).sum()
        torch.testing.assert_close(line, torch.tensor(2.0, dtype=torch.float64))
        estimates.append(float((weights * step(alphas)).sum()))
    assert abs(sum(estimates) / len(estimates) - 0.7) < 2e-3
    inside = (alphas.view(3, 2 * PAIRS) >= edges[:-1]) & (alphas.view(3, 2 * PAIRS) <= edges[1:])
    assert inside.all()


@pytest.mark.parametrize("rescale", [False, True])
def test_the_estimated_variance_is_the_mean_squared_error(rescale):
    # a randomized rule of 8 strata on adaptive sampling's strata, on a ReLU
    # MLP, over 300 seeds: the mean of the spread's estimated squared error
    # equals the mean squared error against a dense float64 reference
    # (unbiased), for the raw map and the rescaled one (to first order)
    model = ReluMLP(10, seed=3).eval()
    x = torch.randn(1, 10, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    idg = dense_path_reference(model, x[0], torch.zeros(10, dtype=torch.float64), 0, 2**17)[1]
    with torch.no_grad():
        change = (model(x) - model(0 * x))[0, 0]
    on_path = ModelOnPath(model, summed_gradients, StraightLinePath((x,), (0 * x,)),
                          target=0)
    sampler = Adaptive()
    edges = sampler.strata(on_path, sampler.start(on_path, 32), 8)
    generator = torch.Generator().manual_seed(0)
    squared, estimated = [], []
    for _ in range(300):
        shifts = torch.rand(8, PAIRS, generator=generator, dtype=torch.float64)
        spread = Spread(on_path.path.directions)
        sums = on_path.sums(Schedule(*randomized_strata(edges, shifts)), DecisionWeight(),
                            spread)
        attribution, reference = sums.attributions[0][0], idg
        if rescale:
            attribution = attribution * change / sums.weighted_rate[0]
            reference = idg * change / idg.sum()
        variance = spread.variance(sums.attributions, sums.weighted_rate, rescale)[0]
        if rescale:
            variance = variance * (change / sums.weighted_rate[0]) ** 2
        squared.append(float((attribution - reference).pow(2).sum()))
        estimated.append(float(variance))
    ratio = sum(estimated) / sum(squared)
    assert 0.8 < ratio < 1.25, ratio


def test_converged_means_within_the_tolerance_on_piecewise_linear_networks(rounds_only):
    # ReLU and leaky-ReLU MLPs and 1-D CNNs on one-hot DNA (seed 4 of the
    # suite, not one the defaults were chosen on): every example reported
    # converged is within the tolerance of a dense reference, and the
    # estimate ranks the true errors
    cases = [c for c in piecewise_linear_suite(seed=4, n_cases=12) if c.kind != "residual-cnn"]
    estimated, true = [], []
    for case in cases:
        reference = dense_path_reference(case.model, case.x, torch.zeros_like(case.x), 0,
                                         2**14)[1]
        explainer = IntegratedDecisionGradients(case.model)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            attribution = explainer.attribute(case.x[None], target=0, n_steps=256,
                                              tolerance=1e-2, rescale=False)[0]
        error = relative_error(attribution, reference)
        report = explainer.refinement
        if report.converged[0]:
            assert error <= 1e-2, (case.kind, error)
        estimated.append(float(report.estimated_error[0]))
        true.append(error)
    assert spearmanr(estimated, true)[0] >= 0.6, (estimated, true)


def test_a_residual_cnn_the_old_estimate_passed_is_not_reported_converged_when_off():
    # the stopping rule before the map-level estimate reported this example
    # converged at tolerance 1e-2 after 248 evaluations with a map 2.7e-2 off
    case = piecewise_linear_suite(seed=6, n_cases=8)[6]
    reference = dense_path_reference(case.model, case.x, torch.zeros_like(case.x), 0, 4096)[1]
    explainer = IntegratedDecisionGradients(case.model)
    attribution = explainer.attribute(case.x[None], target=0, n_steps=512, tolerance=1e-2,
                                      rescale=False)[0]
    error = relative_error(attribution, reference)
    report = explainer.refinement
    assert error <= 1e-2 or not report.converged[0], error  # measured: 1.06e-2, not converged
    assert float(report.estimated_error[0]) >= error


def test_the_warning_is_one_line_at_the_callers_line_for_200_examples():
    model = ReluMLP(10, seed=1).eval()
    x = torch.randn(200, 10, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    explainer = AdaptiveIntegratedGradients(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        explainer.attribute(x, target=0, n_steps=16, tolerance=1e-6)  # this line
    line = inspect.currentframe().f_lineno - 1
    (warning,) = [w for w in caught if "tolerance" in str(w.message)]
    message = str(warning.message)
    assert warning.filename == __file__ and warning.lineno == line
    assert "\n" not in message and len(message) < 200, message
    assert "200 of 200 examples (0, 1, 2, 3, 4, ...)" in message


@pytest.mark.parametrize("walked", [True, False])
def test_results_are_reproducible_and_an_example_does_not_depend_on_its_batch(walked,
                                                                              monkeypatch):
    net = ReluMLP(10, seed=2).eval()
    x = torch.randn(3, 10, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    if not walked:
        monkeypatch.setattr(_tolerance, "_walk", lambda model, sampler, most: None)
    explainer = IntegratedDecisionGradients(net)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batch = explainer.attribute(x, target=0, n_steps=128, tolerance=1e-3, rescale=True)
        torch.testing.assert_close(batch, explainer.attribute(
            x, target=0, n_steps=128, tolerance=1e-3, rescale=True, internal_batch_size=5))
        for b in range(3):
            one = explainer.attribute(x[b:b + 1], target=0, n_steps=128, tolerance=1e-3,
                                      rescale=True)
            torch.testing.assert_close(batch[b:b + 1], one)


def test_ig_weights_and_the_local_map_are_estimated_too(rounds_only):
    # IG's map, and multiply_by_inputs=False (the mean gradient): converged
    # examples are within the tolerance
    model = ReluMLP(10, seed=5).eval()
    x = torch.randn(1, 10, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    ig = dense_path_reference(model, x[0], torch.zeros(10, dtype=torch.float64), 0, 2**15)[0]
    for multiply, reference in ((True, ig), (False, ig / x[0])):
        explainer = AdaptiveIntegratedGradients(model, multiply_by_inputs=multiply)
        attribution = explainer.attribute(x, target=0, n_steps=1024, tolerance=1e-2)[0]
        report = explainer.refinement
        error = relative_error(attribution, reference)
        assert error <= float(report.estimated_error[0]), (multiply, error)
        assert error <= 1e-2 or not report.converged[0], (multiply, error)
