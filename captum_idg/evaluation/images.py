"""Images to explain: the real photos inside scikit-image, or files of yours."""

from dataclasses import dataclass
from pathlib import Path
from typing import FrozenSet, List, Optional

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image, UnidentifiedImageError
from torch import Tensor

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")

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


def demo_images() -> List[LabeledImage]:
    """The real photos that ship with scikit-image."""
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
    return images


def load_image(path: Path) -> LabeledImage:
    """An image file as RGB in ``[0, 1]``: 8- and 16-bit, greyscale, palette and
    CMYK images converted, transparent ones composited on white; an unreadable
    file raises ValueError."""
    try:
        with Image.open(path) as image:
            pixels = _rgb(image)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"{path}: not a readable image ({type(error).__name__})") from None
    return LabeledImage(Path(path).stem, pixels)


def _rgb(image: Image.Image) -> Tensor:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit greyscale: RGB would clip it
        scale = 65535.0 if image.mode.startswith("I;16") or np.asarray(image).max() > 255 else 255.0
        grey = torch.from_numpy(np.asarray(image, dtype=np.float32) / scale).clamp(0, 1)
        return grey.expand(3, *grey.shape).clone()
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        image = image.convert("RGBA")
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image)
    array = np.asarray(image.convert("RGB"))
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255


VIEW_SCALES = (1.0, 0.8, 0.64)


def views(image: LabeledImage) -> List[LabeledImage]:
    """
    22 views of a photo: square crops of 100%, 80% and 64% of its short side
    (the centre, and for the smaller two also the four corners), each as it is
    and mirrored. Named ``NAME@SCALE-POSITION`` (``-m`` when mirrored).
    """
    _, height, width = image.pixels.shape
    found = []
    for scale in VIEW_SCALES:
        side = int(round(scale * min(height, width)))
        places = {"c": ((height - side) // 2, (width - side) // 2)}
        if scale < 1:
            places.update(tl=(0, 0), tr=(0, width - side), bl=(height - side, 0),
                          br=(height - side, width - side))
        for place, (top, left) in places.items():
            crop = image.pixels[:, top : top + side, left : left + side]
            name = f"{image.name}@{scale:g}-{place}"
            found.append(LabeledImage(name, crop, image.labels))
            found.append(LabeledImage(name + "-m", crop.flip(-1), image.labels))
    return found


def prepare(pixels: Tensor, size: int) -> Tensor:
    """Resize the short side to ``size * 256 / 224`` and crop the centre square."""
    resized = TF.resize(pixels, round(size * 256 / 224), antialias=True)
    return TF.center_crop(resized, size).clamp(0, 1)
