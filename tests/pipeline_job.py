"""A pipeline run on a tiny model: ``python pipeline_job.py IMAGES OUT [SLEEP]``, alone or
under ``torchrun``. SLEEP seconds per forward pass let a test kill it mid-run."""

import sys
import time
from pathlib import Path

import torch

from captum_idg.evaluation.datasets import find_images
from captum_idg.evaluation.models import LITE_MEAN, LITE_STD, ImageModel
from captum_idg.evaluation.pipeline import run

METHODS = ["idg", "ig", "saliency"]


class Slow(torch.nn.Module):
    def __init__(self, module: torch.nn.Module, sleep: float) -> None:
        super().__init__()
        self.module, self.sleep = module, sleep

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.sleep)
        return self.module(x)


def tiny_model(sleep: float = 0.0) -> ImageModel:
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 5, stride=2), torch.nn.Softplus(), torch.nn.AdaptiveAvgPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(32, 1000),
    ).eval()
    return ImageModel("tiny", Slow(module, sleep) if sleep else module, LITE_MEAN, LITE_STD, 32)


def main(images: str, out: str, sleep: float = 0.0) -> None:
    torch.set_num_threads(1)
    run(find_images([images]), [tiny_model(sleep)], METHODS, Path(out), n_steps=8,
        batch_size=4, pixels_per_step=64, keep_attributions=True, correct_only=False,
        heatmaps=False, progress=False, workers=1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 0.0)
