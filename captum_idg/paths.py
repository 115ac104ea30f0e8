"""The path toolkit: compose a path method from public parts.

A path method is ``sum_k c_k grad F(z(a_k)) * dz/da(a_k)`` along a path ``z``
from a baseline (``alpha = 0``) to the input (``alpha = 1``), per example. Four
parts say everything about it, and every method of this package is made of
them:

- a :class:`Path`, geometry only: its points, its derivative ``dz/dalpha``, and
  which examples to keep (:class:`StraightLinePath`, or a subclass of yours);
- a :class:`Sampler`: where the samples ``a_k`` go and their quadrature
  weights ``w_k`` (:class:`FixedRule`, :class:`Adaptive`, :class:`AuthorsSchedule`,
  :class:`SaturationCut`, :class:`Regions`, or yours; one that places samples
  from the gradients it has seen overrides :meth:`Sampler.integrate`, as
  :class:`Adaptive` does on piecewise-linear networks);
- a :class:`Weight`: each sample's coefficient ``c_k`` (:class:`PathWeight`, IG;
  :class:`DecisionWeight`, IDG; :class:`AuthorsDecisionWeight`; or yours);
- a stopping rule: :class:`FixedSteps`, or :class:`Tolerance` (until the
  estimated error of the map is small: the linear regions walked where they
  can be, pooled randomized rounds elsewhere; straight lines).

:class:`ModelOnPath` runs the model along a path for all of them (targets,
forward arguments, passes that fit in memory), and :class:`PathAttribution`
composes the parts, by keyword, into a Captum ``GradientAttribution``.
:data:`PATH_METHODS` maps the ``method=`` names of the classes to samplers;
:func:`register_method` adds one.
"""

from captum_idg.attr._path import DirectionSums, Path, StepSums, StraightLinePath, summed_gradients
from captum_idg.attr._path_integral import (
    PATH_METHODS,
    Adaptive,
    AuthorsDecisionWeight,
    AuthorsSchedule,
    DecisionWeight,
    FixedRule,
    FixedSteps,
    Integral,
    Known,
    ModelOnPath,
    PathMethod,
    PathSums,
    PathWeight,
    Sampler,
    SaturationCut,
    Schedule,
    Weight,
    register_method,
)
from captum_idg.attr._regions import Regions
from captum_idg.attr._tolerance import Tolerance
from captum_idg.attr.path_attribution import PathAttribution

__all__ = [
    "PATH_METHODS",
    "Adaptive",
    "AuthorsDecisionWeight",
    "AuthorsSchedule",
    "DecisionWeight",
    "DirectionSums",
    "FixedRule",
    "FixedSteps",
    "Integral",
    "Known",
    "ModelOnPath",
    "Path",
    "PathAttribution",
    "PathMethod",
    "PathSums",
    "PathWeight",
    "Regions",
    "Sampler",
    "SaturationCut",
    "Schedule",
    "StepSums",
    "StraightLinePath",
    "Tolerance",
    "Weight",
    "register_method",
    "summed_gradients",
]
