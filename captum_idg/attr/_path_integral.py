"""The parts a path method is composed of: sampler, weight rule, stopping rule.

A path method is ``sum_k c_k grad F(z(a_k)) * dz/da(a_k)`` on a
:class:`~captum_idg.attr._path.Path` ``z``, and three small objects say the rest:

- a :class:`Sampler` says where the samples ``a_k`` go and what their
  quadrature weights ``w_k`` are: :class:`FixedRule` (Captum's rules),
  :class:`Adaptive` (panels from a forward-only probe), :class:`AuthorsSchedule`
  (the IDG authors' allocation) and :class:`SaturationCut` (any sampler on
  ``[0, a*]``, Left-IG);
- a :class:`Weight` gives each sample's coefficient ``c_k``: :class:`PathWeight`
  (IG, ``w_k``), :class:`DecisionWeight` (IDG, ``w_k dF/da``) and
  :class:`AuthorsDecisionWeight` (the IDG authors' finite differences);
- a stopping rule runs them: :class:`FixedSteps` (one pass of ``n_steps``) or
  :class:`Tolerance` (rounds until the estimated error is small), with any
  sampler.

:class:`ModelOnPath` evaluates the model on the path for all of them, and
:class:`Known` is what they know of the logit along it.
"""

import contextlib
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    ContextManager,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Tuple,
)

import torch
import torch.autograd.forward_ad as fwAD
from captum._utils.common import (
    _expand_additional_forward_args,
    _expand_target,
    _run_forward,
    _select_targets,
    safe_div,
)
from captum._utils.typing import TargetType
from torch import Tensor

from captum_idg._batching import (
    ACTIVATION_FACTOR,
    Index,
    check_steps_fit,
    row_slices,
    rows_per_pass,
    take_examples,
    take_forward_args,
)
from captum_idg._validation import check_count, check_finite, checked_forward
from captum_idg._warnings import some_examples, warn
from captum_idg.attr._intake import Arguments
from captum_idg.attr._path import Path, flat_features
from captum_idg.attr._piecewise import SwitchCounter
from captum_idg.attr.schedules import (
    MIN_PROBE_STEPS,
    PAIRS,
    PROBE_ROUNDS,
    REFINE_FIRST,
    REFINE_MAX_SWITCHES,
    REFINE_MIN_STEPS,
    REFINE_ROUNDS,
    RIEMANN_METHODS,
    SWITCH_EVEN_PEAK,
    adaptive_schedule,
    default_probe_steps,
    equal_mass_edges,
    gradient_steps,
    moves_evenly,
    nearest_sample_weights,
    reference_schedule,
    refined_gaps,
    refinement_points,
    riemann_schedule,
    saturation_point,
    switch_cells,
)

GROUP = 2 * PAIRS  # samples per stratum of a randomized rule


@dataclass
class Schedule:
    r"""Where to sample: ``alphas`` and quadrature ``weights``, each ``(n_steps, batch)``."""

    alphas: Tensor
    weights: Tensor


@dataclass
class PathSums:
    r"""What one pass over a schedule gives, per example: the attributions
    ``sum_k c_k g_k dz_k`` (global or local, see the path's sums),
    ``sum_k w_k dF/da(a_k)``, ``sum_k c_k dF/da(a_k)`` and the logits at the
    samples ``(n_steps, batch)`` (None where several rounds were put together)."""

    attributions: Tuple[Tensor, ...]
    rate_integral: Tensor
    weighted_rate: Tensor
    logits: Optional[Tensor] = None

    @staticmethod
    def joined(parts: List[Tuple[Tensor, "PathSums"]], batch: int) -> "PathSums":
        r"""The sums of ``parts``, each on the examples ``index``, as the sums of
        ``batch`` examples (without logits)."""

        def whole(pick: Callable[["PathSums"], Tensor]) -> Tensor:
            return joined_rows([(index, pick(part)) for index, part in parts], batch)

        count = len(parts[0][1].attributions)
        return PathSums(tuple(whole(lambda p, i=i: p.attributions[i]) for i in range(count)),
                        whole(lambda p: p.rate_integral), whole(lambda p: p.weighted_rate))


def joined_rows(parts: List[Tuple[Tensor, Tensor]], batch: int) -> Tensor:
    r"""``parts``, each ``(index, rows)``: the rows of the examples ``index``,
    as one tensor of ``batch`` rows."""
    out = parts[0][1].new_zeros(batch, *parts[0][1].shape[1:])
    for index, rows in parts:
        out[index] = rows
    return out


@dataclass
class RefinementReport:
    r"""
    What tolerance mode did, per example (all ``(batch,)``):
    ``evaluations``, the gradient evaluations (forward and backward);
    ``probe_evaluations``, the forward passes without grad;
    ``estimated_error``, twice the standard error of the attributions
    returned, relative to their L2 norm (all inputs together; of the
    rescaled map where ``rescale=True``): an estimate of their relative L2
    error that bounds it with about 95% confidence;
    ``converged``, whether that estimate met the tolerance.
    """

    evaluations: Tensor
    probe_evaluations: Tensor
    estimated_error: Tensor
    converged: Tensor


