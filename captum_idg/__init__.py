"""captum-idg: Integrated Decision Gradients and its companions for Captum.

The attribution classes and schedules are importable from here (loaded on
first use, so the command line starts without torch); metrics from
``captum_idg.metrics``; the benchmark harness from ``captum_idg.evaluation``.
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    attr = import_module("captum_idg.attr")
    if name == "__all__":
        return attr.__all__
    if name in attr.__all__:
        return getattr(attr, name)
    raise AttributeError(f"module 'captum_idg' has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | set(import_module("captum_idg.attr").__all__))
