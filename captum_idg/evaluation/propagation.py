"""Copies of a classifier that the propagation rules of LRP and DeepLift can read.

Captum's DeepLift applies its rescale rule only to modules of the exact types it
lists (no ReLU6), and reads each module's input and output from its last call,
so a module called twice in one forward (EfficientNet-Lite's ``_swish``) gets the
wrong multipliers; Captum's LRP has no rule for EfficientNet's padding modules
nor for its skip additions. :func:`deeplift_ready` fixes the first two on a
copy; LRP uses zennit's ``EpsilonPlusFlat`` composite with BatchNorm merged into
the convolution before it (:func:`lrp_composite`).
"""

import copy
from typing import Any, Dict, List, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class _PerCall(nn.Module):
    """A module called several times in a forward pass, as one copy per call."""

    def __init__(self, module: nn.Module, calls: int) -> None:
        super().__init__()
        self.copies = nn.ModuleList(copy.deepcopy(module) for _ in range(calls))
        self.calls = 0

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        module = self.copies[self.calls % len(self.copies)]
        self.calls += 1
        return module(*args, **kwargs)


def _relu(module: nn.ReLU6) -> nn.ReLU:
    """An ``nn.ReLU`` (a type DeepLift rescales) that computes ``module``'s ReLU6."""
    relu = nn.ReLU()
    relu.forward = F.relu6  # type: ignore[method-assign]
    return relu


def deeplift_ready(module: nn.Module, example: Tensor) -> nn.Module:
    """A copy of ``module`` with the same outputs, whose ReLU6 modules are ReLU
    modules computing ReLU6 and whose modules called more than once per forward
    (counted on ``example``) are one copy per call."""
    module = copy.deepcopy(module)
    for name, child in list(module.named_modules()):
        if type(child) is nn.ReLU6:
            _replace(module, name, _relu(child))
    calls: Dict[str, int] = {}
    hooks = [m.register_forward_pre_hook(lambda *_, n=n: calls.__setitem__(n, calls.get(n, 0) + 1))
             for n, m in module.named_modules() if n and not list(m.children())]
    with torch.no_grad():
        module(example)
    for hook in hooks:
        hook.remove()
    per_call = []
    for name, count in calls.items():
        if count > 1:
            per_call.append(_PerCall(module.get_submodule(name), count))
            _replace(module, name, per_call[-1])

    def restart(*_: Any) -> None:
        for wrapper in per_call:
            wrapper.calls = 0

    module.register_forward_pre_hook(restart)
    return module


def batch_norm_pairs(module: nn.Module) -> List[Tuple[List[str], str]]:
    """Each BatchNorm with the convolution registered just before it (the layer
    it normalises in EfficientNet, ResNet and VGG), as zennit's
    ``NamedMergeBatchNorm`` takes them."""
    pairs, last = [], None
    for name, layer in module.named_modules():
        if isinstance(layer, nn.Conv2d):
            last = name
        elif isinstance(layer, nn.BatchNorm2d):
            if last is None:
                raise ValueError(f"BatchNorm {name!r} follows no convolution: LRP cannot merge it")
            pairs.append(([last], name))
            last = None
    return pairs


def lrp_composite(module: nn.Module) -> Any:
    """zennit's ``EpsilonPlusFlat`` (flat rule on the first layer, z+ on the other
    convolutions, epsilon on dense layers, activations passed) with every
    BatchNorm merged into its convolution, exactly."""
    try:
        from zennit.canonizers import NamedMergeBatchNorm
        from zennit.composites import EpsilonPlusFlat
    except ImportError:
        raise ValueError('LRP needs zennit: pip install "captum-idg[bench]"') from None

    class ExactMergeBatchNorm(NamedMergeBatchNorm):
        """zennit 0.5's merge leaves BatchNorm's eps, so each merged layer's
        output shrank by ``sqrt(1 + eps)``; this one cancels it."""

        @staticmethod
        def merge_batch_norm(modules: List[nn.Module], batch_norm: nn.Module) -> None:
            NamedMergeBatchNorm.merge_batch_norm(modules, batch_norm)
            batch_norm.running_var.data = torch.full_like(batch_norm.running_var.data,
                                                          1 - batch_norm.eps)

    return EpsilonPlusFlat(canonizers=[ExactMergeBatchNorm(batch_norm_pairs(module))])


def lrp(module: nn.Module, inputs: Tensor, target: Tensor) -> Tensor:
    """LRP relevance of ``inputs`` for ``target`` (one class per example): the
    output relevance is 1 at the target, 0 elsewhere."""
    composite = lrp_composite(module)
    x = inputs.detach().clone().requires_grad_()
    with torch.enable_grad(), composite.context(module) as modified:
        outputs = modified(x)
        (relevance,) = torch.autograd.grad(
            outputs, x, F.one_hot(target, outputs.shape[1]).to(outputs))
    return relevance


def _replace(module: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, attribute = name.rpartition(".")
    setattr(module.get_submodule(parent), attribute, new)
