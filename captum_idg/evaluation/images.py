"""Images to explain: the real photos inside scikit-image, or files of yours."""

from dataclasses import dataclass
from pathlib import Path
from typing import FrozenSet, List, Optional

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image, UnidentifiedImageError
from torch import Tensor

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

# ImageNet classes that count as a correct prediction for each bundled photo.
DEMO_LABELS = {
    "chelsea": frozenset({281, 282, 283, 284, 285}),  # tabby .. Egyptian cat
    "coffee": frozenset({504, 967, 968}),  # coffee mug, espresso, cup
    "rocket": frozenset({657, 744, 812}),  # missile, projectile, space shuttle
    "motorcycle_left": frozenset({665, 670}),  # moped, motor scooter
    "motorcycle_right": frozenset({665, 670}),
    "astronaut": frozenset(),  # no ImageNet class: shown by explain, never "correct"
}


@dataclass
class LabeledImage:
    """RGB pixels in ``[0, 1]``, shape ``(3, H, W)``, and the classes that
    count as correct (None: unknown, every prediction is kept)."""

    name: str
    pixels: Tensor
    labels: Optional[FrozenSet[int]] = None


def demo_images(flips: bool = False) -> List[LabeledImage]:
    """The real photos that ship with scikit-image (and their mirror images)."""
    try:
        import skimage.data as data
    except ImportError:
        raise ValueError('the demo photos need: pip install "captum-idg[bench]"') from None
    left, right, _ = data.stereo_motorcycle()
    arrays = {"chelsea": data.chelsea(), "coffee": data.coffee(), "rocket": data.rocket(),
              "motorcycle_left": left, "motorcycle_right": right,
              "astronaut": data.astronaut()}
    images = []
    for name, array in arrays.items():
        pixels = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).float() / 255
        images.append(LabeledImage(name, pixels, DEMO_LABELS[name]))
        if flips:
            images.append(LabeledImage(f"{name}_flipped", pixels.flip(-1), DEMO_LABELS[name]))
    return images


def load_image(path: Path) -> LabeledImage:
    """An RGB JPEG or PNG; anything else raises ValueError with the reason."""
    try:
        with Image.open(path) as image:
            mode = image.mode
            if mode != "RGB":
                raise ValueError(f"{path}: a {mode} image, not RGB")
            array = np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"{path}: not a readable image ({type(error).__name__})") from None
    pixels = torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255
    return LabeledImage(Path(path).stem, pixels)


def image_paths(paths: List[str]) -> List[Path]:
    """Files as given, folders expanded to their JPEG/PNG files (sorted)."""
    found: List[Path] = []
    for entry in map(Path, paths):
        if entry.is_dir():
            found += sorted(p for p in entry.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            found.append(entry)
    return found


def prepare(pixels: Tensor, size: int) -> Tensor:
    """Resize the short side to ``size * 256 / 224`` and crop the centre square."""
    resized = TF.resize(pixels, round(size * 256 / 224), antialias=True)
    return TF.center_crop(resized, size).clamp(0, 1)