@dataclass
class Known:
    r"""
    The logit known along the path, per example: ``logits`` at the sorted
    points ``grid`` (each ``(M, batch)``, None before any is known), and the
    upper limit ``end`` ``(batch,)`` of the integral (None: 1).
    """

    grid: Optional[Tensor] = None
    logits: Optional[Tensor] = None
    end: Optional[Tensor] = None

    def merged(self, points: Tensor, logits: Tensor) -> "Known":
        r"""With the logits at ``points`` ``(k, batch)`` added."""
        if self.grid is None:
            grid, order = points.sort(dim=0)
            return Known(grid, logits.gather(0, order), self.end)
        grid, order = torch.cat([self.grid, points.to(self.grid.dtype)]).sort(dim=0)
        both = torch.cat([self.logits, logits.to(self.logits.dtype)]).gather(0, order)
        return Known(grid, both, self.end)

    def select(self, index: Index) -> "Known":
        r"""What is known of the examples ``index``."""
        pick = lambda t: None if t is None else t[..., index]  # noqa: E731
        return Known(pick(self.grid), pick(self.logits), pick(self.end))

    def with_endpoints(self, model: "ModelOnPath") -> "Known":
        r"""With ``F`` at ``0`` and at ``end`` known (one forward pass if not)."""
        like = model.like()
        end = torch.ones(model.path.batch_size, **like) if self.end is None else self.end
        have = (False, False) if self.grid is None else (
            bool((self.grid[0] == 0).all()), bool((self.grid == end).any(dim=0).all()))
        missing = [point for point, known in zip((torch.zeros_like(end), end), have) if not known]
        if not missing:
            return self
        points = torch.stack(missing)
        return self.merged(points, model.logits(points))

    def endpoints(self) -> Tuple[Tensor, Tensor]:
        r"""``(F(0), F(end))`` per example, once :meth:`with_endpoints` put them in."""
        assert self.grid is not None and self.logits is not None
        last = self._inside().sum(dim=0, keepdim=True) - 1
        return self.logits[0], self.logits.gather(0, last)[0]

    def variation(self) -> Tensor:
        r"""Total variation of the known logits on ``[0, end]`` per example."""
        assert self.grid is not None and self.logits is not None
        inside = self._inside()
        jumps = self.logits.diff(dim=0).abs()
        return torch.where(inside[1:], jumps, 0.0).sum(dim=0)

    def _inside(self) -> Tensor:
        return self.grid <= (1.0 if self.end is None else self.end)


