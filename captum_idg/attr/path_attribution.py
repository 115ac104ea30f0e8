"""A path method composed of public parts, as a Captum ``GradientAttribution``."""

from typing import Callable, Optional, Tuple, Union

from captum._utils.typing import BaselineType, TargetType, TensorOrTupleOfTensorsGeneric
from captum.log import log_usage
from torch import Tensor

from captum_idg._validation import check_choice
from captum_idg.attr._docs import documented
from captum_idg.attr._intake import take_arguments
from captum_idg.attr._path import Path, StraightLinePath
from captum_idg.attr._path_attribution import Attributions, PathIntegralAttribution
from captum_idg.attr._path_integral import PATH_METHODS, ModelOnPath, PathWeight, Sampler, Weight
from captum_idg.attr._references import several_references

PathMaker = Callable[[Tuple[Tensor, ...], Tuple[Tensor, ...]], Path]


class PathAttribution(PathIntegralAttribution):
    r"""
    ``sum_k c_k grad F(z(a_k)) * dz/da(a_k)`` along a path ``z`` from each
    baseline to its input, composed of parts given by keyword (see
    :mod:`captum_idg.paths`): where the path runs, where to sample it, and how
    to weigh each sample.

    Example, path-weighted IG (IG whose samples count by a weight along the path)::

        >>> class Late(Weight):
        ...     def __call__(self, schedule, steps, rate, logits):
        ...         return schedule.weights[steps] * 2 * schedule.alphas[steps]
        >>> explainer = PathAttribution(model, weight=Late())
        >>> attributions = explainer.attribute(x, target=3, n_steps=32)

    Args:

        forward_func (Callable): The forward function of the model.
        path (Callable, optional): Makes the :class:`~captum_idg.paths.Path`
                    of a call from its formatted ``inputs`` and ``baselines``
                    (tuples of tensors of the same shapes): a ``Path``
                    subclass such as
                    :class:`~captum_idg.paths.StraightLinePath`, or a
                    function. Default: the straight line
        sampler (Sampler or str, optional): Where to sample: a
                    :class:`~captum_idg.paths.Sampler`, or a ``method`` name of
                    :data:`~captum_idg.paths.PATH_METHODS`. Default:
                    ``"gausslegendre"`` (Captum IG's default)
        weight (Weight, optional): Each sample's coefficient. Default:
                    :class:`~captum_idg.paths.PathWeight` (IG)
        multiply_by_inputs (bool, optional): Multiply each step's gradient by
                    the step ``dz`` (global attribution), as IG multiplies by
                    ``x - x'``. Default: True
    """

    def __init__(
        self,
        forward_func: Callable[..., Tensor],
        *,
        path: PathMaker = StraightLinePath,
        sampler: Union[Sampler, str] = "gausslegendre",
        weight: Optional[Weight] = None,
        multiply_by_inputs: bool = True,
    ) -> None:
        PathIntegralAttribution.__init__(self, forward_func, multiply_by_inputs)
        if isinstance(sampler, str):
            check_choice("sampler", sampler, list(PATH_METHODS))
        elif not isinstance(sampler, Sampler):
            raise ValueError(f"sampler must be a Sampler or a method name, got "
                             f"{type(sampler).__name__}")
        if weight is not None and not callable(weight):
            raise ValueError(f"weight must be a Weight, got {type(weight).__name__}")
        self.path, self.sampler = path, sampler
        self.weight = PathWeight() if weight is None else weight

    @log_usage()
    @documented
    @several_references
    def attribute(  # type: ignore[override]
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        baselines: BaselineType = None,
        target: TargetType = None,
        additional_forward_args: Optional[object] = None,
        n_steps: int = 50,
        internal_batch_size: Optional[int] = None,
        return_convergence_delta: bool = False,
        tolerance: Optional[float] = None,
        rescale: bool = False,
    ) -> Attributions:
        r"""
        Args:

            {inputs}
            {baselines}
            {target}
            {additional_forward_args}
            {n_steps}
            {internal_batch_size}
            return_convergence_delta (bool, optional): Also return
                        ``sum_k w_k dF/da(a_k) - (F(x) - F(x'))`` per example:
                        how well the samples integrate the logit's change
                        along the path. Default: False
            {tolerance}
                        Straight-line paths only.
            rescale (bool, optional): Scale each example's attributions so that
                        they sum to F(x) - F(x'). Default: False

        Returns:
            **attributions** or 2-element tuple of **attributions**, **delta**.
        """
        arguments = take_arguments(self.forward_func, inputs, baselines, target,
                                   additional_forward_args, internal_batch_size, n_steps)
        sampler = (PATH_METHODS[self.sampler].sampler(n_steps, None)
                   if isinstance(self.sampler, str) else self.sampler)
        model = ModelOnPath.of(self, self.path(arguments.inputs, arguments.baselines), arguments)
        return self._integrate(inputs, model, n_steps=n_steps, sampler=sampler,
                               weight=self.weight, tolerance=tolerance, rescale=rescale,
                               return_convergence_delta=return_convergence_delta)
