"""The path engine: evaluates a model along straight lines, one schedule per example.

Every method in this package that integrates along ``x' + alpha * (x - x')``
goes through :class:`StraightLinePath`. Sample points are given as ``alphas``
of shape ``(n_steps, batch)``; rows are laid out step-major like Captum's
``IntegratedGradients`` (step ``k`` of example ``b`` is row ``k * batch + b``),
so Captum's target and forward-argument expansion apply unchanged.
"""

from typing import Any, Callable, Iterator, List, Optional, Tuple

import torch
from captum._utils.common import (
    _expand_additional_forward_args,
    _expand_target,
    _format_additional_forward_args,
    _run_forward,
    _select_targets,
)
from captum._utils.typing import TargetType
from torch import Tensor

from captum_idg.attr._schedule import (
    adaptive_schedule,
    default_probe_steps,
    uniform_schedule,
)
from captum_idg.attr._validation import (
    check_count,
    check_path_fits,
    check_target,
    checked_forward,
    format_inputs_and_baselines,
)

SAMPLINGS = ("adaptive", "uniform")


class StraightLinePath:
    r"""
    The straight lines from ``baselines`` to ``inputs`` of a batch, with the
    model's target, extra forward arguments and chunk size attached.

    Args:
        inputs (tuple[Tensor, ...]): Formatted inputs, batch first.
        baselines (tuple[Tensor, ...]): Baselines of the same shapes.
        target (TargetType): Captum target, one per example or shared.
        additional_forward_args (Any): Captum additional forward arguments.
        internal_batch_size (int, optional): Most rows per forward pass; a
                    chunk always holds at least one step of the whole batch.
    """

    def __init__(
        self,
        inputs: Tuple[Tensor, ...],
        baselines: Tuple[Tensor, ...],
        target: TargetType = None,
        additional_forward_args: Any = None,
        internal_batch_size: Optional[int] = None,
    ) -> None:
        self.inputs = inputs
        self.baselines = baselines
        self.directions = tuple(x - b for x, b in zip(inputs, baselines))
        self.batch_size = inputs[0].shape[0]
        check_target(target, self.batch_size)
        self.target = target
        self.additional_forward_args = _format_additional_forward_args(
            additional_forward_args
        )
        self.internal_batch_size = internal_batch_size

    @classmethod
    def from_arguments(
        cls,
        inputs: Any,
        baselines: Any,
        target: TargetType,
        additional_forward_args: Any,
        n_steps: int,
        internal_batch_size: Optional[int],
    ) -> "StraightLinePath":
        r"""Checks a method's public arguments and builds the batch's paths."""
        formatted_inputs, formatted_baselines = format_inputs_and_baselines(
            inputs, baselines
        )
        check_count("n_steps", n_steps, 2)
        if internal_batch_size is not None:
            check_count("internal_batch_size", internal_batch_size, 1)
        check_path_fits(formatted_inputs, n_steps, internal_batch_size)
        return cls(
            formatted_inputs,
            formatted_baselines,
            target,
            additional_forward_args,
            internal_batch_size,
        )

    def points(self, alphas: Tensor) -> Tuple[Tensor, ...]:
        r"""The path points at ``alphas`` (k, batch), as ``k * batch`` rows."""
        k = alphas.shape[0]
        return tuple(
            torch.addcmul(
                b.unsqueeze(0),
                alphas.to(x.dtype).view(k, self.batch_size, *[1] * (x.dim() - 1)),
                d.unsqueeze(0),
            ).reshape(k * self.batch_size, *x.shape[1:])
            for x, b, d in zip(self.inputs, self.baselines, self.directions)
        )

    def logits(self, forward_func: Callable, alphas: Tensor) -> Tensor:
        r"""Forward-only target logits at ``alphas``: shape ``(k, batch)``."""
        chunks = []
        with torch.no_grad():
            for steps in self._step_chunks(alphas.shape[0]):
                k = steps.stop - steps.start
                output = _run_forward(
                    checked_forward(forward_func, self.target),
                    self.points(alphas[steps]),
                    _expand_target(self.target, k),
                    self._expanded_args(k),
                )
                chunks.append(output.reshape(k, self.batch_size))
        return torch.cat(chunks)

    def gradients(
        self, gradient_func: Callable, forward_func: Callable, alphas: Tensor
    ) -> Iterator[Tuple[slice, Tuple[Tensor, ...], Tensor]]:
        r"""
        Forward and backward passes at ``alphas``, one chunk at a time.

        Yields:
            ``(steps, grads, logits)``: the slice of steps in this chunk, the
            gradients of the target logit, each of shape ``(k, batch, *input
            shape[1:])``, and the target logits, shape ``(k, batch)``.
        """
        for steps in self._step_chunks(alphas.shape[0]):
            k = steps.stop - steps.start
            target = _expand_target(self.target, k)
            outputs: List[Tensor] = []
            grads = gradient_func(
                forward_fn=checked_forward(forward_func, self.target, outputs),
                inputs=tuple(p.requires_grad_() for p in self.points(alphas[steps])),
                target_ind=target,
                additional_forward_args=self._expanded_args(k),
            )
            logits = _select_targets(outputs[-1].detach(), target)
            yield steps, tuple(
                g.view(k, self.batch_size, *g.shape[1:]) for g in grads
            ), logits.reshape(k, self.batch_size)

    def rate_of_change(self, grads: Tuple[Tensor, ...]) -> Tensor:
        r"""``dF/dalpha = sum(grad * (x - x'))`` per sample: shape ``(k, batch)``."""
        return sum(
            torch.einsum("kbf,bf->kb", g.flatten(2), d.flatten(1))
            for g, d in zip(grads, self.directions)
        )

    def schedule(
        self,
        forward_func: Callable,
        sampling: str,
        n_steps: int,
        n_probe_steps: Optional[int] = None,
    ) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
        r"""
        The sample points and weights for ``sampling``, each ``(n_steps,
        batch)``, and the probe logits ``(n_probe_steps, batch)`` on the grid
        ``linspace(0, 1, n_probe_steps)`` for adaptive sampling (else None).
        ``n_probe_steps`` None: :func:`default_probe_steps` of ``n_steps``.
        """
        if sampling == "uniform":
            if n_probe_steps is not None:  # unused, but a bad value is still an error
                check_count("n_probe_steps", n_probe_steps, 2)
            x = self.inputs[0]
            alphas, weights = uniform_schedule(
                n_steps, self.batch_size, x.dtype, x.device
            )
            return alphas, weights, None
        if n_probe_steps is None:
            n_probe_steps = default_probe_steps(n_steps)
        probe = self.probe(forward_func, n_probe_steps)
        alphas, weights = adaptive_schedule(probe, n_steps)
        return alphas, weights, probe

    def probe(self, forward_func: Callable, n_probe_steps: int) -> Tensor:
        r"""Forward-only logits on ``linspace(0, 1, n_probe_steps)``: ``(M, batch)``."""
        check_count("n_probe_steps", n_probe_steps, 2)
        check_path_fits(
            self.inputs, n_probe_steps, self.internal_batch_size, "n_probe_steps"
        )
        x = self.inputs[0]
        grid = torch.linspace(0, 1, n_probe_steps, dtype=x.dtype, device=x.device)
        return self.logits(forward_func, grid[:, None].expand(-1, self.batch_size))

    def endpoint_logits(
        self, forward_func: Callable, probe: Optional[Tensor] = None
    ) -> Tuple[Tensor, Tensor]:
        r"""``(F(x'), F(x))`` per example, read off the probe when there is one."""
        if probe is None:
            ends = torch.tensor([0.0, 1.0], device=self.inputs[0].device)
            probe = self.logits(forward_func, ends[:, None].expand(-1, self.batch_size))
        return probe[0], probe[-1]

    def _step_chunks(self, n_steps: int) -> Iterator[slice]:
        per_chunk = n_steps
        if self.internal_batch_size is not None:
            per_chunk = max(1, self.internal_batch_size // self.batch_size)
        for start in range(0, n_steps, per_chunk):
            yield slice(start, min(start + per_chunk, n_steps))

    def _expanded_args(self, k: int) -> Any:
        if self.additional_forward_args is None:
            return None
        return _expand_additional_forward_args(self.additional_forward_args, k)
