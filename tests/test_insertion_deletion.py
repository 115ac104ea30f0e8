"""Insertion/deletion against a plainly written loop, and their contract."""

import numpy as np
import pytest
import torch
from torchvision.transforms.functional import gaussian_blur

from captum_idg.metrics import (
    curve_auc,
    deletion,
    deletion_curve,
    insertion,
    insertion_curve,
    pixel_order,
    rise_kernel,
)
from tests.oracles import oracle


class TinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1).double()
        self.fc = torch.nn.Linear(4 * 6 * 5, 5).double()

    def forward(self, x, scale=1.0):
        return self.fc(torch.tanh(self.conv(x)).flatten(1)) * scale


def plain_curve(model, image, attribution, target, step, start, finish):
    """One image, one step at a time, pixels sorted in a Python loop."""
    saliency = attribution.sum(0).abs().flatten().tolist()
    order = sorted(range(len(saliency)), key=lambda p: (-saliency[p], p))
    current = start.clone()
    scores = []
    for k in range(0, len(order) + step, step):
        for p in order[max(0, k - step) : k]:
            r, c = divmod(p, image.shape[2])
            current[:, r, c] = finish[:, r, c]
        if k - step >= len(order):
            break
        scores.append(model(current[None]).softmax(1)[0, target].item())
    return torch.tensor(scores, dtype=torch.float64)


