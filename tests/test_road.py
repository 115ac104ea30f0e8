"""ROAD against Quantus 0.6 (the authors' imputation) and what a faithful ranking must score."""

import inspect

import numpy as np
import pytest
import torch
from torch import nn

from captum_idg.metrics import road, road_curves
from captum_idg.metrics.road import noisy_linear_imputation
from tests.oracles import oracle

quantus = oracle("quantus")


@pytest.mark.parametrize("shape, fraction", [((3, 17, 23), 0.6), ((1, 9, 9), 0.2),
                                             ((2, 12, 5), 0.95)])
def test_imputation_equals_quantus_without_noise(shape, fraction):
    from quantus.functions.perturb_func import noisy_linear_imputation as theirs

    g = torch.Generator().manual_seed(sum(shape))
    image = torch.randn(shape, dtype=torch.float64, generator=g)
    removed = torch.rand(shape[1] * shape[2], generator=g) < fraction
    removed[0] = False  # at least one pixel kept
    kept = image.clone()
    ours = noisy_linear_imputation(image, removed.view(shape[1:]), noise=0.0)
    expected = theirs(image.numpy(), np.flatnonzero(removed.numpy()), noise=0.0)
    np.testing.assert_allclose(ours.numpy(), expected, rtol=0, atol=1e-12)
    assert torch.equal(image, kept)


def test_imputed_pixels_are_the_mean_of_their_neighbours_plus_noise_of_the_given_size():
    g = torch.Generator().manual_seed(0)
    image = torch.rand(3, 40, 40, dtype=torch.float64, generator=g)
    removed = torch.zeros(40, 40, dtype=torch.bool)
    removed[10:30, 10:30] = True
    clean = noisy_linear_imputation(image, removed, noise=0.0)
    noisy = noisy_linear_imputation(image, removed, noise=0.05, generator=g)
    assert torch.equal(clean[:, ~removed], image[:, ~removed])
    padded = nn.functional.pad(clean, (1, 1, 1, 1))
    weights = torch.tensor([[1, 2, 1], [2, 0, 2], [1, 2, 1]], dtype=torch.float64) / 12
    mean = nn.functional.conv2d(padded[:, None], weights[None, None])[:, 0]
    torch.testing.assert_close(clean[:, removed], mean[:, removed], rtol=0, atol=1e-10)
    assert abs(float((noisy - clean)[:, removed].std()) - 0.05) < 0.003


def _net(channels: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(channels, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten(), nn.Linear(24, 5)).eval().double()


def test_morf_curve_equals_quantus_road_accuracy_without_noise():
    # single-channel: Quantus 0.6's ROAD broadcasts (N, 1, H, W) attributions to
    # the input's shape and ranks channels x pixels, which breaks on RGB images
    net = _net(channels=1).float()  # Quantus runs models in float32
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 1, 16, 16, generator=g)
    attributions = torch.rand(4, 1, 16, 16, generator=g)  # distinct
    y = net(x).argmax(1)
    percentages = [10, 30, 50, 70, 90]
    metric = quantus.ROAD(percentages=percentages, noise=0.0, abs=True, disable_warnings=True)
    theirs = metric(model=net, x_batch=x.numpy(), y_batch=y.numpy(),
                    a_batch=attributions.numpy(), device="cpu")
    hit = lambda out: nn.functional.one_hot(out.argmax(1), out.shape[1]).to(out)  # noqa: E731
    morf, _ = road_curves(net, x, attributions, y, fractions=[p / 100 for p in percentages],
                          noise=0.0, score=hit)
    np.testing.assert_allclose(morf.mean(0).numpy(), [theirs[p] for p in percentages])


def test_a_ranking_of_the_evidence_scores_higher_than_its_reverse():
    # the class-0 logit is the mean of the centre: attributions on it are faithful
    class Centre(nn.Module):
        def forward(self, x):
            centre = x[:, :, 6:10, 6:10].mean(dim=(1, 2, 3))
            return torch.stack([4 * (centre - 1.5), torch.zeros_like(centre)], dim=1)

    g = torch.Generator().manual_seed(2)
    x = 0.5 + torch.rand(3, 3, 16, 16, dtype=torch.float64, generator=g)
    x[:, :, 6:10, 6:10] += 2.0
    good = torch.zeros(3, 1, 16, 16, dtype=torch.float64)
    good[:, :, 6:10, 6:10] = 1.0
    good += 1e-3 * torch.rand(good.shape, dtype=torch.float64, generator=g)
    reverse = good.max() + 1e-3 - good  # the centre last
    assert (road(Centre(), x, good, 0) > road(Centre(), x, reverse, 0)).all()
    assert (road(Centre(), x, good, 0) > 0.2).all()


def test_road_is_reproducible_and_has_a_signature_and_clear_errors():
    net, g = _net(), torch.Generator().manual_seed(3)
    x = torch.rand(2, 3, 12, 12, dtype=torch.float64, generator=g)
    a = torch.randn(2, 3, 12, 12, dtype=torch.float64, generator=g)
    torch.testing.assert_close(road(net, x, a, 1, seed=5), road(net, x, a, 1, seed=5))
    morf, lerf = road_curves(net, x, a, 1)
    torch.testing.assert_close(road(net, x, a, 1), (lerf - morf).mean(1))
    assert "fractions" in inspect.signature(road).parameters
    with pytest.raises(ValueError, match="fractions"):
        road(net, x, a, 1, fractions=[0.5, 1.0])
    with pytest.raises(ValueError, match="noise"):
        road(net, x, a, 1, noise=-1.0)


def test_our_explainers_run_as_a_quantus_explain_func():
    from captum_idg import IntegratedDecisionGradients
    from captum_idg.metrics import quantus_explain_func

    net = _net(channels=1).float()  # see the MoRF test
    g = torch.Generator().manual_seed(4)
    x = torch.rand(3, 1, 12, 12, generator=g)
    y = net(x).argmax(1)
    explain = quantus_explain_func(IntegratedDecisionGradients, n_steps=8)
    ours = explain(net, x.numpy(), y.numpy())
    direct = IntegratedDecisionGradients(net).attribute(x, target=y, n_steps=8)
    np.testing.assert_allclose(ours, direct.detach().numpy())
    scores = quantus.ROAD(percentages=[20, 60], disable_warnings=True)(
        model=net, x_batch=x.numpy(), y_batch=y.numpy(), explain_func=explain, device="cpu")
    assert set(scores) == {20, 60}
