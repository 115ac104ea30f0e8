"""IDG attributed to a layer's input or output, like Captum's LayerIntegratedGradients."""

from typing import Any, Callable, List, Optional, Tuple, Union

import torch
from captum._utils.common import (
    _format_additional_forward_args,
)
from captum._utils.gradient import _forward_layer_eval
from captum._utils.typing import BaselineType, TargetType, TensorOrTupleOfTensorsGeneric
from captum.attr._utils.attribution import GradientAttribution, LayerAttribution
from captum.log import log_usage
from torch import Tensor
from torch.nn import Module

from captum_idg.attr._validation import format_inputs_and_baselines
from captum_idg.attr.integrated_decision_gradients import IntegratedDecisionGradients


class LayerIntegratedDecisionGradients(LayerAttribution, GradientAttribution):
    r"""
    Integrated Decision Gradients over the path between a layer's activations
    for the baselines and for the inputs, e.g. the token embeddings of a text
    classifier. The model runs on the real inputs with the layer's output (or
    input) replaced by the path point, so the path lies in the layer's space,
    as in Captum's ``LayerIntegratedGradients``. Every option of
    :class:`~captum_idg.IntegratedDecisionGradients` applies.
    """

    def __init__(
        self,
        forward_func: Callable[..., Tensor],
        layer: Module,
        device_ids: Union[None, List[int]] = None,
        multiply_by_inputs: bool = True,
    ) -> None:
        r"""
        Args:

            forward_func (Callable): The forward function of the model.
            layer (torch.nn.Module): The layer whose activations are
                    attributed; it must run once per forward pass.
            device_ids (list[int], optional): Device ids for a DataParallel
                    model, as in Captum. Default: None
            multiply_by_inputs (bool, optional): Multiply by the difference of
                    the layer's activations (global attribution). Default: True
        """
        LayerAttribution.__init__(self, forward_func, layer, device_ids)
        GradientAttribution.__init__(self, forward_func)
        self._multiply_by_inputs = multiply_by_inputs

    @property
    def multiplies_by_inputs(self) -> bool:
        return self._multiply_by_inputs

    def has_convergence_delta(self) -> bool:
        return True

    @log_usage()
    def attribute(  # type: ignore[override]
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        baselines: BaselineType = None,
        target: TargetType = None,
        additional_forward_args: Optional[object] = None,
        n_steps: int = 50,
        sampling: str = "adaptive",
        n_probe_steps: Optional[int] = None,
        rescale: bool = False,
        internal_batch_size: Optional[int] = None,
        return_convergence_delta: bool = False,
        attribute_to_layer_input: bool = False,
    ) -> Union[Tensor, Tuple[Tensor, ...], Tuple[Union[Tensor, Tuple[Tensor, ...]], Tensor]]:
        r"""
        Args:

            inputs (Tensor or tuple[Tensor, ...]): The model's inputs (token
                        ids may be integer tensors), batch first.
            baselines (scalar, Tensor, or tuple, optional): Baselines of the
                        model's inputs (e.g. padding token ids); the path
                        starts at the layer's activations for them.
                        Default: None (zeros)
            target, additional_forward_args, n_steps, sampling,
            n_probe_steps, rescale, internal_batch_size,
            return_convergence_delta: as in
                        :meth:`IntegratedDecisionGradients.attribute`.
            attribute_to_layer_input (bool, optional): Attribute to the
                        layer's input instead of its output. Default: False

        Returns:
            **attributions** of the layer's shape (a tuple if the layer has
            several inputs or outputs), or with **delta** as IDG returns it.
        """
        formatted_inputs, formatted_baselines = format_inputs_and_baselines(
            inputs, baselines, integer_inputs=True
        )
        args = _format_additional_forward_args(additional_forward_args) or ()
        with torch.no_grad():
            layer_inputs, layer_baselines = (
                _forward_layer_eval(self.forward_func, values, self.layer, args,
                                    self.device_ids, attribute_to_layer_input)
                for values in (formatted_inputs, formatted_baselines)
            )
        idg = IntegratedDecisionGradients(
            self._through_layer(len(layer_inputs), len(formatted_inputs),
                                attribute_to_layer_input),
            self.multiplies_by_inputs,
        )
        result = idg.attribute.__wrapped__(  # type: ignore[attr-defined]
            idg, layer_inputs, layer_baselines, target, (*formatted_inputs, *args),
            n_steps, sampling, n_probe_steps, rescale, internal_batch_size,
            return_convergence_delta,
        )
        attributions, delta = result if return_convergence_delta else (result, None)
        if len(attributions) == 1:
            attributions = attributions[0]
        return (attributions, delta) if return_convergence_delta else attributions

    def _through_layer(self, n_layer: int, n_inputs: int, to_layer_input: bool) -> Callable:
        r"""``forward(*layer values, *model inputs, *args)``: the model run on
        its inputs with the layer's activations replaced by ``layer values``."""

        def forward(*values: Any) -> Tensor:
            layer_values = values[:n_layer]
            model_args = values[n_layer:]

            def replace_input(module: Module, args: Tuple) -> Tuple:
                return layer_values

            def replace_output(module: Module, args: Tuple, output: Any) -> Any:
                return layer_values if isinstance(output, tuple) else layer_values[0]

            hook = (self.layer.register_forward_pre_hook(replace_input) if to_layer_input
                    else self.layer.register_forward_hook(replace_output))
            try:
                return self.forward_func(*model_args)
            finally:
                hook.remove()

        return forward
