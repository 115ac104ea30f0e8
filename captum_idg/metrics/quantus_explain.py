"""Any Captum-style attribution class as a Quantus ``explain_func``."""

from typing import Any, Callable

import numpy as np
import torch
from torch import nn


def quantus_explain_func(attribution_class: Callable[[nn.Module], Any],
                         **attribute_kwargs: Any) -> Callable[..., np.ndarray]:
    r"""
    An ``explain_func`` for Quantus metrics: ``explain(model, inputs, targets,
    **kwargs)`` builds ``attribution_class(model)`` (say
    :class:`~captum_idg.IntegratedDecisionGradients`) and returns its
    attributions of the numpy ``inputs`` for ``targets`` as numpy, with
    ``attribute_kwargs`` (``n_steps=16``) passed to ``attribute``. The maps
    keep the input's shape; Quantus 0.6's ROAD ranks channels times pixels, so
    give it single-channel inputs (or use :func:`~captum_idg.metrics.road`).

    Example::

        >>> quantus.ROAD()(model=net, x_batch=x, y_batch=y, device="cpu",
        ...                explain_func=quantus_explain_func(IntegratedDecisionGradients))
    """

    def explain(model: nn.Module, inputs: Any, targets: Any, **_: Any) -> np.ndarray:
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        x = torch.as_tensor(inputs, device=device)
        if parameter is not None and x.is_floating_point():
            x = x.to(parameter.dtype)
        target = torch.as_tensor(np.asarray(targets), device=device).long()
        attributions = attribution_class(model).attribute(x, target=target, **attribute_kwargs)
        return attributions.detach().cpu().numpy()

    return explain
