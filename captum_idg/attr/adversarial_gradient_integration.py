"""Adversarial Gradient Integration (Pan, Li, Zhu, IJCAI 2021)."""

from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
from captum._utils.common import (
    _format_additional_forward_args,
    _format_output,
    _is_tuple,
    _run_forward,
)
from captum._utils.typing import TargetType, TensorOrTupleOfTensorsGeneric
from captum.attr._utils.attribution import GradientAttribution
from captum.log import log_usage
from torch import Tensor

from captum_idg.attr._validation import (
    check_count,
    check_target,
    checked_forward,
    format_inputs_and_baselines,
)

Bound = Union[float, Tensor]


class AdversarialGradientIntegration(GradientAttribution):
    r"""
    AGI integrates the gradient of the true class along an adversarial path:
    for each false class ``j`` it takes signed-gradient steps of size
    ``epsilon`` that raise ``F_j`` (clamped to ``input_range``), accumulating
    ``-dF_target/dz * (step taken)``, until ``j`` becomes the predicted class
    or ``max_iter`` steps have been taken. The attribution is the mean over the
    false classes. No baseline is needed.

    The path is cumulative, ``z_{t+1} = clamp(z_t + epsilon sign(dF_j/dz))``,
    as in the paper. The authors' released code instead restarts every step
    from the input (``z_{t+1} = clamp(x + epsilon sign(...))``), so its path
    never leaves the epsilon-ball; we follow the paper. The gradients are of
    ``forward_func``'s outputs as given: the released code differentiates
    softmax probabilities, which you get by passing
    ``lambda x: model(x).softmax(-1)``.

    More details: https://arxiv.org/abs/2105.00962
    """

    def __init__(self, forward_func: Callable[..., Tensor]) -> None:
        r"""
        Args:

            forward_func (Callable): The forward function of the model; it must
                    return ``(batch, classes)`` scores.
        """
        GradientAttribution.__init__(self, forward_func)

    @property
    def multiplies_by_inputs(self) -> bool:
        r"""True: the attributions are sums of ``gradient * change``."""
        return True

    @log_usage()
    def attribute(  # type: ignore[override]
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        target: TargetType = None,
        additional_forward_args: Optional[object] = None,
        epsilon: float = 0.05,
        max_iter: int = 20,
        false_classes: Union[int, Sequence[int], Tensor] = 1,
        input_range: Optional[Tuple[Bound, Bound]] = None,
        internal_batch_size: Optional[int] = None,
    ) -> TensorOrTupleOfTensorsGeneric:
        r"""
        Args:

            inputs (Tensor or tuple[Tensor, ...]): Input for which attributions
                        are computed, batch first.
            target (int, Tensor, or list): The true class, one for all examples
                        or one per example.
            additional_forward_args (Any, optional): Extra arguments passed to
                        forward_func after the inputs. Default: None
            epsilon (float, optional): Step size of each signed-gradient step,
                        > 0. Default: 0.05 (the IDG paper's setting)
            max_iter (int, optional): Most steps per false class, >= 1.
                        Default: 20
            false_classes (int, list[int], or Tensor, optional): An int ``k``
                        takes, per example, the ``k`` classes other than the
                        target that score highest on the input (the paper
                        draws them at random; this is reproducible). A list
                        gives the same classes for every example; a ``(batch,
                        k)`` tensor gives them per example. No false class may
                        equal the example's target. Default: 1
            input_range (tuple, optional): ``(low, high)`` bounds that every
                        path point is clamped to, numbers or tensors that
                        broadcast to each input (e.g. per-channel bounds of a
                        normalised image). Default: None (no clamping)
            internal_batch_size (int, optional): Most paths (examples x false
                        classes) per forward pass. Default: None

        Returns:
            **attributions** (*Tensor* or *tuple[Tensor, ...]*) of the shape
            of ``inputs``.
        """
        formatted_inputs, _ = format_inputs_and_baselines(inputs, None)
        batch_size = formatted_inputs[0].shape[0]
        if target is None or isinstance(target, tuple):
            raise ValueError("target must give the true class: an int, list or Tensor")
        check_target(target, batch_size)
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or epsilon <= 0:
            raise ValueError(f"epsilon must be > 0, got {epsilon!r}")
        check_count("max_iter", max_iter, 1)
        if internal_batch_size is not None:
            check_count("internal_batch_size", internal_batch_size, 1)
        args = _format_additional_forward_args(additional_forward_args)
        device = formatted_inputs[0].device
        targets = torch.as_tensor(target, device=device).flatten().expand(batch_size)
        with torch.no_grad():
            scores = _run_forward(checked_forward(self.forward_func, target),
                                  formatted_inputs, None, args)
        false = _false_classes(false_classes, targets, scores)
        k = false.shape[1]
        rows = batch_size * k
        paths = tuple(x.repeat_interleave(k, dim=0) for x in formatted_inputs)
        row_args = _repeat_interleave_args(args, k)
        row_targets = targets.repeat_interleave(k)
        total = [torch.zeros_like(p) for p in paths]
        size = internal_batch_size or rows
        for start in range(0, rows, size):
            part = slice(start, min(start + size, rows))
            sums = self._adversarial_path(
                tuple(p[part] for p in paths), row_targets[part], false.flatten()[part],
                _slice_args(row_args, part, rows), epsilon, max_iter, input_range,
            )
            for t, s in zip(total, sums):
                t[part] = s
        attributions = tuple(t.view(batch_size, k, *t.shape[1:]).mean(dim=1) for t in total)
        return _format_output(_is_tuple(inputs), attributions)

    def _adversarial_path(
        self,
        start: Tuple[Tensor, ...],
        true: Tensor,
        false: Tensor,
        args: Optional[tuple],
        epsilon: float,
        max_iter: int,
        input_range: Optional[Tuple[Bound, Bound]],
    ) -> List[Tensor]:
        """The attack from ``start``, one row per (example, false class)."""
        z = tuple(s.clone() for s in start)
        attr = [torch.zeros_like(s) for s in start]
        index = torch.arange(len(true), device=true.device)
        with torch.enable_grad():
            for _ in range(max_iter):
                z = tuple(t.detach().requires_grad_() for t in z)
                scores = _run_forward(self.forward_func, z, None, args)
                active = scores.argmax(dim=1) != false
                if not active.any():
                    break
                grad_false = torch.autograd.grad(
                    scores[index, false].sum(), z, retain_graph=True
                )
                grad_true = torch.autograd.grad(scores[index, true].sum(), z)
                moved = []
                for t, g_false, g_true, a in zip(z, grad_false, grad_true, attr):
                    keep = active.view(-1, *[1] * (t.dim() - 1))
                    step = torch.where(keep, epsilon * g_false.sign(), 0.0)
                    new = t.detach() + step
                    if input_range is not None:
                        low, high = (torch.as_tensor(b, dtype=t.dtype, device=t.device)
                                     for b in input_range)
                        new = torch.where(keep, torch.clamp(new, low, high), t.detach())
                    a -= g_true * (new - t.detach())
                    moved.append(new)
                z = tuple(moved)
        return attr


