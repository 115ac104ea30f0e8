"""The cascading model-parameter randomisation test (Adebayo et al., NeurIPS 2018).

An explanation of the model should change when the model does. The test
re-initialises the model's layers from the top (the classifier) down, a stage
at a time and cumulatively, explains the same inputs after every stage, and
compares each explanation with the original by the Spearman rank correlation
of their pixel saliencies (``|sum over channels|``, as insertion and deletion
rank pixels). :func:`model_randomisation` reports the mean over stages per
example: near 1 means the explanation ignores the model (an edge detector
scores 1), lower is more model-sensitive.

A layer is re-initialised by its own ``reset_parameters`` (PyTorch's default
initialisation; BatchNorm also resets its running statistics), under a seed,
on a copy: the caller's model is never changed.
"""

import copy
from typing import Any, Callable, Iterator, List, Optional, Tuple

import torch
from captum._utils.common import safe_div
from captum._utils.typing import TargetType
from torch import Tensor, nn

from captum_idg._validation import check_count

Explain = Callable[[Tensor, TargetType], Tensor]  # (inputs, target) -> attributions


def parameterised_layers(module: nn.Module) -> List[Tuple[str, nn.Module]]:
    """The modules of ``module`` that hold parameters of their own, from the
    output down (the reverse of their registration order)."""
    layers = [(name, m) for name, m in module.named_modules()
              if any(True for _ in m.parameters(recurse=False))]
    return layers[::-1]


def randomisation_stages(module: nn.Module, stages: Optional[int] = None
                         ) -> List[List[Tuple[str, nn.Module]]]:
    """:func:`parameterised_layers` in ``stages`` contiguous groups of
    near-equal size, from the top (None: one layer a stage)."""
    layers = parameterised_layers(module)
    if not layers:
        raise ValueError("the model has no parameters to randomise")
    count = len(layers) if stages is None else min(check_count("stages", stages, 1), len(layers))
    bounds = [round(i * len(layers) / count) for i in range(count + 1)]
    return [layers[a:b] for a, b in zip(bounds, bounds[1:])]


def cascade(module: nn.Module, stages: Optional[int] = None, seed: int = 0
            ) -> Iterator[List[str]]:
    """Re-initialises ``module`` **in place**, a stage of
    :func:`randomisation_stages` at a time, yielding the names of the layers
    re-initialised so far after each stage. Give it a copy."""
    done: List[str] = []
    for k, stage in enumerate(randomisation_stages(module, stages)):
        with torch.random.fork_rng(devices=_devices(module)):
            torch.manual_seed(seed + k)
            for name, layer in stage:
                _reinitialise(layer)
                done.append(name)
        yield list(done)


def spearman(a: Tensor, b: Tensor) -> Tensor:
    r"""The Spearman rank correlation of each row of ``a`` with the same row of
    ``b`` (``(N, features)``), ties given their average rank; 0 where a row is
    constant (it orders nothing)."""
    ra, rb = _average_ranks(a.double()), _average_ranks(b.double())
    ra, rb = ra - ra.mean(dim=1, keepdim=True), rb - rb.mean(dim=1, keepdim=True)
    denominator = ra.norm(dim=1) * rb.norm(dim=1)
    return torch.where(denominator > 0, safe_div((ra * rb).sum(dim=1), denominator), 0.0)


def saliency_map(attributions: Tensor) -> Tensor:
    """``|sum over channels|`` of image attributions, flattened: ``(N, H * W)``."""
    summed = attributions.sum(dim=1) if attributions.dim() == 4 else attributions
    return summed.abs().flatten(1)


def randomisation_correlations(explain: Explain, module: nn.Module, inputs: Tensor,
                               target: TargetType = None, stages: Optional[int] = None,
                               seed: int = 0, original: Optional[Tensor] = None) -> Tensor:
    r"""
    ``(batch, stages)``: the rank correlation of ``explain(inputs, target)``
    after each stage of :func:`cascade` on ``module`` with the explanation
    before it (``original``, if already computed). ``explain`` must run
    ``module``, which is re-initialised **in place**: give a copy
    (:func:`model_randomisation` makes one).
    """
    original = saliency_map(explain(inputs, target).detach() if original is None
                            else original)
    correlations = [spearman(original, saliency_map(explain(inputs, target).detach()))
                    for _ in cascade(module, stages, seed)]
    return torch.stack(correlations, dim=1).to(inputs.device)


def model_randomisation(
    explainer: Any,
    inputs: Tensor,
    target: TargetType = None,
    model: Optional[nn.Module] = None,
    stages: Optional[int] = None,
    seed: int = 0,
    **attribute_kwargs: Any,
) -> Tensor:
    r"""
    The cascading model-parameter randomisation test per example: the mean
    over stages of :func:`randomisation_correlations`. Lower is more
    model-sensitive; an explanation that ignores the model scores 1.

    Args:
        explainer: A Captum attribution object (``explainer.attribute(inputs,
                    target=..., **attribute_kwargs)``) built on ``model``.
        inputs (Tensor): Images ``(batch, channels, height, width)``.
        target (int, list, or Tensor, optional): As in Captum. Default: None
        model (nn.Module, optional): The model to randomise. Default: None
                    (``explainer.forward_func``)
        stages (int, optional): Groups the parameterised layers are
                    randomised in, from the top. Default: None (one layer a
                    stage, as Adebayo et al.)
        seed (int, optional): Seed of the re-initialisation. Default: 0

    Returns:
        *Tensor* ``(batch,)``.
    """
    model = explainer.forward_func if model is None else model
    if not isinstance(model, nn.Module):
        raise ValueError("model must be the nn.Module the explainer runs (it has none of its "
                         "own as forward_func)")
    memo: dict = {}
    randomised = copy.deepcopy(model, memo)  # the explainer's copy runs this copy
    copied = copy.deepcopy(explainer, memo)

    def explain(x: Tensor, t: TargetType) -> Tensor:
        return copied.attribute(x, target=t, **attribute_kwargs)

    return randomisation_correlations(explain, randomised, inputs, target, stages,
                                      seed).mean(dim=1)


def _reinitialise(layer: nn.Module) -> None:
    if hasattr(layer, "reset_parameters"):
        layer.reset_parameters()
        return
    with torch.no_grad():
        for parameter in layer.parameters(recurse=False):
            parameter.normal_(0.0, float(parameter.std()) if parameter.numel() > 1 else 1.0)


def _devices(module: nn.Module) -> List[int]:
    return sorted({p.device.index or 0 for p in module.parameters() if p.is_cuda})


def _average_ranks(x: Tensor) -> Tensor:
    """Ranks of each row of ``x`` (0-based), ties given their average."""
    ranks = torch.empty_like(x)
    for i, row in enumerate(x):
        _, inverse, counts = torch.unique(row, return_inverse=True, return_counts=True)
        ends = counts.cumsum(0).double()
        ranks[i] = ((ends - 1) - (counts.double() - 1) / 2)[inverse]
    return ranks
