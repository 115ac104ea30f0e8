"""Argument descriptions that several ``attribute`` docstrings share, written once.

A docstring names a shared description as ``{name}``; :func:`documented`
fills it in when the module is imported, so ``help()`` shows the full text.
"""

from typing import Callable, TypeVar

from captum_idg.attr.schedules import MIN_PROBE_STEPS, PROBE_DIVISOR, PROBE_ROUNDS

F = TypeVar("F", bound=Callable)

ARGUMENTS = dict(
    inputs="""inputs (Tensor or tuple[Tensor, ...]): Input for which attributions
                        are computed, batch first. A tuple of tensors for a
                        forward_func that takes several inputs.""",
    baselines="""baselines (scalar, Tensor, tuple of scalar, or Tensor, optional):
                        Start of the path, per input tensor: a scalar, a tensor
                        of the input's shape, or one whose first dimension is 1
                        that broadcasts to it (e.g. ``(1, C, 1, 1)``), as in
                        Captum. A tensor with one more dimension,
                        ``(N, K, *input.shape[1:])`` or ``(1, K, ...)``, gives
                        K references per example: the attributions (and
                        delta) are the mean over them, as DeepLIFT-SHAP's,
                        from one batched call of N x K pairs. Default: None
                        (zeros)""",
    target="""target (int, tuple, Tensor, or list, optional): Output indices for
                        which gradients are computed, as in Captum: one for all
                        examples or one per example. Default: None""",
    additional_forward_args="""additional_forward_args (Any, optional): Extra arguments passed to
                        forward_func after the inputs; tensors need one row per
                        example and are expanded along the path like Captum IG
                        does. Default: None""",
    method="""method (str, optional): Where to sample the path:
                        ``"adaptive"`` (Gauss-Legendre panels that are narrow
                        where the logit moves, found by a forward-only probe;
                        see :mod:`captum_idg.attr.schedules`) or one of
                        Captum's fixed rules ``"riemann_left"``,
                        ``"riemann_right"``, ``"riemann_middle"``,
                        ``"riemann_trapezoid"`` (Captum's weights, which sum
                        to ``(n - 1) / n``), ``"gausslegendre"``, or
                        ``"trapezoid"`` (the trapezoid rule with exact
                        weights). IDG and adaptive IG also take
                        ``"regions"``: exact on networks of linear layers,
                        ReLU-type functions (``relu``, ``leaky_relu``,
                        ``hardtanh``, ``relu6``, as modules or called in
                        ``forward``) and max pools once ``n_steps`` is at
                        least the number of linear regions the path crosses
                        (found by one forward-mode pass per region; see
                        :class:`~captum_idg.paths.Regions`). Default:
                        ``"adaptive"``""",
    n_steps="""n_steps (int, optional): What a call costs, in gradient evaluations
                        (forward and backward) per example, at least 2: a
                        fixed rule takes ``n_steps`` of them; ``"adaptive"``
                        takes ``n_steps`` less its probe's cost, a probe point
                        counting half (13 gradients and 6 probe points at
                        16 steps, 47 and 6 at 50), so it costs what
                        Captum IG costs at the same ``n_steps``. Default: 50""",
    internal_batch_size="""internal_batch_size (int, optional): Most rows (path points) per
                        forward pass, for the probe and the gradient passes
                        alike; a pass always holds at least one step of the
                        whole batch. Default: None (as many rows as fit in a
                        quarter of the device's free memory)""",
    n_probe_steps=f"""n_probe_steps (int, optional): Forward-only probe points of adaptive
                        sampling, at least 2, on a uniform grid that includes
                        both ends of the path; where the logit jumps inside
                        a probe interval, up to {PROBE_ROUNDS} more rounds add
                        points inside it. Default: None (``n_steps // {PROBE_DIVISOR}``,
                        at least {MIN_PROBE_STEPS} and at most n_steps)""",
    tolerance="""tolerance (float, optional): Integrate each example until the
                        estimated relative L2 error of its attributions (all
                        inputs together; of the rescaled map where
                        ``rescale=True``) is at most ``tolerance``; ``n_steps``
                        is then the most gradient evaluations an example may
                        take (at least 16). With ``"adaptive"`` or
                        ``"regions"``, a network that ``"regions"`` can walk
                        is first walked: an example crossing at most
                        ``n_steps`` linear regions gets one gradient per
                        region, exact (its estimate is the rounding of the
                        sum). Otherwise, rounds of a randomized rule: two
                        antithetic pairs in each stratum of the path, the
                        strata equal for a fixed ``method`` and of equal mass
                        under adaptive sampling's density for ``"adaptive"``,
                        then narrow where the last round's error came from;
                        the rounds are pooled, each weighted by the inverse of
                        its estimated squared error. The spread of the pairs
                        estimates the error without bias, jumps of ReLU
                        networks included; the estimate is two standard
                        errors (and at least the last estimate, scaled, and
                        the completeness error of the samples), so the true
                        error is below it in about 95% of cases
                        (docs/integrator.md). Reproducible: the random shifts
                        have a fixed seed. What each example took is in
                        :attr:`refinement` afterwards; one warning counts the
                        examples that hit ``n_steps``.
                        Default: None (one pass of ``n_steps``)""",
)


def documented(func: F) -> F:
    r"""Fills the ``{name}`` placeholders of ``func``'s docstring from ``ARGUMENTS``."""
    func.__doc__ = func.__doc__.format(**ARGUMENTS)
    return func
