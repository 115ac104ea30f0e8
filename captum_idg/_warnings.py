"""Warnings raised at the user's line, not inside this package or Captum."""

import os
import sys
import warnings

import captum
import torch

# frames in these folders are not the user's: the package, Captum (log_usage,
# NoiseTunnel, metrics) and torch (no_grad and other decorators)
_LIBRARIES = tuple(
    os.path.dirname(os.path.abspath(path)) + os.sep for path in (__file__, captum.__file__,
                                                                 torch.__file__)
)


def warn(message: str, category: type = UserWarning) -> None:
    r"""``warnings.warn(message)`` at the first frame of the call stack that
    is outside this package, Captum and torch: the user's call."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_LIBRARIES):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level + 1)


def some_examples(indices: list, total: int, shown: int = 5) -> str:
    r"""``"3 of 200 examples (4, 17, 99)"``: a count and the first ``shown``
    indices, for a warning of one line however large the batch."""
    first = ", ".join(str(i) for i in indices[:shown]) + (", ..." if len(indices) > shown else "")
    return f"{len(indices)} of {total} examples ({first})"