class ModelOnPath:
    r"""
    The model run along a path, with a call's ``target``, forward arguments
    and pass size (at most ``rows`` rows a pass, at least one step of the
    whole batch; None: a quarter of the free memory): forward-only logits for
    samplers (:meth:`logits`, counted per example in ``probes``) and gradient
    passes (:meth:`gradients`), summed under a weight rule by :meth:`sums`.
    NaN or inf anywhere on the path is an error that says where.
    """

    def __init__(
        self,
        forward_func: Callable,
        gradient_func: Callable,
        path: Path,
        *,
        multiply_by_inputs: bool = True,
        target: TargetType = None,
        additional_forward_args: Optional[tuple] = None,
        rows: Optional[int] = None,
        probes: Optional[Tensor] = None,
        index: Optional[Tensor] = None,
    ) -> None:
        self.forward_func = forward_func
        self.gradient_func = gradient_func
        self.path = path
        self.multiply_by_inputs = multiply_by_inputs
        self.target = target
        self.additional_forward_args = additional_forward_args
        self.rows = rows_per_pass(path.inputs, None) if rows is None else rows
        device = path.inputs[0].device
        self.probes = torch.zeros(path.batch_size, dtype=torch.long, device=device) \
            if probes is None else probes
        self.index = torch.arange(path.batch_size, device=device) if index is None else index

    @classmethod
    def of(cls, attribution: Any, path: Path, arguments: Arguments) -> "ModelOnPath":
        r"""``attribution``'s model along ``path``, with a call's checked
        ``arguments`` (see :func:`~captum_idg.attr._intake.take_arguments`)."""
        return cls(attribution.forward_func, attribution.gradient_func, path,
                   multiply_by_inputs=attribution.multiplies_by_inputs,
                   target=arguments.target,
                   additional_forward_args=arguments.additional_forward_args,
                   rows=rows_per_pass(arguments.inputs, arguments.internal_batch_size))

    def like(self) -> dict:
        r"""dtype and device of the path's schedules."""
        return dict(dtype=self.path.schedule_dtype, device=self.path.inputs[0].device)

    def select(self, index: Tensor) -> "ModelOnPath":
        r"""The model on the paths of the examples ``index`` only."""
        size = self.path.batch_size
        return ModelOnPath(self.forward_func, self.gradient_func, self.path.select(index),
                           multiply_by_inputs=self.multiply_by_inputs,
                           target=take_examples(self.target, index, size),
                           additional_forward_args=take_forward_args(
                               self.additional_forward_args, index, size),
                           rows=self.rows, probes=self.probes, index=self.index[index])

    def logits(self, alphas: Tensor, counter: Optional[SwitchCounter] = None) -> Tensor:
        r"""Forward-only target logits at ``alphas`` ``(k, batch)``, each pass
        under ``counter`` where one is given."""
        self.probes[self.index] += alphas.shape[0]
        return self._logits(alphas, counter)

    def logits_where(self, alphas: Tensor, where: Tensor, fill: Tensor) -> Tensor:
        r"""
        The logits at ``alphas`` ``(k, batch)`` where ``where`` is True, one
        forward row each (the examples need not ask for as many), and
        ``fill`` ``(batch,)`` elsewhere.
        """
        step, example = where.nonzero(as_tuple=True)
        logits = fill.expand_as(alphas).clone()
        for rows in row_slices(len(example), self.rows):
            at = step[rows], example[rows]
            logits[at] = self.select(example[rows])._logits(alphas[at][None])[0].to(logits.dtype)
        self.probes.index_add_(0, self.index, where.sum(dim=0))
        return logits

    def gradients(self, alphas: Tensor) -> Iterator[Tuple[slice, Tuple[Tensor, ...], Tensor]]:
        r"""
        Forward and backward passes at ``alphas`` ``(k, batch)``, one chunk at a time.

        Yields:
            ``(steps, grads, logits)``: the slice of steps in this chunk, the
            gradients of the target logit, each of shape ``(k, batch, *input
            shape[1:])``, and the target logits, shape ``(k, batch)``.
        """
        batch, where = self.path.batch_size, self.path.where
        for steps in self._step_chunks(alphas.shape[0]):
            k = steps.stop - steps.start
            target = _expand_target(self.target, k)
            outputs: List[Tensor] = []
            grads = self.gradient_func(
                checked_forward(self.forward_func, self.target, outputs),
                tuple(p.requires_grad_() for p in self.path.points(alphas[steps])),
                target,
                self._expanded_args(k),
            )
            logits = _select_targets(outputs[-1].detach(), target).reshape(k, batch)
            check_finite("forward_func's outputs", logits, alphas[steps], where)
            grads = tuple(g.view(k, batch, *g.shape[1:]) for g in grads)
            for g in grads:
                check_finite("gradients of forward_func", g, alphas[steps], where)
            yield steps, grads, logits

    def tangents(self, alphas: Tensor, within: Optional[ContextManager] = None
                 ) -> Tuple[Tensor, Tensor]:
        r"""One forward-mode pass at ``alphas`` ``(1, batch)``, run inside
        ``within`` (a ``TorchFunctionMode`` that reads the inputs of the
        model's functions, say): the target logit and its derivative
        ``dF/dalpha``, each ``(batch,)``."""
        with fwAD.dual_level(), warnings.catch_warnings():
            # torch's forward mode scripts a helper on first use, and says it is deprecated
            warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", FutureWarning)
            points = self.path.points(alphas)
            duals = tuple(fwAD.make_dual(p, d.reshape(p.shape).to(p.dtype)) for p, d in
                          zip(points, self.path.derivative(alphas)))
            with within or contextlib.nullcontext():
                output = _run_forward(self.forward_func, duals, _expand_target(self.target, 1),
                                      self._expanded_args(1))
            logit, rate = fwAD.unpack_dual(output)
        self.probes[self.index] += 1
        batch = self.path.batch_size
        logit = logit.detach().reshape(batch)
        rate = torch.zeros_like(logit) if rate is None else rate.detach().reshape(batch)
        check_finite("forward_func's outputs", torch.stack([logit, rate]), alphas.expand(2, -1),
                     self.path.where)
        return logit, rate

    def _logits(self, alphas: Tensor, counter: Optional[SwitchCounter] = None) -> Tensor:
        chunks = []
        forward = checked_forward(self.forward_func, self.target)
        with torch.no_grad():
            for steps in self._step_chunks(alphas.shape[0]):
                k = steps.stop - steps.start
                counting = counter is not None and counter.piecewise  # else it gave up
                with counter.next_pass(k) if counting else contextlib.nullcontext():
                    output = _run_forward(forward, self.path.points(alphas[steps]),
                                          _expand_target(self.target, k),
                                          self._expanded_args(k))
                chunks.append(output.reshape(k, self.path.batch_size))
        logits = torch.cat(chunks)
        check_finite("forward_func's outputs", logits, alphas, self.path.where)
        return logits

    def _step_chunks(self, n_steps: int) -> Iterator[slice]:
        return row_slices(n_steps, max(1, self.rows // self.path.batch_size))

    def _expanded_args(self, k: int) -> Any:
        if self.additional_forward_args is None:
            return None
        return _expand_additional_forward_args(self.additional_forward_args, k)

    def uniform_logits(self, n_points: int, counter: Optional[SwitchCounter] = None) -> Known:
        r"""The logits on ``linspace(0, 1, n_points)`` (under ``counter``, see :meth:`logits`)."""
        grid = torch.linspace(0, 1, n_points, **self.like())
        grid = grid[:, None].expand(-1, self.path.batch_size)
        return Known(grid, self.logits(grid, counter))

    def sums(self, schedule: Schedule, weight: "Weight",
             spread: Optional["Spread"] = None) -> PathSums:
        r"""Runs the gradient passes of ``schedule`` and sums them under
        ``weight`` (and into ``spread``, for a randomized rule)."""
        return self._summed(schedule, weight, self.gradients(schedule.alphas), spread)

    def refined_sums(self, alphas: Tensor, n_steps: int, weight: "Weight") -> PathSums:
        r"""
        A piecewise-constant integrand: gradients at ``alphas`` ``(n, batch)``,
        then ``REFINE_ROUNDS`` rounds (half of what is left each, the last
        the rest) that cut the gaps between the samples where the integrand
        jumped (:func:`~captum_idg.attr.schedules.refined_gaps`), ``n_steps``
        in all, summed under ``weight`` with the weights of the nearest-sample
        rule (:func:`~captum_idg.attr.schedules.nearest_sample_weights`). It
        holds every sample's gradients until the end.
        """
        points: List[Tensor] = []
        chunks: List[Tuple[Tuple[Tensor, ...], Tensor]] = []  # (grads, logits) per chunk
        maps: List[Tensor] = []  # per chunk: the integrand, flat (k, batch, features)
        left = n_steps - alphas.shape[0]
        for done in range(REFINE_ROUNDS + 1):
            unit = Schedule(alphas, torch.ones_like(alphas))
            known_logits = torch.zeros_like(alphas)
            for steps, grads, logits in self.gradients(alphas):
                known_logits[steps] = logits
                derivative = self.path.derivative(alphas[steps])
                rate = self.path.rate_of_change(grads, derivative)
                coefficient = weight(unit, steps, rate, known_logits)
                chunks.append((grads, logits))
                maps.append(torch.cat([
                    coefficient[:, :, None].to(g.dtype) * flat_features(g, 2)
                    * flat_features(d, 1 if d.dim() < g.dim() else 2)
                    for g, d in zip(grads, derivative)], dim=2))
            points.append(alphas)
            if done == REFINE_ROUNDS or left == 0:
                break
            new = left if done == REFINE_ROUNDS - 1 else max(1, left // 2)
            ordered, order = torch.cat(points).sort(dim=0)
            flat = torch.cat(maps)
            flat = flat.gather(0, order[:, :, None].expand_as(flat))
            jumps = flat.diff(dim=0).pow(2).sum(dim=2)
            alphas = refined_gaps(ordered, jumps, new).to(alphas)
            left -= new
        alphas, order = torch.cat(points).sort(dim=0)  # in order along the path

        def in_order(t: Tensor) -> Tensor:
            return t.gather(0, order.view(*order.shape, *[1] * (t.dim() - 2)).expand_as(t))

        grads = tuple(in_order(torch.cat(parts)) for parts in zip(*(c[0] for c in chunks)))
        logits = in_order(torch.cat([c[1] for c in chunks]))
        schedule = Schedule(alphas, nearest_sample_weights(alphas).to(alphas))
        return self._summed(schedule, weight, [(slice(0, len(alphas)), grads, logits)])

    def _summed(self, schedule: Schedule, weight: "Weight",
                chunks: Iterable[Tuple[slice, Tuple[Tensor, ...], Tensor]],
                spread: Optional["Spread"] = None) -> PathSums:
        alphas = schedule.alphas
        sums = self.path.sums(self.multiply_by_inputs)
        rate_integral = torch.zeros_like(alphas[0])
        weighted_rate = torch.zeros_like(alphas[0])
        logits = torch.zeros_like(alphas)
        for steps, grads, chunk_logits in chunks:
            logits[steps] = chunk_logits
            derivative = self.path.derivative(alphas[steps])
            rate = self.path.rate_of_change(grads, derivative)
            coefficients = weight(schedule, steps, rate, logits)
            sums.add_samples(coefficients, grads, derivative)
            if spread is not None:
                spread.add(steps, coefficients, grads, rate)
            rate_integral += (schedule.weights[steps] * rate).sum(dim=0)
            weighted_rate += (coefficients * rate).sum(dim=0)
        return PathSums(sums.result(), rate_integral, weighted_rate, logits)


class Spread:
    r"""
    The spread of a randomized rule's estimate (see
    :func:`~captum_idg.attr.schedules.randomized_strata`), per example. Of
    every stratum ``s`` it takes the difference of its two pair estimates,
    halved: ``D_s`` of the map (global or local, as the attributions) and
    ``d_s`` of ``sum_k c_k dF/da``. ``sum_s |D_s|^2`` is an unbiased
    estimate of the map's squared error; with ``sum_s d_s D_s`` and
    ``sum_s d_s^2`` it gives the rescaled map's too (:meth:`variance`).
    Samples come in chunks that may split a stratum: the part already seen
    waits in ``pending``.
    """

    def __init__(self, directions: Optional[Tuple[Tensor, ...]]) -> None:
        self.directions = directions  # None: the local map (multiply_by_inputs=False)
        self.strata_squares: list = []  # per chunk: |D_s|^2 (strata, batch)
        self.cross: Optional[list] = None
        self.rate_squares: Tensor = 0.0  # type: ignore[assignment]
        self.pending: Optional[Tuple[list, Tensor]] = None

    def add(self, steps: slice, coefficients: Tensor, grads: Tuple[Tensor, ...],
            rate: Tensor) -> None:
        r"""Adds the samples ``steps`` (rows of the stratum-major schedule)."""
        rows = torch.arange(steps.start, steps.stop, device=rate.device)
        sign = torch.where(rows % GROUP < PAIRS, 1.0, -1.0).to(coefficients)
        signed = coefficients * sign[:, None]  # (k, batch): + first pair, - second
        stratum = rows // GROUP - steps.start // GROUP
        count = int(stratum[-1]) + 1

        def by_stratum(t: Tensor) -> Tensor:  # (k, batch, ...) summed into (count, batch, ...)
            return t.new_zeros(count, *t.shape[1:]).index_add_(0, stratum, t)

        maps = [by_stratum(signed[:, :, None].to(g.dtype) * flat_features(g, 2)) for g in grads]
        rates = by_stratum(signed * rate)
        if self.pending is not None:
            for m, p in zip(maps, self.pending[0]):
                m[0] += p
            rates[0] += self.pending[1]
            self.pending = None
        if steps.stop % GROUP:
            self.pending = ([m[-1] for m in maps], rates[-1])
            maps, rates = [m[:-1] for m in maps], rates[:-1]
        if self.directions is not None:
            maps = [m * flat_features(d, 1) for m, d in zip(maps, self.directions)]
        self.strata_squares.append(sum((m ** 2).sum(dim=2) for m in maps))
        crossed = [(rates[:, :, None] * m).sum(dim=0) for m in maps]
        self.cross = crossed if self.cross is None else [
            c + n for c, n in zip(self.cross, crossed)]
        self.rate_squares = self.rate_squares + (rates ** 2).sum(dim=0)

    def per_stratum(self) -> Tensor:
        r"""``|D_s|^2`` of every stratum ``(S, batch)``: where the error comes from."""
        return torch.cat(self.strata_squares)

    def variance(self, attributions: Tuple[Tensor, ...], weighted_rate: Tensor,
                 rescale: bool) -> Tensor:
        r"""The estimated squared error ``(batch,)`` of ``attributions`` (the
        map the samples summed to), or, where ``rescale``, of the map scaled
        by ``1 / weighted_rate`` (to first order), times ``weighted_rate^2``."""
        squares = self.per_stratum().sum(dim=0)
        if not rescale or self.cross is None:
            return squares
        ratio = [safe_div(flat_features(a, 1), weighted_rate[:, None]) for a in attributions]
        inner = sum((c * r).sum(dim=1) for c, r in zip(self.cross, ratio))
        size = sum((r ** 2).sum(dim=1) for r in ratio)
        return (squares - 2 * inner + size * self.rate_squares).clamp(min=0)


# Samplers -----------------------------------------------------------------


class Sampler(ABC):
    r"""Where a path integral samples. :meth:`start` reads what the sampler
    needs before the first samples (nothing, or a probe); :meth:`place`
    turns what is known into a schedule of ``n_steps`` samples."""

    def start(self, model: ModelOnPath, n_steps: int) -> Known:
        return Known()

    @abstractmethod
    def place(self, model: ModelOnPath, known: Known, n_steps: int) -> Schedule:
        ...

    def integrate(self, model: ModelOnPath, known: Known, n_steps: int,
                  weight: "Weight") -> PathSums:
        r"""The sums of ``n_steps`` gradient samples: here of the schedule
        :meth:`place` gives, in one pass."""
        return model.sums(self.place(model, known, n_steps), weight)

    def strata(self, model: ModelOnPath, known: Known, n_strata: int) -> Tensor:
        r"""Edges ``(n_strata + 1, batch)`` of the strata of a randomized rule
        (tolerance mode): equal ones here."""
        edges = torch.linspace(0, 1, n_strata + 1, dtype=torch.float64,
                               device=model.path.inputs[0].device)
        return edges[:, None].expand(-1, model.path.batch_size)


@dataclass
class FixedRule(Sampler):
    r"""A fixed rule, the same for every example (see
    :func:`~captum_idg.attr.schedules.riemann_schedule`)."""

    method: str

    def place(self, model: ModelOnPath, known: Known, n_steps: int) -> Schedule:
        return Schedule(*riemann_schedule(self.method, n_steps, model.path.batch_size,
                                          **model.like()))


@dataclass
class Adaptive(Sampler):
    r"""
    Adaptive sampling: a probe of ``n_probe_steps`` points (None: see
    :func:`~captum_idg.attr.schedules.default_probe_steps`) in two passes
    (the first holds about ``MIN_PROBE_STEPS`` of them, see
    :func:`_first_pass`), up to
    ``PROBE_ROUNDS`` rounds of :func:`~captum_idg.attr.schedules.refinement_points`
    where the logit jumps (one pass each, holding only the points each
    example asked for), then Gauss-Legendre panels
    placed on everything known (:func:`~captum_idg.attr.schedules.adaptive_schedule`).
    On a piecewise-linear network the first pass also counts the switches of
    its ReLU-type units and max pools (:class:`~captum_idg.attr._piecewise.SwitchCounter`),
    and where its logit moves evenly (its density nowhere above
    ``SWITCH_EVEN_PEAK`` times its mean) the samples follow them instead
    (:func:`~captum_idg.attr.schedules.switch_cells`): there the integrand is
    piecewise constant, and Gauss-Legendre's order buys nothing. With
    enough gradients to place and jumps sparse enough, such an example
    skips the second pass and refines its samples where its integrand
    jumped (:meth:`integrate`).
    The probe is paid for out of ``n_steps``: a call places ``n_steps``
    less the probe's cost in gradient evaluations
    (:func:`~captum_idg.attr.schedules.gradient_steps`).
    """

    n_probe_steps: Optional[int] = None
    _probed: int = field(default=0, init=False, repr=False)  # points of the last start's probe
    # the last start's first probe pass and its switches, where the network is piecewise linear
    _switches: Optional[Tuple[Known, Tensor]] = field(default=None, init=False, repr=False)
    # the examples of the last start whose samples are refined where the integrand jumps
    _refined: Optional[Tensor] = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        _check_probe_steps(self.n_probe_steps)

    def start(self, model: ModelOnPath, n_steps: int) -> Known:
        self._probed = _probe_steps(model, self.n_probe_steps, default_probe_steps(n_steps))
        batch = model.path.batch_size
        grid = torch.linspace(0, 1, self._probed, **model.like())[:, None].expand(-1, batch)
        first = _first_pass(self._probed)
        counter = SwitchCounter(batch)
        known = Known(grid[first], model.logits(grid[first], counter))
        switches = counter.counts()
        self._switches = None if switches is None else (known, switches)
        self._refined = self._refines(model, n_steps, int(first.sum()))
        rest = grid[~first]
        if len(rest) and self._refined is None:
            known = known.merged(rest, model.logits(rest))
        elif len(rest):  # the refined examples need no more: their logit moves evenly
            asks = ~self._refined.expand_as(rest)
            logits = model.logits_where(rest, asks, known.logits[0])
            known = known.merged(rest, torch.where(
                asks, logits, _interpolated(known.grid, known.logits, rest)))
        for _ in range(PROBE_ROUNDS):
            found = refinement_points(known.grid, known.logits, n_steps)
            if found is None:
                break
            points, new = found
            if self._refined is not None:
                new = new & ~self._refined
            points = points.to(known.grid.dtype)
            known = known.merged(points, model.logits_where(points, new, known.logits[0]))
        return known

    def _refines(self, model: ModelOnPath, n_steps: int, probed: int) -> Optional[Tensor]:
        r"""The examples ``(batch,)`` whose samples are refined where the
        integrand jumps (None: none): on a piecewise-linear network whose
        logit moves evenly on the first probe pass, with at least
        ``REFINE_MIN_STEPS`` gradients to place and at most
        ``REFINE_MAX_SWITCHES`` switches per gradient (denser jumps are
        spread evenly enough for the switches alone), whose gradients and
        integrand fit in a quarter of the free memory (they are held to the end)."""
        steps = gradient_steps(n_steps, probed)
        if self._switches is None or steps < REFINE_MIN_STEPS:
            return None
        if 2 * steps * model.path.batch_size > ACTIVATION_FACTOR * rows_per_pass(
                model.path.inputs, None):
            return None
        probe, switches = self._switches
        refined = moves_evenly(probe.grid, probe.logits, SWITCH_EVEN_PEAK) & (
            switches.sum(dim=0) <= REFINE_MAX_SWITCHES * steps)
        return refined if refined.any() else None

    def place(self, model: ModelOnPath, known: Known, n_steps: int) -> Schedule:
        steps = gradient_steps(n_steps, self._probed)
        alphas, weights = adaptive_schedule(known.grid, known.logits, steps)
        if self._switches is not None:
            probe, switches = self._switches
            even = moves_evenly(probe.grid, probe.logits, SWITCH_EVEN_PEAK)
            if even.any():
                cells = switch_cells(probe.grid, probe.logits, switches, steps)
                alphas, weights = (torch.where(even, c.to(t), t) for c, t in
                                   zip(cells, (alphas, weights)))
        return Schedule(alphas, weights)

    def integrate(self, model: ModelOnPath, known: Known, n_steps: int,
                  weight: "Weight") -> PathSums:
        r"""As :meth:`Sampler.integrate`; the refined examples (see
        :meth:`start`) take a third of their gradients from the switches
        (:func:`~captum_idg.attr.schedules.switch_cells`), then cut the gaps
        where the integrand jumped (:meth:`ModelOnPath.refined_sums`)."""
        if self._refined is None or self._switches is None:
            return super().integrate(model, known, n_steps, weight)
        batch, parts = model.path.batch_size, []
        probe, switches = self._switches
        index = self._refined.nonzero().flatten()
        grid, logits = probe.grid[:, index], probe.logits[:, index]
        steps = gradient_steps(n_steps, len(grid))
        first = switch_cells(grid, logits, switches[:, index],
                             max(1, round(steps * REFINE_FIRST)))[0].to(grid)
        on = (lambda i: model) if len(index) == batch else model.select  # noqa: E731
        parts.append((index, on(index).refined_sums(first, steps, weight)))
        if len(index) < batch:
            rest = (~self._refined).nonzero().flatten()
            schedule = self.place(model, known, n_steps)
            parts.append((rest, model.select(rest).sums(
                Schedule(schedule.alphas[:, rest], schedule.weights[:, rest]), weight)))
        return PathSums.joined(parts, batch)

    def strata(self, model: ModelOnPath, known: Known, n_strata: int) -> Tensor:
        r"""Strata of equal mass under the sampling density (see
        :func:`~captum_idg.attr.schedules.equal_mass_edges`)."""
        return equal_mass_edges(known.grid, known.logits, n_strata)


class AuthorsSchedule(Sampler):
    r"""The IDG authors' released schedule on a probe of ``n_steps`` uniform
    points (see :func:`~captum_idg.attr.schedules.reference_schedule`)."""

    def start(self, model: ModelOnPath, n_steps: int) -> Known:
        return model.uniform_logits(n_steps)

    def place(self, model: ModelOnPath, known: Known, n_steps: int) -> Schedule:
        return Schedule(*reference_schedule(known.logits, n_steps))


def _first_pass(probed: int) -> Tensor:
    r"""Which of ``probed`` evenly spaced probe points ``(probed,)`` the first
    pass holds: every ``k``-th and the last, ``k`` the largest stride that
    leaves at least ``MIN_PROBE_STEPS`` (all of them up to 10)."""
    first = torch.zeros(probed, dtype=torch.bool)
    first[::max(1, (probed - 1) // (MIN_PROBE_STEPS - 1))] = True
    first[-1] = True
    return first


def _check_probe_steps(n_probe_steps: Optional[int]) -> None:
    if n_probe_steps is not None:
        check_count("n_probe_steps", n_probe_steps, 2)


def _probe_steps(model: ModelOnPath, n_probe_steps: Optional[int], default: int) -> int:
    r"""``n_probe_steps``, checked to fit in memory, or ``default`` (at most
    ``n_steps``, which the intake checked) where it is None."""
    if n_probe_steps is None:
        return default
    check_steps_fit(model.path.inputs, n_probe_steps, "n_probe_steps")
    return n_probe_steps


@dataclass
class SaturationCut(Sampler):
    r"""
    ``inner`` on ``[0, a*]``, ``a*`` the point where the logit saturates (see
    :func:`~captum_idg.attr.schedules.saturation_point`), found on a probe of
    ``n_probe_steps`` points (None: ``n_steps``). ``inner`` places its
    samples from what is known below ``a*`` (rescaled to ``[0, 1]``).
    """

    inner: Sampler
    threshold: float
    rule: str
    n_probe_steps: Optional[int] = None

    def __post_init__(self) -> None:
        _check_probe_steps(self.n_probe_steps)

    def start(self, model: ModelOnPath, n_steps: int) -> Known:
        known = model.uniform_logits(_probe_steps(model, self.n_probe_steps, n_steps))
        cut = saturation_point(known.logits, self.threshold, self.rule)
        at_baseline = (cut == 0).nonzero().flatten().tolist()
        if at_baseline:
            warn(f"the baseline of {some_examples(at_baseline, len(cut))} already reaches the "
                 "threshold: Left-IG keeps the first probe interval there, as the IDG authors' "
                 "code does")
            cut = cut.clamp(min=float(known.grid[1, 0]))
        return Known(known.grid, known.logits, cut)

    def place(self, model: ModelOnPath, known: Known, n_steps: int) -> Schedule:
        schedule = self.inner.place(model, _below_cut(known), n_steps)
        return Schedule(schedule.alphas * known.end, schedule.weights * known.end)

    def strata(self, model: ModelOnPath, known: Known, n_strata: int) -> Tensor:
        return self.inner.strata(model, _below_cut(known), n_strata) * known.end.to(torch.float64)


def _below_cut(known: Known) -> Known:
    r"""What is known on ``[0, a*]`` (``a* = known.end``), rescaled to ``[0, 1]``."""
    cut = known.end
    inside = known.grid <= cut
    at_cut = _interpolated(known.grid, known.logits, cut)
    return Known(torch.where(inside, known.grid / cut, 1.0),
                 torch.where(inside, known.logits, at_cut))


def _interpolated(grid: Tensor, logits: Tensor, at: Tensor) -> Tensor:
    r"""The logits ``(M, batch)`` on ``grid`` linearly interpolated at ``at``
    ``(k, batch)`` (or ``(batch,)``)."""
    points = at.reshape(-1, grid.shape[1]).to(grid.dtype)
    high = torch.searchsorted(grid.T.contiguous(), points.T.contiguous()).T
    high = high.clamp(1, len(grid) - 1)
    low = high - 1
    g0, g1 = grid.gather(0, low), grid.gather(0, high)
    f0, f1 = logits.gather(0, low), logits.gather(0, high)
    return (f0 + (f1 - f0) * safe_div(points - g0, g1 - g0)).reshape(at.shape)


# Weight rules -------------------------------------------------------------


class Weight(ABC):
    r"""The coefficient ``c_k`` ``(k, batch)`` of each gradient sample of the
    samples ``steps`` of ``schedule``: ``rate`` is ``dF/da`` there (exact,
    from the gradient), ``logits`` the logits at the samples so far."""

    @abstractmethod
    def __call__(self, schedule: Schedule, steps: slice, rate: Tensor, logits: Tensor) -> Tensor:
        ...


class PathWeight(Weight):
    r"""IG: the quadrature weight ``w_k``."""

    def __call__(self, schedule: Schedule, steps: slice, rate: Tensor, logits: Tensor) -> Tensor:
        return schedule.weights[steps]


class DecisionWeight(Weight):
    r"""IDG: ``w_k dF/da(a_k)``, the importance factor times the quadrature weight."""

    def __call__(self, schedule: Schedule, steps: slice, rate: Tensor, logits: Tensor) -> Tensor:
        return schedule.weights[steps] * rate


class AuthorsDecisionWeight(Weight):
    r"""The IDG authors' importance factor: ``w_k`` times the backward finite
    difference of consecutive samples' logits (0 for the first), the sum
    divided by the number of samples."""

    def __call__(self, schedule: Schedule, steps: slice, rate: Tensor, logits: Tensor) -> Tensor:
        alphas = schedule.alphas
        start = max(steps.start, 1)
        slope = torch.zeros_like(alphas[steps])
        rise = logits[start:steps.stop] - logits[start - 1:steps.stop - 1]
        run = alphas[start:steps.stop] - alphas[start - 1:steps.stop - 1]
        slope[start - steps.start:] = torch.where(run != 0, safe_div(rise, run), 0.0)
        return schedule.weights[steps] * slope / alphas.shape[0]


# Stopping rules -----------------------------------------------------------


@dataclass
class Integral:
    r"""A stopping rule's result: the sums, what is known of the logit
    (including ``F`` at both ends where the rule needed them), and the
    :class:`RefinementReport` of tolerance mode (None otherwise)."""

    sums: PathSums
    known: Known
    report: Optional[RefinementReport] = None


@dataclass
class FixedSteps:
    r"""One pass of ``n_steps`` samples. A stopping rule's contract:
    ``run(model, sampler, weight)`` returns the :class:`Integral`, having
    asked the sampler where to sample and the model for the gradient passes."""

    n_steps: int

    def run(self, model: ModelOnPath, sampler: Sampler, weight: Weight) -> Integral:
        known = sampler.start(model, self.n_steps)
        return Integral(sampler.integrate(model, known, self.n_steps, weight), known)


# The registry of method names ----------------------------------------------


@dataclass(frozen=True)
class PathMethod:
    r"""
    What a ``method=`` name stands for: ``sampler(n_steps, n_probe_steps)``
    makes its :class:`Sampler`, and ``decision_weight()`` the weight rule of
    IDG's importance factor that goes with it (the exact ``dF/da``, or the
    IDG authors' finite differences with their schedule).
    """

    sampler: Callable[[int, Optional[int]], Sampler]
    decision_weight: Callable[[], Weight] = DecisionWeight


def _authors_schedule(n_steps: int, n_probe_steps: Optional[int]) -> Sampler:
    if n_probe_steps not in (None, n_steps):
        raise ValueError(f"n_probe_steps: the reference schedule probes n_steps={n_steps} "
                         f"points, got n_probe_steps={n_probe_steps}")
    return AuthorsSchedule()


PATH_METHODS: Dict[str, PathMethod] = {
    **{name: PathMethod(lambda n, p, name=name: FixedRule(name)) for name in RIEMANN_METHODS},
    "adaptive": PathMethod(lambda n, p: Adaptive(p)),
    "reference": PathMethod(_authors_schedule, AuthorsDecisionWeight),
}


def register_method(name: str, method: PathMethod) -> None:
    r"""Makes ``name`` a ``method=`` of the classes whose ``methods`` list it
    (:class:`~captum_idg.paths.PathAttribution` takes every registered name)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    if not isinstance(method, PathMethod):
        raise ValueError(f"method must be a PathMethod, got {type(method).__name__}")
    PATH_METHODS[name] = method
