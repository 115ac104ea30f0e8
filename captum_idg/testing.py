"""Float64 models with known behaviour along a path, and dense path integrals.

For checking an integrator against an independent reference: the tests and
``benchmarks/integrator_accuracy.py`` use them, and so can users who want to
see how a schedule does on saturation they choose. Every model returns one
logit per example (target 0) unless it says otherwise.
"""

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

KINDS = ("gate", "stairs", "softplus", "tanh")
# families the adaptive defaults were not first built on: deep softplus nets with
# large weights, single sharp gates, ReLU MLPs, residual SiLU MLPs
FRESH_KINDS = ("deep-softplus", "sharp-gate", "relu", "silu-residual")
# piecewise-linear networks, whose logit along a straight path is piecewise
# linear: the integrands of IG and IDG are piecewise constant, with many jumps
PIECEWISE_KINDS = ("relu-mlp", "dna-cnn", "residual-cnn", "leaky-mlp")
# piecewise-linear families held out from every choice of tolerance mode's
# defaults: 2-D CNNs with max pools, small ReLU6 nets with batch norm, residual
# MLPs whose ReLUs are torch.relu calls
HELD_OUT_PIECEWISE_KINDS = ("pool-cnn", "relu6-cnn", "residual-mlp")


class SaturatingNet(nn.Module):
    """Logits ``5 tanh(gain * (tanh(z W + b) - tanh(b)) v + c)``: from a zero
    baseline the target logit of a confident class rises steeply over part of
    the path, then sits flat (saturates). Smooth (analytic) everywhere."""

    def __init__(self, n_features: int = 6, n_classes: int = 3, gain: float = 12.0,
                 seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(torch.randn(n_features, 16, generator=g, dtype=torch.float64))
        self.b = nn.Parameter(torch.randn(16, generator=g, dtype=torch.float64) / 2)
        self.v = nn.Parameter(torch.randn(16, n_classes, generator=g, dtype=torch.float64) / 4)
        self.c = nn.Parameter(torch.randn(n_classes, generator=g, dtype=torch.float64) / 2)
        self.gain = gain

    def forward(self, z: Tensor) -> Tensor:
        hidden = torch.tanh(z @ self.w + self.b)
        return 5.0 * torch.tanh(self.gain * (hidden - torch.tanh(self.b)) @ self.v + self.c)


class LogisticGates(nn.Module):
    """One logit: logistic gates that switch at chosen points of the path from
    0 to ``x`` (``places`` in (0, 1), ``widths`` in units of the path) plus a
    smooth tanh layer, so that features differ in how they vary."""

    def __init__(self, x: Tensor, places: Sequence[float], widths: Sequence[float],
                 heights: Sequence[float], seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        n = x.shape[-1]
        self.w = torch.randn(len(places), n, generator=g, dtype=torch.float64)
        along = self.w @ x.to(torch.float64)
        self.steepness = torch.sign(along) / (torch.tensor(widths, dtype=torch.float64)
                                              * along.abs())
        self.threshold = torch.tensor(places, dtype=torch.float64) * along
        self.heights = torch.tensor(heights, dtype=torch.float64)
        self.v = torch.randn(n, 8, generator=g, dtype=torch.float64) / math.sqrt(n)
        self.u = torch.randn(8, generator=g, dtype=torch.float64) * 0.3

    def forward(self, z: Tensor) -> Tensor:
        gates = torch.sigmoid(self.steepness * (z @ self.w.T - self.threshold)) @ self.heights
        return (gates + torch.tanh(z @ self.v) @ self.u)[:, None]


class SoftplusNet(nn.Module):
    """One logit from a random MLP: softplus activations of sharpness ``beta``
    by default (smooth; with beta 2 and gain 1.5 it moves evenly along most
    paths, where a fixed rule is hard to beat; a larger ``beta`` and ``gain``
    give kinks), or any ``activation``; ``residual`` adds each hidden layer's
    input to its output."""

    def __init__(self, n_features: int, seed: int = 0, depth: int = 4, width: int = 32,
                 beta: float = 2.0, gain: float = 1.5,
                 activation: Optional[Callable[[Tensor], Tensor]] = None,
                 residual: bool = False) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        dims = [n_features] + [width] * depth + [1]
        self.weights = [torch.randn(a, b, generator=g, dtype=torch.float64) * gain / math.sqrt(a)
                        for a, b in zip(dims, dims[1:])]
        self.biases = [torch.randn(b, generator=g, dtype=torch.float64) * 0.5 for b in dims[1:]]
        self.activation = activation or (lambda t: nn.functional.softplus(t, beta=beta))
        self.residual = residual

    def forward(self, z: Tensor) -> Tensor:
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            hidden = z @ w + b
            if i < len(self.weights) - 1:
                hidden = self.activation(hidden)
                if self.residual and hidden.shape == z.shape:
                    hidden = hidden + z
            z = hidden
        return z


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """torch's global generator seeded with ``seed`` inside, restored after."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        yield


class ReluMLP(nn.Module):
    """A tabular ReLU MLP ``n_features -> width (x depth) -> 1`` with He-scaled
    random weights (``activation`` instead of ReLU where given)."""

    def __init__(self, n_features: int = 10, seed: int = 0, depth: int = 2, width: int = 64,
                 activation: Optional[nn.Module] = None) -> None:
        super().__init__()
        with _seeded(seed):  # the weights, without touching the global generator
            layers: List[nn.Module] = []
            for i in range(depth):
                layers += [nn.Linear(n_features if i == 0 else width, width),
                           activation or nn.ReLU()]
            self.net = nn.Sequential(*layers, nn.Linear(width, 1)).double()
            with torch.no_grad():
                for layer in self.net:
                    if isinstance(layer, nn.Linear):
                        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                        layer.bias.normal_(0, 0.1)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class DnaCNN(nn.Module):
    """A 1-D CNN on one-hot DNA ``(N, 4, length)``: two blocks of convolution,
    ReLU and max pooling, then a linear logit, random weights."""

    def __init__(self, seed: int = 0, channels: int = 16, length: int = 200) -> None:
        super().__init__()
        with _seeded(seed):  # the weights, without touching the global generator
            self.features = nn.Sequential(
                nn.Conv1d(4, channels, 9, padding=4), nn.ReLU(), nn.MaxPool1d(4),
                nn.Conv1d(channels, channels, 9, padding=4), nn.ReLU(), nn.MaxPool1d(4),
            ).double()
            self.head = nn.Linear(channels * (length // 16), 1).double()
            with torch.no_grad():
                self.head.weight.mul_(3.0)

    def forward(self, z: Tensor) -> Tensor:
        return self.head(self.features(z).flatten(1))


class ResidualCNN(nn.Module):
    """A small 2-D residual CNN on ``(N, 3, 16, 16)`` images: a stem, two ReLU
    residual blocks, global average pooling and a linear logit."""

    def __init__(self, seed: int = 0, channels: int = 12) -> None:
        super().__init__()
        with _seeded(seed):  # the weights, without touching the global generator
            self.stem = nn.Conv2d(3, channels, 3, padding=1).double()
            self.blocks = nn.ModuleList(
                nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
                              nn.Conv2d(channels, channels, 3, padding=1)).double()
                for _ in range(2))
            self.head = nn.Linear(channels, 1).double()
            with torch.no_grad():
                self.head.weight.mul_(4.0)

    def forward(self, z: Tensor) -> Tensor:
        z = torch.relu(self.stem(z))
        for block in self.blocks:
            z = torch.relu(z + block(z))
        return self.head(z.mean(dim=(2, 3)))


class PoolCNN(nn.Module):
    """A 2-D CNN on ``(N, 3, 16, 16)``: two blocks of convolution, ReLU and
    2 x 2 max pooling, then a linear logit, random weights."""

    def __init__(self, seed: int = 0, channels: int = 8) -> None:
        super().__init__()
        with _seeded(seed):  # the weights, without touching the global generator
            self.net = nn.Sequential(
                nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Flatten(), nn.Linear(channels * 16, 1)).double()

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class Relu6CNN(nn.Module):
    """A small MobileNet-like net on ``(N, 3, 16, 16)``: convolution, batch
    norm (eval, random statistics) and ReLU6, a depthwise block, global
    average pooling and a linear logit."""

    def __init__(self, seed: int = 0, channels: int = 12) -> None:
        super().__init__()
        with _seeded(seed):  # the weights, without touching the global generator
            norms = [nn.BatchNorm2d(channels) for _ in range(2)]
            for norm in norms:
                norm.running_mean.normal_(0, 0.2)
                norm.running_var.uniform_(0.5, 2.0)
            self.net = nn.Sequential(
                nn.Conv2d(3, channels, 3, stride=2, padding=1), norms[0], nn.ReLU6(),
                nn.Conv2d(channels, channels, 3, padding=1, groups=channels), norms[1],
                nn.ReLU6(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 1),
            ).double()
            with torch.no_grad():
                self.net[-1].weight.mul_(4.0)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class ResidualMLP(nn.Module):
    """A residual MLP ``n_features -> width``, then ``h + relu(h W + b)`` three
    times, then a linear logit; its ReLUs are ``torch.relu`` calls."""

    def __init__(self, n_features: int = 10, seed: int = 0, width: int = 32) -> None:
        super().__init__()
        with _seeded(seed):  # the weights, without touching the global generator
            self.stem = nn.Linear(n_features, width).double()
            self.blocks = nn.ModuleList(nn.Linear(width, width).double() for _ in range(3))
            self.head = nn.Linear(width, 1).double()

    def forward(self, z: Tensor) -> Tensor:
        h = self.stem(z)
        for block in self.blocks:
            h = h + torch.relu(block(h))
        return self.head(h)


def one_hot_dna(length: int, generator: torch.Generator) -> Tensor:
    """A random one-hot DNA sequence ``(4, length)``, float64."""
    bases = torch.randint(0, 4, (length,), generator=generator)
    return nn.functional.one_hot(bases, 4).T.to(torch.float64)


@dataclass
class PathCase:
    """An example to integrate: ``model(x' + a (x - x'))[:, target]`` from ``x' = 0``."""

    kind: str
    model: nn.Module
    x: Tensor
    target: int


def saturating_suite(seed: int = 0, n_cases: int = 120, n_features: int = 10) -> List[PathCase]:
    """
    ``n_cases`` random cases of the four ``KINDS`` in turn: one logistic gate
    anywhere on the path, of width 0.003 to 0.3; two such gates (a staircase);
    a softplus MLP; a :class:`SaturatingNet` of gain 3, 6, 12 or 24.
    Different ``seed`` values give disjoint suites.
    """
    cases = []
    for i in range(n_cases):
        case_seed = seed * 100_000 + i
        g = torch.Generator().manual_seed(case_seed)

        def uniform(low: float, high: float, g: torch.Generator = g) -> float:
            return low + (high - low) * torch.rand(1, generator=g, dtype=torch.float64).item()

        x = torch.randn(n_features, generator=g, dtype=torch.float64)
        kind = KINDS[i % len(KINDS)]
        if kind == "gate":
            model = LogisticGates(x, [uniform(0.05, 0.95)], [10 ** uniform(-2.5, -0.5)], [4.0],
                                  case_seed)
        elif kind == "stairs":
            places = sorted([uniform(0.05, 0.95), uniform(0.05, 0.95)])
            model = LogisticGates(x, places, [10 ** uniform(-2.5, -0.5) for _ in places],
                                  [uniform(2, 4), uniform(2, 4)], case_seed)
        elif kind == "softplus":
            model = SoftplusNet(n_features, case_seed)
        else:
            model = SaturatingNet(n_features, 1, gain=(3, 6, 12, 24)[(i // 4) % 4],
                                  seed=case_seed)
        cases.append(PathCase(kind, model, x, 0))
    return cases


def fresh_suite(seed: int = 0, n_cases: int = 120, n_features: int = 10) -> List[PathCase]:
    """
    ``n_cases`` random cases of the four ``FRESH_KINDS`` in turn: a softplus
    MLP of depth 6 with beta 4 and large weights (gain 3); one logistic gate
    of width 0.0003 to 0.003 of the path; a ReLU MLP of depth 4; a residual
    SiLU MLP of depth 5. Different ``seed`` values give disjoint suites.
    """
    cases = []
    for i in range(n_cases):
        case_seed = 7_000_000 + seed * 100_000 + i
        g = torch.Generator().manual_seed(case_seed)
        x = torch.randn(n_features, generator=g, dtype=torch.float64)
        kind = FRESH_KINDS[i % len(FRESH_KINDS)]
        if kind == "deep-softplus":
            model: nn.Module = SoftplusNet(n_features, case_seed, depth=6, beta=4.0, gain=3.0)
        elif kind == "sharp-gate":
            place = 0.05 + 0.9 * torch.rand(1, generator=g, dtype=torch.float64).item()
            width = 10 ** (-3.5 + torch.rand(1, generator=g, dtype=torch.float64).item())
            model = LogisticGates(x, [place], [width], [4.0], case_seed)
        elif kind == "relu":
            model = SoftplusNet(n_features, case_seed, depth=4, gain=2.0,
                                activation=torch.relu)
        else:
            model = SoftplusNet(n_features, case_seed, depth=5, width=n_features, gain=1.5,
                                activation=nn.functional.silu, residual=True)
        cases.append(PathCase(kind, model, x, 0))
    return cases


def piecewise_linear_suite(seed: int = 0, n_cases: int = 24) -> List[PathCase]:
    """
    ``n_cases`` random cases of the four ``PIECEWISE_KINDS`` in turn: a
    tabular ReLU MLP (10 -> 64 -> 64 -> 1); a 1-D CNN on a one-hot DNA
    sequence of length 200; a residual ReLU CNN on a 16 x 16 image; a deep
    leaky-ReLU MLP (10 -> 32 x 4 -> 1). Each path starts at 0. Different
    ``seed`` values give disjoint suites.
    """
    def build(kind: str, case_seed: int, g: torch.Generator) -> Tuple[nn.Module, Tensor]:
        if kind == "relu-mlp":
            return ReluMLP(10, case_seed), torch.randn(10, generator=g, dtype=torch.float64)
        if kind == "dna-cnn":
            return DnaCNN(case_seed), one_hot_dna(200, g)
        if kind == "residual-cnn":
            return ResidualCNN(case_seed), torch.randn(3, 16, 16, generator=g,
                                                       dtype=torch.float64)
        return (ReluMLP(10, case_seed, depth=4, width=32, activation=nn.LeakyReLU(0.1)),
                torch.randn(10, generator=g, dtype=torch.float64))

    return _cases(PIECEWISE_KINDS, 9_000_000, seed, n_cases, build)


def held_out_piecewise_suite(seed: int = 0, n_cases: int = 24) -> List[PathCase]:
    """
    ``n_cases`` random cases of the ``HELD_OUT_PIECEWISE_KINDS`` in turn
    (:class:`PoolCNN`, :class:`Relu6CNN`, :class:`ResidualMLP`), each path
    from 0, for confirming choices made on :func:`piecewise_linear_suite`.
    Different ``seed`` values give disjoint suites.
    """
    def build(kind: str, case_seed: int, g: torch.Generator) -> Tuple[nn.Module, Tensor]:
        if kind == "residual-mlp":
            return ResidualMLP(10, case_seed), torch.randn(10, generator=g, dtype=torch.float64)
        model = PoolCNN(case_seed) if kind == "pool-cnn" else Relu6CNN(case_seed)
        return model, 2 * torch.randn(3, 16, 16, generator=g, dtype=torch.float64)

    return _cases(HELD_OUT_PIECEWISE_KINDS, 8_000_000, seed, n_cases, build)


def _cases(kinds: Sequence[str], offset: int, seed: int, n_cases: int,
           build: Callable[[str, int, torch.Generator], Tuple[nn.Module, Tensor]]
           ) -> List[PathCase]:
    r"""``n_cases`` cases of ``kinds`` in turn, case ``i`` seeded with ``offset +
    seed * 100 000 + i`` and made by ``build(kind, case seed, generator)``."""
    cases = []
    for i in range(n_cases):
        case_seed = offset + seed * 100_000 + i
        kind = kinds[i % len(kinds)]
        model, x = build(kind, case_seed, torch.Generator().manual_seed(case_seed))
        cases.append(PathCase(kind, model.eval(), x, 0))
    return cases


def dense_path_reference(model: nn.Module, x: Tensor, baseline: Tensor, target: int,
                         n_points: int = 20000, chunk: int = 5000) -> Tuple[Tensor, Tensor]:
    """IG and IDG of one example (no batch dimension) by the midpoint rule on
    ``n_points`` points, with autograd, ``chunk`` points a pass; the model runs
    in the dtype of ``x`` and the sums are float64.

    Returns ``(ig, idg)``, each of the shape of ``x``, float64."""
    direction = (x - baseline).to(torch.float64)
    ig, idg = torch.zeros_like(direction), torch.zeros_like(direction)
    alphas = (torch.arange(n_points, dtype=torch.float64) + 0.5) / n_points
    for part in alphas.split(chunk):
        points = (baseline.to(torch.float64) + part.view(-1, *[1] * x.dim()) * direction)
        points = points.to(x.dtype).requires_grad_()
        (grads,) = torch.autograd.grad(model(points)[:, target].sum(), points)
        grads = grads.to(torch.float64)
        rate = (grads * direction).flatten(1).sum(dim=1)
        ig += grads.sum(dim=0) / n_points
        idg += (grads * rate.view(-1, *[1] * x.dim())).sum(dim=0) / n_points
    return direction * ig, direction * idg