@pytest.mark.parametrize("step", [1, 4, 7, 30])
def test_deletion_and_insertion_match_a_plain_loop(step):
    model = TinyNet()
    g = torch.Generator().manual_seed(step)
    images = torch.randn(3, 3, 6, 5, generator=g, dtype=torch.float64)
    attributions = torch.randn(3, 3, 6, 5, generator=g, dtype=torch.float64)
    attributions[0, :, 0, :] = 0.0  # ties
    targets = [1, 4, 0]
    dele = deletion_curve(model, images, attributions, target=targets, pixels_per_step=step)
    ins = insertion_curve(model, images, attributions, target=targets, pixels_per_step=step,
                          blur_kernel_size=3, blur_sigma=1.0, max_examples_per_batch=7,
                          blur_padding="reflect")
    blurred = gaussian_blur(images, [3, 3], [1.0, 1.0])
    for b, t in enumerate(targets):
        expected = plain_curve(model, images[b], attributions[b], t, step, images[b],
                               torch.zeros_like(images[b]))
        assert dele.shape[1] == len(expected) == -(-30 // step) + 1
        assert (dele[b] - expected).abs().max() < 1e-6
        expected = plain_curve(model, images[b], attributions[b], t, step, blurred[b], images[b])
        assert (ins[b] - expected).abs().max() < 1e-6
    # the curves end where they must: deletion at the all-baseline image,
    # insertion at the intact image
    full = model(images).softmax(1)[range(3), targets]
    torch.testing.assert_close(ins[:, -1], full.detach())
    torch.testing.assert_close(dele[:, 0], full.detach())


class SoftmaxNet(torch.nn.Module):
    """RISE scores the softmax probability, so its model ends in a softmax."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.conv = torch.nn.Conv2d(3, 8, 5, padding=2)
        self.fc = torch.nn.Linear(8 * 4 * 4, 6)

    def forward(self, x):
        features = torch.nn.functional.adaptive_avg_pool2d(torch.relu(self.conv(x)), 4)
        return self.fc(features.flatten(1))


def rise_causal_metric(model, image, explanation, mode, step):
    """RISE's CausalMetric.single_run (evaluation.py), with its gkern blur."""
    from scipy.ndimage import gaussian_filter

    klen, nsig = 11, 5
    inp = np.zeros((klen, klen))
    inp[klen // 2, klen // 2] = 1
    k = gaussian_filter(inp, nsig)
    kern = np.zeros((3, 3, klen, klen))
    kern[0, 0], kern[1, 1], kern[2, 2] = k, k, k
    kern = torch.from_numpy(kern.astype("float32"))

    def blur(x):
        return torch.nn.functional.conv2d(x, kern, padding=klen // 2)

    hw = image.shape[-1] * image.shape[-2]
    with torch.no_grad():
        pred = torch.softmax(model(image), dim=1)
        c = int(pred.argmax(1))
        n_steps = (hw + step - 1) // step
        if mode == "del":
            start, finish = image.clone(), torch.zeros_like(image)
        else:
            start, finish = blur(image), image.clone()
        scores = np.empty(n_steps + 1)
        salient_order = np.flip(np.argsort(explanation.reshape(-1, hw), axis=1), axis=-1)
        for i in range(n_steps + 1):
            scores[i] = torch.softmax(model(start), dim=1)[0, c]
            if i < n_steps:
                coords = salient_order[:, step * i: step * (i + 1)]
                start.numpy().reshape(1, 3, hw)[0, :, coords] = finish.numpy().reshape(
                    1, 3, hw)[0, :, coords]
    return (scores.sum() - scores[0] / 2 - scores[-1] / 2) / (scores.shape[0] - 1)


@pytest.mark.parametrize("seed", range(3))
def test_insertion_and_deletion_equal_rises_own_loop(seed):
    oracle("scipy.ndimage")
    model = SoftmaxNet()
    g = torch.Generator().manual_seed(seed)
    image = torch.randn(1, 3, 28, 28, generator=g)
    saliency = torch.rand(1, 28, 28, generator=g)  # no ties: RISE's sort is not stable
    for mode, metric in (("del", deletion), ("ins", insertion)):
        ours = float(metric(model, image, saliency, pixels_per_step=28))
        theirs = rise_causal_metric(model, image.clone(), saliency.numpy(), mode, 28)
        assert abs(ours - theirs) < 1e-4, (mode, ours, theirs)


def test_rise_kernel_is_scipys_gaussian_filter_of_a_delta():
    ndimage = oracle("scipy.ndimage")
    for size, sigma in ((11, 5.0), (7, 1.5), (3, 4.0)):
        delta = np.zeros((size, size))
        delta[size // 2, size // 2] = 1
        np.testing.assert_allclose(rise_kernel(size, sigma).numpy(),
                                   ndimage.gaussian_filter(delta, sigma), atol=1e-15)


def test_auc_is_the_normalised_trapezoid():
    curve = torch.tensor([[1.0, 0.5, 0.0], [0.0, 0.0, 1.0]])
    torch.testing.assert_close(curve_auc(curve), torch.tensor([0.5, 0.25]))


def test_auc_functions_defaults_and_forward_args():
    model = TinyNet()
    images = torch.randn(2, 3, 6, 5, dtype=torch.float64)
    attributions = torch.randn(2, 6, 5, dtype=torch.float64)
    predicted = model(images).argmax(1)
    auc = deletion(model, images, attributions, pixels_per_step=3)
    torch.testing.assert_close(
        auc, curve_auc(deletion_curve(model, images, attributions, predicted, pixels_per_step=3))
    )
    assert (insertion(model, images, attributions, blur_kernel_size=3) >= 0).all()
    scaled = deletion(model, images, attributions, additional_forward_args=torch.tensor(
        [[2.0], [2.0]], dtype=torch.float64), score="logit", target=0)
    plain = deletion(model, images, attributions, score="logit", target=0)
    torch.testing.assert_close(scaled, 2 * plain)


def test_good_attribution_beats_a_reversed_one():
    # the model looks at one pixel: deleting it first must score lowest
    def model(x):
        logit = 10 * x[:, 0, 2, 3]
        return torch.stack([logit, -logit], dim=1)

    image = torch.zeros(1, 3, 6, 5)
    image[0, :, 2, 3] = 1.0
    good = torch.zeros(1, 6, 5)
    good[0, 2, 3] = 1.0
    reversed_ = 1.0 - good
    assert deletion(model, image, good, target=0, pixels_per_step=1) < deletion(
        model, image, reversed_, target=0, pixels_per_step=1)
    assert insertion(model, image, good, target=0, pixels_per_step=1, blur_kernel_size=3) > (
        insertion(model, image, reversed_, target=0, pixels_per_step=1, blur_kernel_size=3))


def test_pixel_order_is_stable_on_ties():
    attributions = torch.tensor([[[[1.0, -3.0], [0.0, 3.0]]]])
    assert pixel_order(attributions).tolist() == [[1, 3, 0, 2]]


@pytest.mark.parametrize("bad, name", [
    (dict(attributions=torch.zeros(2, 3, 5, 5)), "attributions"),
    (dict(attributions=torch.zeros(3, 3, 6, 5)), "attributions"),
    (dict(attributions=torch.full((2, 6, 5), float("nan"))), "attributions"),
    (dict(inputs=torch.zeros(2, 30)), "inputs"),
    (dict(pixels_per_step=0), "pixels_per_step"),
    (dict(score="prob"), "score"),
    (dict(baseline=torch.zeros(4)), "baseline"),
])
def test_bad_arguments(bad, name):
    kwargs = dict(forward_func=TinyNet().float(), inputs=torch.zeros(2, 3, 6, 5),
                  attributions=torch.zeros(2, 6, 5))
    kwargs.update(bad)
    with pytest.raises(ValueError, match=name):
        deletion(**kwargs)


def test_bad_blur():
    with pytest.raises(ValueError, match="blur_kernel_size"):
        insertion(TinyNet().float(), torch.zeros(1, 3, 6, 5), torch.zeros(1, 6, 5),
                  blur_kernel_size=4)
    with pytest.raises(ValueError, match="blur_kernel_size"):
        insertion(TinyNet().float(), torch.zeros(1, 3, 6, 5), torch.zeros(1, 6, 5))
