"""Independent implementations the tests compare against (PAIR's saliency, Quantus, SciPy,
transformers, Sphinx...): skipped where they are not installed, but an error when ``CI`` is
set, since CI installs the ``[test]`` extra and a missing oracle there is a broken install,
not a reason to test less."""

import importlib
import os
from types import ModuleType

import pytest


def oracle(module: str) -> ModuleType:
    r"""``module``, imported; skips the test module without it, unless ``CI`` is set."""
    if os.environ.get("CI"):
        return importlib.import_module(module)
    return pytest.importorskip(module)
