"""captum-idg: Integrated Decision Gradients and its companions for Captum.

The attribution classes and schedules are importable from here; metrics from
``captum_idg.metrics``; the benchmark harness from ``captum_idg.evaluation``.
"""

from captum_idg import attr
from captum_idg.attr import *  # noqa: F401,F403

__version__ = "0.1.0"
__all__ = attr.__all__
