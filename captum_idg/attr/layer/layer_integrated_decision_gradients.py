"""IDG attributed to a layer's input or output, a drop-in for Captum's LayerIntegratedGradients."""

from copy import copy
from functools import partial
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch
from captum._utils.common import (
    _extract_device,
    _format_outputs,
)
from captum._utils.gradient import _forward_layer_eval
from captum._utils.typing import BaselineType, ModuleOrModuleList, TargetType
from captum.attr import LayerIntegratedGradients
from captum.log import log_usage
from torch import Tensor
from torch.nn import Module
from torch.nn.parallel.scatter_gather import scatter

from captum_idg._validation import add_note
from captum_idg.attr._docs import documented
from captum_idg.attr._intake import take_arguments
from captum_idg.attr._path import summed_gradients
from captum_idg.attr._references import several_references
from captum_idg.attr.integrated_decision_gradients import IntegratedDecisionGradients

LayerAttributions = Union[Tensor, Tuple[Tensor, ...], List[Union[Tensor, Tuple[Tensor, ...]]]]


class LayerIntegratedDecisionGradients(LayerIntegratedGradients):
    r"""
    Integrated Decision Gradients over the path between a layer's activations
    for the baselines and for the inputs, e.g. the token embeddings of a text
    model, as Captum's ``LayerIntegratedGradients`` does for IG. The model
    runs on the real inputs with the layer's output (or input) replaced by
    the path point, so the path lies in the layer's space. Every option of
    :class:`~captum_idg.IntegratedDecisionGradients` applies.

    It is a ``LayerIntegratedGradients``, so Captum's own code that accepts
    one accepts it, among them ``LLMGradientAttribution``: there the target is
    the log-probability of each generated token, the attributions of a token
    are IDG's, and with ``rescale=True`` they sum to that log-probability's
    change from the baseline prompt to the real one, as LayerIG's do.
    """

    def __init__(
        self,
        forward_func: Callable[..., Tensor],
        layer: ModuleOrModuleList,
        device_ids: Union[None, List[int]] = None,
        multiply_by_inputs: bool = True,
    ) -> None:
        r"""
        Args:

            forward_func (Callable): The forward function of the model.
            layer (torch.nn.Module or list): The layer, or independent layers,
                    whose activations are attributed; each must run once per
                    forward pass.
            device_ids (list[int], optional): Device ids for a DataParallel
                    model, as in Captum. Default: None
            multiply_by_inputs (bool, optional): Multiply by the difference of
                    the layer's activations (global attribution). Default: True
        """
        super().__init__(forward_func, layer, device_ids, multiply_by_inputs)
        self.ig = IntegratedDecisionGradients(forward_func, multiply_by_inputs)
        self.refinement = None

    @log_usage()
    @documented
    @several_references
    def attribute(  # type: ignore[override]
        self,
        inputs: Union[Tensor, Tuple[Tensor, ...]],
        baselines: BaselineType = None,
        target: TargetType = None,
        additional_forward_args: Optional[object] = None,
        n_steps: int = 50,
        method: str = "adaptive",
        internal_batch_size: Optional[int] = None,
        return_convergence_delta: bool = False,
        attribute_to_layer_input: bool = False,
        grad_kwargs: Optional[Dict[str, Any]] = None,
        n_probe_steps: Optional[int] = None,
        rescale: Optional[bool] = None,
        tolerance: Optional[float] = None,
    ) -> Union[LayerAttributions, Tuple[LayerAttributions, Tensor]]:
        r"""
        Args:

            inputs (Tensor or tuple[Tensor, ...]): The model's inputs (token
                        ids may be integer tensors), batch first.
            baselines (scalar, Tensor, or tuple, optional): Baselines of the
                        model's inputs (e.g. padding token ids), broadcast as
                        Captum does; the path starts at the layer's
                        activations for them. ``(N, K, *inputs.shape[1:])``
                        gives K reference inputs per example (e.g. K
                        reference token sequences): the attributions are
                        the mean over them. Default: None (zeros)
            {target}
            {additional_forward_args}
            n_steps, method, internal_batch_size, return_convergence_delta:
                        as in :meth:`IntegratedDecisionGradients.attribute`.
            attribute_to_layer_input (bool, optional): Attribute to the
                        layer's input instead of its output. Default: False
            grad_kwargs (dict, optional): Extra keyword arguments of
                        ``torch.autograd.grad``. Default: None
            n_probe_steps, rescale, tolerance: as in
                        :meth:`IntegratedDecisionGradients.attribute`.

        Returns:
            **attributions** of the layer's shape (a tuple if the layer has
            several inputs or outputs, a list if ``layer`` is a list), or with
            **delta** as IDG returns it.
        """
        arguments = take_arguments(self.forward_func, inputs, baselines, target,
                                   additional_forward_args, internal_batch_size, n_steps,
                                   integer_inputs=True)
        model_inputs, model_baselines = arguments.inputs, arguments.baselines
        args = arguments.additional_forward_args
        if self.device_ids is None:
            self.device_ids = getattr(self.forward_func, "device_ids", None)
        layer_inputs, counts = self._activations(model_inputs, args, attribute_to_layer_input)
        layer_baselines, _ = self._activations(model_baselines, args, attribute_to_layer_input)
        idg = copy(self.ig)
        idg.forward_func = self._layer_forward(counts, attribute_to_layer_input)
        idg.gradient_func = partial(summed_gradients, grad_kwargs=grad_kwargs)
        result = idg.attribute.__wrapped__(  # type: ignore[attr-defined]
            idg, layer_inputs, baselines=layer_baselines, target=target,
            additional_forward_args=(*model_inputs, *(args or ())), n_steps=n_steps,
            method=method, internal_batch_size=internal_batch_size,
            return_convergence_delta=return_convergence_delta, n_probe_steps=n_probe_steps,
            rescale=rescale, tolerance=tolerance,
        )
        self.refinement = idg.refinement
        attributions, delta = result if return_convergence_delta else (result, None)
        attributions = attributions if isinstance(attributions, tuple) else (attributions,)
        bounds = [sum(counts[:i]) for i in range(len(counts) + 1)]
        per_layer = [tuple(attributions[a:b]) for a, b in zip(bounds, bounds[1:])]
        formatted = _format_outputs(isinstance(self.layer, list), per_layer)
        return (formatted, delta) if return_convergence_delta else formatted

    def _activations(
        self, model_inputs: Tuple[Tensor, ...], args: Optional[tuple], to_layer_input: bool
    ) -> Tuple[Tuple[Tensor, ...], List[int]]:
        r"""The layers' activations for ``model_inputs``, as one tuple, and how
        many tensors each layer has."""
        try:
            with torch.no_grad():
                values = _forward_layer_eval(
                    self.forward_func, model_inputs, self.layer, args, self.device_ids,
                    to_layer_input,
                )
        except Exception as error:
            add_note(error, f"forward_func failed on inputs "
                            f"{[tuple(x.shape) for x in model_inputs]} (dtypes "
                            f"{[str(x.dtype) for x in model_inputs]}) while reading the "
                            "layer's activations, or the layer did not run")
            raise
        per_layer = values if isinstance(self.layer, list) else [values]
        return tuple(t for layer in per_layer for t in layer), [len(layer) for layer in per_layer]

    def _layer_forward(self, counts: List[int], to_layer_input: bool) -> Callable:
        r"""``forward(*layer values, *model inputs, *args)``: the model run on
        its inputs with each layer's activations replaced by its values."""
        layers = self.layer if isinstance(self.layer, list) else [self.layer]
        bounds = [sum(counts[:i]) for i in range(len(counts) + 1)]

        def forward(*values: Any) -> Tensor:
            layer_values, model_args = values[: bounds[-1]], values[bounds[-1]:]
            on_device = _by_device(layer_values, self.device_ids)
            ran = [False] * len(layers)

            def replace(index: int, module: Module, hook_inputs: Any, hook_outputs: Any = None):
                ran[index] = True
                mine = on_device(_extract_device(module, hook_inputs, hook_outputs))
                mine = mine[bounds[index]: bounds[index + 1]]
                as_tuple = to_layer_input or isinstance(hook_outputs, tuple)
                return tuple(mine) if as_tuple else mine[0]

            hooks = [
                layer.register_forward_pre_hook(partial(replace, i)) if to_layer_input
                else layer.register_forward_hook(partial(replace, i))
                for i, layer in enumerate(layers)
            ]
            try:
                output = self.forward_func(*model_args)
            finally:
                for hook in hooks:
                    hook.remove()
            if not all(ran):
                raise ValueError("layer: forward_func did not run the layer given")
            return output

        return forward


def _by_device(values: Tuple[Tensor, ...], device_ids: Optional[List[int]]) -> Callable:
    r"""``values`` on the device asked for: as they are, or, for a
    DataParallel model, the replica's part of them (as Captum scatters them)."""
    if not device_ids:
        return lambda device: values
    parts = {part[0].device: part for part in scatter(values, target_gpus=device_ids)}
    return lambda device: parts[device]
