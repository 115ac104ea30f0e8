"""Adversarial Gradient Integration (Pan, Li, Zhu, IJCAI 2021)."""

from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
from captum._utils.common import (
    _format_output,
    _is_tuple,
    _run_forward,
)
from captum._utils.typing import TargetType, TensorOrTupleOfTensorsGeneric
from captum.log import log_usage
from torch import Tensor

from captum_idg._batching import row_slices, take_forward_args
from captum_idg._validation import (
    MAX_SEQUENTIAL_STEPS,
    check_finite,
    check_real,
    checked_forward,
)
from captum_idg.attr._base import Attribution
from captum_idg.attr._docs import documented
from captum_idg.attr._intake import take_arguments
from captum_idg.attr._path import StepSums, warn_no_change

Bound = Union[float, Tensor]


class AdversarialGradientIntegration(Attribution):
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
    ``lambda x: model(x).softmax(-1)``. Each step is one forward and one
    backward pass over two copies of the rows (the false class's gradient
    for the step, the true class's for the attribution), so it compiles
    with ``torch.compile``.

    More details: https://arxiv.org/abs/2105.00962
    """

    def __init__(
        self, forward_func: Callable[..., Tensor], multiply_by_inputs: bool = True
    ) -> None:
        r"""
        Args:

            forward_func (Callable): The forward function of the model; it must
                    return ``(batch, classes)`` scores.
            multiply_by_inputs (bool, optional): True: ``-sum gradient * step``
                    along the attack (global). False: the mean of ``-gradient``
                    along the attack, weighted by how far each feature moves
                    at each step (local). Default: True
        """
        Attribution.__init__(self, forward_func, multiply_by_inputs)

    @log_usage()
    @documented
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

            {inputs}
            target (int, Tensor, or list): The true class, one for all examples
                        or one per example.
            {additional_forward_args}
            epsilon (float, optional): Step size of each signed-gradient step,
                        finite and > 0. Default: 0.05 (the IDG paper's setting)
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
                        path point is clamped to, finite numbers or tensors
                        that broadcast to each input: shared (e.g. per-channel
                        bounds ``(1, C, 1, 1)`` of a normalised image) or per
                        example (the input's shape); ``low <= high``.
                        Default: None (no clamping)
            internal_batch_size (int, optional): Most paths (examples x false
                        classes) per forward pass. Default: None

        Returns:
            **attributions** (*Tensor* or *tuple[Tensor, ...]*) of the shape
            of ``inputs``.
        """
        arguments = take_arguments(
            self.forward_func, inputs, None, target, additional_forward_args,
            internal_batch_size, max_iter, "max_iter", minimum_steps=1,
            maximum_steps=MAX_SEQUENTIAL_STEPS, class_target=True)
        check_real("epsilon", epsilon, 0.0, low_open=True)
        formatted_inputs, args = arguments.inputs, arguments.additional_forward_args
        batch_size = arguments.batch_size
        bounds = _bounds(input_range, formatted_inputs)
        device = formatted_inputs[0].device
        targets = torch.as_tensor(target, device=device).flatten().expand(batch_size)
        with torch.no_grad():
            scores = _run_forward(checked_forward(self.forward_func, target),
                                  formatted_inputs, None, args)
        check_finite("forward_func's outputs", scores[None], torch.zeros(1, batch_size),
                     "on inputs", "step")
        false = _false_classes(false_classes, targets, scores)
        k = false.shape[1]
        rows = batch_size * k
        example = torch.arange(batch_size, device=device).repeat_interleave(k)
        total = [torch.zeros(rows, *x.shape[1:], dtype=x.dtype, device=device)
                 for x in formatted_inputs]
        unseen = torch.zeros(rows, dtype=torch.bool, device=device)
        for part in row_slices(rows, internal_batch_size):
            sums, unseen[part] = self._adversarial_path(
                tuple(x[example[part]] for x in formatted_inputs), targets[example[part]],
                false.flatten()[part], take_forward_args(args, example[part], batch_size),
                epsilon, max_iter,
                None if bounds is None else tuple([b[example[part]] for b in side]
                                                  for side in bounds),
            )
            for t, s in zip(total, sums):
                t[part] = s
        attributions = tuple(t.view(batch_size, k, *t.shape[1:]).mean(dim=1) for t in total)
        warn_no_change(unseen.view(batch_size, k).all(dim=1))
        return _format_output(_is_tuple(inputs), attributions)

    def _adversarial_path(
        self,
        start: Tuple[Tensor, ...],
        true: Tensor,
        false: Tensor,
        args: Optional[tuple],
        epsilon: float,
        max_iter: int,
        bounds: Optional[Tuple[List[Tensor], List[Tensor]]],
    ) -> Tuple[Tuple[Tensor, ...], Tensor]:
        """The attack from ``start``, one row per (example, false class): the
        sums, and the rows whose true-class score changed along the attack
        although no step added to the sums."""
        n = len(true)
        z = tuple(s.clone() for s in start)
        sums = StepSums(start, self.multiplies_by_inputs)
        both = torch.cat([false, true])  # first copy: the attack's class; second: the truth
        doubled = take_forward_args(args, torch.arange(n, device=true.device).repeat(2), n)
        first = last = torch.zeros(n, device=true.device)
        for iteration in range(max_iter):
            outputs: List[Tensor] = []
            grads = self.gradient_func(
                checked_forward(self.forward_func, both, outputs),
                tuple(torch.cat([t, t]).requires_grad_() for t in z), both, doubled,
            )
            scores = outputs[-1].detach()[:n]
            progress = torch.full((1, n), float(iteration))
            check_finite("forward_func's outputs", scores[None], progress, "on the attack", "step")
            last = scores.gather(1, true[:, None])[:, 0]
            if iteration == 0:
                first = last
            active = scores.argmax(dim=1) != false
            if not active.any():
                break
            moved = []
            for i, (t, g) in enumerate(zip(z, grads)):
                check_finite("gradients of forward_func", g[None], progress.repeat(1, 2),
                             "on the attack", "step")
                keep = active.view(-1, *[1] * (t.dim() - 1))
                new = t + torch.where(keep, epsilon * g[:n].sign(), 0.0)
                if bounds is not None:
                    new = torch.where(keep, torch.clamp(new, bounds[0][i], bounds[1][i]), t)
                moved.append(new)
            sums.add(tuple(-g[n:][None] for g in grads),
                     tuple((new - t)[None] for new, t in zip(moved, z)))
            z = tuple(moved)
        return sums.result(), ~sums.seen & (last != first)


def _bounds(
    input_range: Optional[Tuple[Bound, Bound]], inputs: Tuple[Tensor, ...]
) -> Optional[Tuple[List[Tensor], List[Tensor]]]:
    r"""``input_range`` as ``(lows, highs)`` per input tensor, each of the
    input's shape (a row per example), checked."""
    if input_range is None:
        return None
    if not isinstance(input_range, (tuple, list)) or len(input_range) != 2:
        raise ValueError(f"input_range must be a pair (low, high), got {input_range!r}")
    lows, highs = [], []
    for x in inputs:
        pair = []
        for bound in input_range:
            if isinstance(bound, bool) or not isinstance(bound, (int, float, Tensor)):
                raise ValueError(f"input_range must hold numbers or Tensors, got {bound!r}")
            value = torch.as_tensor(bound, dtype=x.dtype, device=x.device)
            if not torch.isfinite(value).all():
                raise ValueError(f"input_range must be finite, got {bound!r}")
            try:
                fits = torch.broadcast_shapes(value.shape, x.shape) == x.shape
            except RuntimeError:
                fits = False
            if not fits:
                raise ValueError(
                    f"input_range bound of shape {tuple(value.shape)} does not broadcast to "
                    f"inputs of shape {tuple(x.shape)}"
                )
            pair.append(value.expand(x.shape))  # a row per example, shared or its own
        if (pair[0] > pair[1]).any():
            raise ValueError("input_range must have low <= high")
        lows.append(pair[0])
        highs.append(pair[1])
    return lows, highs


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
