"""The sampling schedules: pure functions from probe logits to (alphas, weights)."""

import pytest
import torch

from captum_idg import adaptive_schedule, uniform_schedule


def rising_logits(n_probe: int, centre: float, width: float) -> torch.Tensor:
    a = torch.linspace(0, 1, n_probe, dtype=torch.float64)
    return 10 * torch.sigmoid((a - centre) / width)


def reference_code_schedule(probe: torch.Tensor, n_steps: int):
    """The IDG authors' allocation, placement bug included: intervals given no
    sample do not advance the start point (see shared notes)."""
    slopes = probe.diff() * (len(probe) - 1)
    norm = (slopes - slopes.min()) / (slopes.max() - slopes.min())
    norm[0] = 0
    placements = norm / norm.sum() * n_steps
    counts = placements.int()
    leftover = n_steps - int(counts.sum())
    placements[counts != 0] = -1
    counts[torch.argsort(placements, descending=True)[:leftover]] = 1
    width = 1 / (len(probe) - 1)
    alphas, weights, start = [], [], 0.0
    for count in counts.tolist():
        if count == 0:
            continue
        alphas += torch.linspace(start, start + width, count + 1)[:count].tolist()
        weights += [width / count] * count
        start += width
    return torch.tensor(alphas), torch.tensor(weights)


@pytest.mark.parametrize("seed", range(5))
def test_adaptive_cells_tile_the_path(seed):
    g = torch.Generator().manual_seed(seed)
    probe = torch.randn(33, 7, generator=g, dtype=torch.float64).cumsum(0) ** 2
    alphas, weights = adaptive_schedule(probe, n_steps=40)
    assert alphas.shape == weights.shape == (40, 7)
    torch.testing.assert_close(weights.sum(0), torch.ones(7, dtype=torch.float64))
    assert (weights > 0).all()
    edges = torch.cat([torch.zeros(1, 7, dtype=torch.float64), weights.cumsum(0)])
    assert (alphas > edges[:-1]).all() and (alphas < edges[1:]).all()
    assert (alphas.diff(dim=0) > 0).all()


def test_adaptive_concentrates_where_the_logit_rises():
    probe = rising_logits(50, centre=0.3, width=0.02)[:, None]
    alphas, weights = adaptive_schedule(probe, n_steps=50)
    inside = ((alphas > 0.2) & (alphas < 0.4)).sum().item()
    # the rise spans 1/5 of the path; uniform sampling would put 10 samples there
    assert inside >= 30
    # every part of the path is still covered, the flat tail included
    assert alphas.max() > 0.8 and weights.sum().item() == pytest.approx(1.0, abs=1e-12)


def test_reference_code_drifts_but_ours_covers_the_path():
    probe = rising_logits(50, centre=0.3, width=0.02)
    ref_alphas, ref_weights = reference_code_schedule(probe, 50)
    assert ref_alphas.max() < 0.6 and ref_weights.sum() < 0.9  # the known bug
    alphas, weights = adaptive_schedule(probe[:, None], 50)
    assert weights.sum().item() == pytest.approx(1.0, abs=1e-12)
    assert alphas.max() > 0.8


def test_flat_logit_falls_back_to_uniform():
    probe = torch.full((20, 3), 2.5, dtype=torch.float64)
    alphas, weights = adaptive_schedule(probe, n_steps=8)
    u_alphas, u_weights = uniform_schedule(8, 3)
    torch.testing.assert_close(alphas, u_alphas)
    torch.testing.assert_close(weights, u_weights)
    assert torch.isfinite(alphas).all()


def test_examples_are_scheduled_independently():
    g = torch.Generator().manual_seed(3)
    probe = torch.randn(16, 5, generator=g, dtype=torch.float64).cumsum(0)
    alphas, weights = adaptive_schedule(probe, n_steps=12)
    for b in range(5):
        a_b, w_b = adaptive_schedule(probe[:, b : b + 1], n_steps=12)
        torch.testing.assert_close(alphas[:, b : b + 1], a_b)
        torch.testing.assert_close(weights[:, b : b + 1], w_b)


def test_power_one_allocates_in_proportion_to_the_change():
    # two probe intervals: the logit moves 3x more in the second
    probe = torch.tensor([[0.0], [1.0], [4.0]], dtype=torch.float64)
    alphas, _ = adaptive_schedule(probe, n_steps=8, uniform_mix=1e-9, power=1.0)
    assert (alphas < 0.5).sum().item() == 2 and (alphas > 0.5).sum().item() == 6


def test_uniform_schedule_is_the_midpoint_rule():
    alphas, weights = uniform_schedule(4, 2, dtype=torch.float32)
    torch.testing.assert_close(alphas[:, 0], torch.tensor([0.125, 0.375, 0.625, 0.875]))
    assert weights.dtype == torch.float32 and torch.all(weights == 0.25)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(probe_logits=torch.zeros(1, 2)), "probe_logits"),
        (dict(probe_logits=torch.zeros(5)), "probe_logits"),
        (dict(probe_logits=torch.zeros(5, 2), uniform_mix=0.0), "uniform_mix"),
        (dict(probe_logits=torch.zeros(5, 2), power=0.0), "power"),
    ],
)
def test_bad_schedule_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        adaptive_schedule(n_steps=4, **kwargs)
