"""The techniques users compare IDG with: the model copies LRP and DeepLIFT read,
checked by what their rules must conserve, and SLIC superpixels."""

import pytest
import torch
from captum.attr import DeepLift
from torch import nn

from captum_idg.evaluation.methods import superpixels
from captum_idg.evaluation.propagation import batch_norm_pairs, deeplift_ready, lrp, lrp_composite


class SharedReLU6(nn.Module):
    """Conv-BN blocks with one ReLU6 module called twice, as EfficientNet-Lite does."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1, self.bn1 = nn.Conv2d(3, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6)
        self.conv2, self.bn2 = nn.Conv2d(6, 6, 3, padding=1), nn.BatchNorm2d(6)
        self.act = nn.ReLU6()
        self.fc = nn.Linear(6, 4)
        for bn in (self.bn1, self.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.data.uniform_(0.5, 1.5)
            bn.eps = 1e-2  # large enough that a merge which forgets it shows

    def forward(self, x):
        x = self.act(self.bn1(self.conv1(x)) * 4)
        x = self.act(self.bn2(self.conv2(x)) * 4) + x
        return self.fc(x.mean(dim=(2, 3)))


def _inputs() -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(3, 3, 12, 12, dtype=torch.float64, generator=generator)


def test_deeplift_on_the_ready_copy_is_complete_where_captums_own_is_not():
    model, x = SharedReLU6().double().eval(), _inputs()
    target = model(x).argmax(1)
    gap = (model(x) - model(torch.zeros_like(x))).gather(1, target[:, None])[:, 0].detach()
    ready = deeplift_ready(model, x[:1])
    torch.testing.assert_close(ready(x), model(x), rtol=0, atol=0)
    ours = DeepLift(ready).attribute(x.clone().requires_grad_(), target=target)
    torch.testing.assert_close(ours.sum(dim=(1, 2, 3)), gap, rtol=1e-9, atol=1e-9)
    plain = DeepLift(model).attribute(x.clone().requires_grad_(), target=target)
    assert (plain.sum(dim=(1, 2, 3)) - gap).abs().max() > 1e-3  # ReLU6 is not rescaled there
    assert isinstance(model.act, nn.ReLU6)  # the caller's model is untouched


def test_lrp_merges_batch_norm_exactly_and_restores_the_model():
    model, x = SharedReLU6().double().eval(), _inputs()
    assert batch_norm_pairs(model) == [(["conv1"], "bn1"), (["conv2"], "bn2")]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    reference = model(x)
    with lrp_composite(model).context(model) as modified:
        torch.testing.assert_close(modified(x), reference, rtol=0, atol=1e-12)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    relevance = lrp(model, x, reference.argmax(1))
    assert relevance.shape == x.shape and torch.isfinite(relevance).all()
    assert relevance.abs().sum() > 0


def test_lrp_refuses_a_batch_norm_without_a_convolution():
    with pytest.raises(ValueError, match="BatchNorm"):
        batch_norm_pairs(nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 3, 1)))


def test_superpixels_follow_the_photo_and_fall_back_to_a_grid_on_noise():
    from skimage import data

    photo = torch.from_numpy(data.astronaut()[:96, :96] / 255.0).permute(2, 0, 1)[None].float()
    segments = superpixels(photo)
    assert segments.shape == (1, 1, 96, 96) and 20 <= segments.unique().numel() <= 80
    noise = superpixels(torch.full((1, 3, 40, 40), 0.5))
    assert noise.unique().numel() == 49  # a 7 x 7 grid of about the same count


@pytest.mark.slow
def test_deeplift_and_lrp_on_efficientnet_lite0():
    from captum_idg.evaluation.models import load_model

    model = load_model("efficientnet_lite0").module.to(memory_format=torch.contiguous_format)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = model(x)
    target = logits.argmax(1)
    with lrp_composite(model).context(model) as modified, torch.no_grad():
        torch.testing.assert_close(modified(x), logits, rtol=0, atol=1e-3)
    gap = (logits - model(torch.zeros_like(x))).gather(1, target[:, None])[:, 0].detach()
    deeplift = DeepLift(deeplift_ready(model, x[:1])).attribute(x.requires_grad_(), target=target)
    torch.testing.assert_close(deeplift.sum(dim=(1, 2, 3)), gap, rtol=1e-4, atol=1e-3)
