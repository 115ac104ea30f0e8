"""The schedules: pure functions from probe logits to (alphas, weights)."""

import math

import pytest
import torch
from authors_idg import get_alpha_parameters
from captum.attr._utils.approximation_methods import approximation_parameters

from captum_idg import adaptive_schedule, reference_schedule, riemann_schedule
from captum_idg.attr.schedules import (
    RIEMANN_METHODS,
    interval_mass,
    refinement_points,
)


def uniform_grid(n_probe: int, batch: int = 1) -> torch.Tensor:
    return torch.linspace(0, 1, n_probe, dtype=torch.float64)[:, None].expand(-1, batch)


def rising_logits(n_probe: int, centre: float, width: float) -> torch.Tensor:
    a = torch.linspace(0, 1, n_probe, dtype=torch.float64)
    return 10 * torch.sigmoid((a - centre) / width)


def integral_of_power(alphas, weights, power):
    return (weights * alphas**power).sum(dim=0)


@pytest.mark.parametrize("method, exact_degree", [
    ("riemann_left", 0), ("riemann_right", 0), ("riemann_middle", 1),
    ("trapezoid", 1), ("gausslegendre", 2 * 7 - 1)])
def test_fixed_rules_integrate_polynomials_exactly_up_to_their_order(method, exact_degree):
    alphas, weights = riemann_schedule(method, 7, batch_size=2)
    assert alphas.shape == weights.shape == (7, 2)
    for power in range(exact_degree + 1):
        torch.testing.assert_close(integral_of_power(alphas, weights, power),
                                   torch.full((2,), 1 / (power + 1), dtype=torch.float64))
    error = (integral_of_power(alphas, weights, exact_degree + 1) - 1 / (exact_degree + 2)).abs()
    assert (error > 1e-12).all()


@pytest.mark.parametrize("method", [m for m in RIEMANN_METHODS if m != "trapezoid"])
def test_fixed_rules_sample_and_weigh_as_captum_does(method):
    # Captum's points and weights, its trapezoid's (n - 1) / n included
    captum_steps, captum_alphas = approximation_parameters(method)
    alphas, weights = riemann_schedule(method, 9, 1)
    torch.testing.assert_close(alphas[:, 0], torch.tensor(captum_alphas(9), dtype=torch.float64))
    torch.testing.assert_close(weights[:, 0], torch.tensor(captum_steps(9), dtype=torch.float64))
    assert weights.sum().item() == pytest.approx(8 / 9 if method == "riemann_trapezoid" else 1)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n_steps, per_panel", [(8, 2), (16, 3), (17, 3), (40, None), (7, 1)])
def test_adaptive_panels_tile_the_path_and_are_exact_for_low_degree(seed, n_steps, per_panel):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(13, 5, generator=g, dtype=torch.float64).cumsum(0) ** 2
    alphas, weights = adaptive_schedule(uniform_grid(13, 5), logits, n_steps, per_panel)
    assert alphas.shape == weights.shape == (n_steps, 5)
    assert (weights > 0).all() and ((alphas > 0) & (alphas < 1)).all()
    assert (alphas.diff(dim=0) > 0).all()
    # Gauss-Legendre panels that tile [0, 1] integrate every polynomial of
    # degree < 2 * (nodes per panel) exactly, wherever the panels are
    degree = 2 * (per_panel or (2 if n_steps < 16 else 3)) - 1
    for power in range(degree + 1):
        torch.testing.assert_close(integral_of_power(alphas, weights, power),
                                   torch.full((5,), 1 / (power + 1), dtype=torch.float64))


@pytest.mark.parametrize("logits", [torch.full((9, 2), 3.0, dtype=torch.float64),
                                    torch.linspace(-2, 5, 9, dtype=torch.float64)[:, None]])
def test_an_evenly_moving_logit_gets_gauss_legendre(logits):
    alphas, weights = adaptive_schedule(uniform_grid(9, logits.shape[1]), logits, 12)
    gauss = riemann_schedule("gausslegendre", 12, logits.shape[1])
    torch.testing.assert_close((alphas, weights), gauss)


def test_flat_logit_gives_equal_gauss_legendre_panels():
    flat = torch.full((9, 2), 3.0, dtype=torch.float64)
    alphas, weights = adaptive_schedule(uniform_grid(9, 2), flat, 12, nodes_per_panel=3)
    nodes = torch.tensor([0.5 - math.sqrt(0.15), 0.5, 0.5 + math.sqrt(0.15)], dtype=torch.float64)
    expected = torch.cat([(j + nodes) / 4 for j in range(4)])
    torch.testing.assert_close(alphas[:, 0], expected)
    torch.testing.assert_close(weights[:, 1], torch.tensor([5, 8, 5] * 4, dtype=torch.float64) / 72)


def test_adaptive_concentrates_where_the_logit_rises():
    logits = rising_logits(50, centre=0.3, width=0.02)[:, None]
    alphas, weights = adaptive_schedule(uniform_grid(50), logits, 48)
    inside = ((alphas > 0.2) & (alphas < 0.4)).sum().item()
    assert inside >= 24  # uniform sampling would put 10 of 48 samples there
    assert alphas.max() > 0.9 and weights.sum().item() == pytest.approx(1.0, abs=1e-12)