def _false_classes(
    false_classes: Union[int, Sequence[int], Tensor], targets: Tensor, scores: Tensor
) -> Tensor:
    r"""The ``(batch, k)`` false classes, checked against targets and outputs."""
    if scores.dim() != 2 or scores.shape[1] < 2:
        raise ValueError(
            "false_classes: forward_func must return (batch, classes) scores with "
            f"at least 2 classes to attack, got shape {tuple(scores.shape)}"
        )
    n_classes = scores.shape[1]
    if isinstance(false_classes, int) and not isinstance(false_classes, bool):
        if not 1 <= false_classes <= n_classes - 1:
            raise ValueError(
                f"false_classes must be between 1 and {n_classes - 1} (classes "
                f"other than the target), got {false_classes}"
            )
        others = scores.detach().clone()
        others[torch.arange(len(targets)), targets] = -torch.inf
        return others.topk(false_classes, dim=1).indices
    false = torch.as_tensor(false_classes, device=targets.device)
    if false.is_floating_point() or false.numel() == 0:
        raise ValueError("false_classes must hold class indices")
    false = false.view(1, -1).expand(len(targets), -1) if false.dim() <= 1 else false
    if false.shape[0] != len(targets) or false.dim() != 2:
        raise ValueError(
            f"false_classes of shape {tuple(false.shape)} must be (batch, k)"
        )
    if ((false < 0) | (false >= n_classes)).any():
        raise ValueError(f"false_classes out of range for {n_classes} classes")
    if (false == targets[:, None]).any():
        raise ValueError("false_classes must not contain the example's target")
    return false


def _repeat_interleave_args(args: Optional[tuple], k: int) -> Optional[tuple]:
    if args is None:
        return None
    return tuple(
        a.repeat_interleave(k, dim=0) if isinstance(a, Tensor) and a.dim() > 0 else a
        for a in args
    )


def _slice_args(args: Optional[tuple], part: slice, rows: int) -> Optional[tuple]:
    if args is None:
        return None
    return tuple(
        a[part] if isinstance(a, Tensor) and a.dim() > 0 and a.shape[0] == rows else a
        for a in args
    )