def test_density_is_graded_and_mixed_with_a_uniform_share():
    logits = rising_logits(41, centre=0.5, width=0.005)[:, None]
    mass = interval_mass(uniform_grid(41), logits, uniform_mix=0.2, grading=2.0)[:, 0]
    ratios = mass[1:] / mass[:-1]
    assert ratios.max() <= 2.0 + 1e-9 and ratios.min() >= 0.5 - 1e-9
    assert mass.min() >= 0.2 / 40 - 1e-15 and mass.sum().item() == pytest.approx(1.0)


def test_examples_are_scheduled_independently():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(16, 5, generator=g, dtype=torch.float64).cumsum(0)
    alphas, weights = adaptive_schedule(uniform_grid(16, 5), logits, n_steps=12)
    for b in range(5):
        a_b, w_b = adaptive_schedule(uniform_grid(16), logits[:, b : b + 1], n_steps=12)
        torch.testing.assert_close(alphas[:, b : b + 1], a_b)
        torch.testing.assert_close(weights[:, b : b + 1], w_b)


def test_refinement_adds_points_only_where_the_logit_jumps():
    grid = uniform_grid(9, 2)
    jump = torch.stack([2 * grid[:, 0], (grid[:, 1] > 0.3).double()], dim=1)  # linear; a step
    points, new = refinement_points(grid, jump, n_steps=16)
    assert points.shape[1] == 2 and points.shape[0] % 3 == 0
    assert not new[:, 0].any() and (points[:, 0] == 0).all()  # linear: padding only
    step_interval = (0.25, 0.375)  # the probe interval holding the step at 0.3
    inside = (points[:, 1] > step_interval[0]) & (points[:, 1] < step_interval[1])
    assert inside.sum() >= 3 and (inside <= new[:, 1]).all()
    assert refinement_points(grid[:, :1], jump[:, :1], n_steps=16) is None


@pytest.mark.parametrize("seed", range(6))
def test_reference_schedule_is_the_authors_code(seed):
    steps = 20
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(steps, 3, generator=g).cumsum(0) * 3
    alphas, weights = reference_schedule(logits, steps)
    for b in range(3):
        slopes = torch.zeros(steps)
        for i in range(steps - 1):  # getSlopes
            slopes[i + 1] = (logits[i + 1, b] - logits[i, b]) / (1 / (steps - 1))
        expected = get_alpha_parameters(slopes, steps, 1 / (steps - 1))
        torch.testing.assert_close(alphas[:, b], expected[0], atol=1e-6, rtol=0)
        torch.testing.assert_close(weights[:, b], expected[1], atol=1e-6, rtol=0)


def test_reference_drifts_but_adaptive_covers_the_path():
    logits = rising_logits(50, centre=0.3, width=0.02)[:, None]
    ref_alphas, ref_weights = reference_schedule(logits, 50)
    assert ref_alphas.max() < 0.6 and ref_weights.sum() < 0.9  # the released code's bug
    alphas, weights = adaptive_schedule(uniform_grid(50), logits, 50)
    assert weights.sum().item() == pytest.approx(1.0, abs=1e-12) and alphas.max() > 0.9


@pytest.mark.parametrize("kwargs, name", [
    (dict(grid=torch.zeros(1, 2), logits=torch.zeros(1, 2)), "grid"),
    (dict(grid=uniform_grid(5), logits=torch.zeros(5)), "grid"),
    (dict(uniform_mix=0.0), "uniform_mix"),
    (dict(power=0.0), "power"),
    (dict(grading=1.0), "grading"),
    (dict(nodes_per_panel=0), "nodes_per_panel"),
])
def test_bad_schedule_arguments(kwargs, name):
    arguments = dict(grid=uniform_grid(5, 2), logits=torch.zeros(5, 2), n_steps=4)
    with pytest.raises(ValueError, match=name):
        adaptive_schedule(**{**arguments, **kwargs})


def test_bad_method_name():
    with pytest.raises(ValueError, match="method"):
        riemann_schedule("simpson", 4, 1)


def test_the_documented_probe_default_is_what_the_model_sees():
    # the docstring's numbers written here by hand, and the probe counted at the model:
    # either drifting from the other fails
    from captum_idg import IntegratedDecisionGradients

    text = " ".join(IntegratedDecisionGradients.attribute.__doc__.split())
    assert "``n_steps // 8``, at least 6 and at most n_steps" in text
    assert "up to 3 more rounds" in text
    model = torch.nn.Linear(4, 2).double()  # a straight logit: no round of refinement
    x = torch.randn(1, 4, dtype=torch.float64)
    for n_steps, probe in [(2, 2), (8, 6), (16, 6), (50, 6), (64, 8), (300, 37)]:
        rows = []
        hook = model.register_forward_hook(
            lambda m, i, o, rows=rows: None if torch.is_grad_enabled() else rows.append(len(i[0])))
        IntegratedDecisionGradients(model).attribute(x, target=0, n_steps=n_steps,
                                                     rescale=False)
        hook.remove()
        assert sum(rows) == probe, (n_steps, rows)