"""Switches of piecewise-linear networks counted along a path; adaptive sampling follows them."""

import statistics

import pytest
import torch
from torch import nn

from captum_idg import IntegratedDecisionGradients
from captum_idg.attr._path import StraightLinePath, summed_gradients
from captum_idg.attr._path_integral import Adaptive, ModelOnPath
from captum_idg.attr._piecewise import MAX_UNITS, SwitchCounter
from captum_idg.attr.schedules import (
    nearest_sample_weights,
    refined_gaps,
    riemann_schedule,
    switch_cells,
)
from captum_idg.testing import (
    DnaCNN,
    PoolCNN,
    Relu6CNN,
    ReluMLP,
    ResidualMLP,
    dense_path_reference,
    one_hot_dna,
    piecewise_linear_suite,
)


def on_path(model, x, rows=None):
    return ModelOnPath(model, summed_gradients, StraightLinePath((x,), (0 * x,)), target=0,
                       rows=rows)


def counted(model, x, points, rows=None):
    counter = SwitchCounter(len(x))
    on_path(model, x, rows).uniform_logits(points, counter)
    return counter.counts()


def by_hooks(model, x, points):
    """The switches between neighbouring points of each example's path, the slow
    obvious way: one point at a time, each ReLU-type module's and max pool's
    input read by a hook, a pool's maximum by ``return_indices``."""
    def states(z):
        seen = []

        def read(module, args):
            value = args[0]
            if isinstance(module, nn.ReLU6):
                seen.append(torch.cat([(value > 0).flatten(), (value > 6).flatten()]))
            elif isinstance(module, (nn.ReLU, nn.LeakyReLU)):
                seen.append((value > 0).flatten())
            else:  # the position of the maximum in each window, by unfolding
                for d in range(2 if isinstance(module, nn.MaxPool2d) else 1):
                    value = value.unfold(2 + d, module.kernel_size, module.stride)
                seen.append(value.flatten(-2 if isinstance(module, nn.MaxPool2d) else -1)
                            .argmax(dim=-1).flatten())

        kinds = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.MaxPool1d, nn.MaxPool2d)
        handles = [m.register_forward_pre_hook(read) for m in model.modules()
                   if isinstance(m, kinds)]
        with torch.no_grad():
            model(z[None])
        for handle in handles:
            handle.remove()
        return torch.cat(seen)

    alphas = torch.linspace(0, 1, points, dtype=torch.float64)
    columns = []
    for example in x:
        seen = [states(a * example) for a in alphas]
        columns.append(torch.stack([(b != a).sum() for a, b in zip(seen, seen[1:])]))
    return torch.stack(columns, dim=1)


@pytest.mark.parametrize("make, shape", [
    (lambda: DnaCNN(seed=1), None),
    (lambda: PoolCNN(seed=2), (3, 16, 16)),
    (lambda: Relu6CNN(seed=3), (3, 16, 16)),
    (lambda: ReluMLP(10, seed=4, activation=nn.LeakyReLU(0.1)), (10,)),
])
def test_switches_are_counted_as_a_point_by_point_loop_counts_them(make, shape):
    # three examples, 9 probe points, passes of 2 points: the counter sees every
    # module and chunk boundary, and counts what hooks count one point at a time
    model = make().eval()
    g = torch.Generator().manual_seed(7)
    if shape is None:
        x = torch.stack([one_hot_dna(200, g) for _ in range(3)])
    else:
        x = 2 * torch.randn(3, *shape, generator=g, dtype=torch.float64)
    counts = counted(model, x, 9, rows=6)
    expected = by_hooks(model, x, 9)
    assert counts.sum() > 0
    torch.testing.assert_close(counts, expected)


def test_functional_relus_are_counted():
    # torch.relu in a residual MLP, which no module hook sees: the counts are
    # the sign changes of each block's input, computed by hand
    model = ResidualMLP(10, seed=5).eval()
    x = torch.randn(2, 10, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    alphas = torch.linspace(0, 1, 17, dtype=torch.float64)
    with torch.no_grad():
        signs = []
        for a in alphas:
            h, row = model.stem(a * x), []
            for block in model.blocks:
                row.append(block(h) > 0)
                h = h + torch.relu(block(h))
            signs.append(torch.cat(row, dim=1))
    expected = torch.stack([(b != a).sum(dim=1) for a, b in zip(signs, signs[1:])])
    torch.testing.assert_close(counted(model, x, 17), expected)


@pytest.mark.parametrize("model", [
    nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 1)),
    nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Softplus(), nn.Linear(8, 1)),
    nn.Sequential(nn.Linear(4, 1)),  # linear: nothing switches, nothing to follow
])
def test_networks_that_are_not_piecewise_linear_or_never_switch_are_not_counted(model):
    x = torch.randn(2, 4)
    assert counted(model.eval(), x, 8) is None
    sampler = Adaptive()
    sampler.start(on_path(model, x), 50)
    assert sampler._switches is None


class Squared(nn.Module):
    def forward(self, z):
        return (torch.relu(z) ** 2).sum(dim=1, keepdim=True)


class Transposed(nn.Module):  # a ReLU on features x rows: not one row per point
    def forward(self, z):
        return torch.relu(z.T).T.sum(dim=1, keepdim=True)


@pytest.mark.parametrize("model", [Squared(), Transposed()])
def test_a_squared_unit_or_units_not_read_per_point_are_not_counted(model):
    x = torch.randn(2, 4)
    assert counted(model, x, 8) is None
    attribution = IntegratedDecisionGradients(model).attribute(x, target=0, n_steps=16)
    assert torch.isfinite(attribution).all()


def test_switch_cells_tile_the_path_and_follow_the_switches():
    g = torch.Generator().manual_seed(0)
    grid = torch.linspace(0, 1, 9, dtype=torch.float64)[:, None].expand(-1, 3)
    logits = torch.randn(9, 3, generator=g, dtype=torch.float64).cumsum(dim=0)
    switches = torch.zeros(8, 3)
    switches[1, 0] = 200  # example 0: all switches in [1/8, 2/8]
    switches[:, 1] = torch.randint(0, 9, (8,), generator=g)
    alphas, weights = switch_cells(grid, logits, switches, 40)
    torch.testing.assert_close(weights.sum(dim=0), torch.ones(3, dtype=torch.float64))
    edges = torch.cat([torch.zeros(1, 3, dtype=torch.float64), weights.cumsum(dim=0)])
    torch.testing.assert_close(alphas, (edges[1:] + edges[:-1]) / 2)  # each a midpoint
    inside = (alphas[:, 0] > 1 / 8) & (alphas[:, 0] < 2 / 8)
    assert inside.sum() > 40 / 8 * 3  # many more than a uniform share
    # where nothing switches: the midpoint rule exactly
    middle = riemann_schedule("riemann_middle", 40, 1)
    torch.testing.assert_close(alphas[:, 2:], middle[0])
    torch.testing.assert_close(weights[:, 2:], middle[1])


def test_adaptive_idg_on_a_fresh_seed_leads_on_mlps_and_keeps_up_on_cnns():
    # seed 4, on which no choice was made: adaptive IDG at 50 evaluations over the
    # better of Gauss-Legendre and the midpoint rule with 50 gradients. Refined where
    # the integrand jumps, it is ahead on the ReLU and leaky MLPs (measured 0.26-0.89,
    # median 0.51; following the switches alone, the code before: 0.68-1.22, median
    # 0.82), and keeps up on the DNA and residual CNNs (median 1.08, 0.74-1.63 per
    # case; before: 1.03)
    ratios = {"mlp": [], "cnn": []}
    for case in piecewise_linear_suite(seed=4, n_cases=8):
        reference = dense_path_reference(case.model, case.x, torch.zeros_like(case.x), 0,
                                         2**13)[1]
        explainer = IntegratedDecisionGradients(case.model)
        error = {}
        for method in ("adaptive", "gausslegendre", "riemann_middle"):
            attribution = explainer.attribute(case.x[None], target=0, n_steps=50,
                                              method=method, rescale=False)[0]
            error[method] = float((attribution - reference).norm() / reference.norm())
        better = min(error["gausslegendre"], error["riemann_middle"])
        ratios["mlp" if case.kind.endswith("mlp") else "cnn"].append(error["adaptive"] / better)
    assert statistics.median(ratios["mlp"]) <= 0.8, ratios
    assert max(ratios["mlp"]) < 1.0, ratios
    assert statistics.median(ratios["cnn"]) <= 1.25, ratios


def greedy_cuts(alphas, jumps, n_new):
    """How many points ``refined_gaps`` puts in each gap of one example, the
    slow obvious way: one point at a time where it removes the most error."""
    edges = [0.0] + alphas.tolist() + [1.0]
    widths = [b - a for a, b in zip(edges, edges[1:])]
    rates = [j / w for j, w in zip(jumps.tolist(), widths[1:-1])]
    rates = [rates[0]] + rates + [rates[-1]]
    reach = [2 * widths[0]] + widths[1:-1] + [2 * widths[-1]]
    cuts = [0] * len(widths)
    for _ in range(n_new):
        gains = [r * h ** 3 * ((m + 1) ** -2 - (m + 2) ** -2)
                 for r, h, m in zip(rates, reach, cuts)]
        cuts[gains.index(max(gains))] += 1
    return edges, cuts


def test_refined_gaps_cut_the_gaps_a_greedy_loop_chooses_evenly():
    g = torch.Generator().manual_seed(1)
    alphas = torch.rand(12, 3, generator=g, dtype=torch.float64).sort(dim=0).values
    jumps = torch.rand(11, 3, generator=g, dtype=torch.float64) ** 4  # a few large jumps
    new = refined_gaps(alphas, jumps, 20)
    for b in range(3):
        edges, cuts = greedy_cuts(alphas[:, b], jumps[:, b], 20)
        expected = []
        for i, (low, high, m) in enumerate(zip(edges, edges[1:], cuts)):
            for r in range(m):
                if i == 0:
                    expected.append(high * (r + 0.5) / (m + 0.5))
                elif i == len(cuts) - 1:
                    expected.append(high - (high - low) * (r + 0.5) / (m + 0.5))
                else:
                    expected.append(low + (high - low) * (r + 1) / (m + 1))
        torch.testing.assert_close(new[:, b].sort().values,
                                   torch.tensor(expected, dtype=torch.float64).sort().values)
    # a single jump: every point goes into its gap
    jumps = torch.zeros(11, 1, dtype=torch.float64)
    jumps[4] = 1.0
    new = refined_gaps(alphas[:, :1], jumps, 6)
    assert ((new > alphas[4, 0]) & (new < alphas[5, 0])).all()


def test_nearest_sample_weights_are_the_midpoint_rule_on_cells_and_a_loop_elsewhere():
    middle = riemann_schedule("riemann_middle", 9, 2)
    torch.testing.assert_close(nearest_sample_weights(middle[0]), middle[1])
    g = torch.Generator().manual_seed(2)
    alphas = torch.rand(7, 2, generator=g, dtype=torch.float64)
    weights = nearest_sample_weights(alphas)
    for b in range(2):
        for k, a in enumerate(alphas[:, b].tolist()):
            left = max([x for x in alphas[:, b].tolist() if x < a], default=None)
            right = min([x for x in alphas[:, b].tolist() if x > a], default=None)
            span = (1.0 if right is None else (a + right) / 2) - (
                0.0 if left is None else (a + left) / 2)
            assert abs(float(weights[k, b]) - span) < 1e-12


class Kinked(nn.Module):
    """A logit that moves evenly, ``t + relu(t - 4 a*) / 2`` of ``t = sum(z)``,
    with one kink at ``a* = 0.618...`` on the path from 0 to ones: the IDG
    integrand is ``4`` per feature before it and ``6 * 1.5 = 9`` after."""

    def forward(self, z):
        t = z.sum(dim=1, keepdim=True)
        return t + torch.relu(t - 4 * 0.6180339887) / 2


def test_refinement_closes_in_on_a_jump_the_fixed_rules_straddle():
    x = torch.ones(1, 4, dtype=torch.float64)
    exact = 4 * 0.6180339887 + 9 * (1 - 0.6180339887)
    explainer = IntegratedDecisionGradients(Kinked())
    error = {method: float((explainer.attribute(x, target=0, n_steps=50, method=method,
                                                rescale=False) - exact).abs().max() / exact)
             for method in ("adaptive", "riemann_middle", "gausslegendre")}
    # measured: 5e-7 against 1.7e-3 and 4.3e-3; midpoint cells that follow the
    # switches alone (the code before) straddle the kink with one cell: 4.6e-4
    assert error["adaptive"] < 1e-5, error
    assert error["adaptive"] < min(error["riemann_middle"], error["gausslegendre"]) / 100


def mixed_batch():
    """A ReLU MLP and four examples, the first two not refined at 60 steps, the last two refined."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                          nn.Linear(16, 1), nn.ReLU()).double()
    x = torch.randn(8, 6, generator=torch.Generator().manual_seed(0),
                    dtype=torch.float64)[[0, 6, 2, 7]]
    return model, x


def test_an_example_refined_in_a_batch_is_refined_alone_and_its_batch_mates_too():
    # a ReLU MLP on four examples, two of whose logits move evenly (refined) and two
    # not (Gauss-Legendre panels on the whole probe): each as it is alone
    model, x = mixed_batch()
    sampler = Adaptive()
    sampler.start(on_path(model, x), 60)
    assert sampler._refined.tolist() == [False, False, True, True]
    explainer = IntegratedDecisionGradients(model)
    together = explainer.attribute(x, target=0, n_steps=60, rescale=False)
    alone = torch.cat([explainer.attribute(x[i:i + 1], target=0, n_steps=60, rescale=False)
                       for i in range(4)])
    torch.testing.assert_close(together, alone)
    reference = torch.stack([dense_path_reference(model, e, 0 * e, 0, 2**13)[1] for e in x])
    error = (together - reference).norm(dim=1) / reference.norm(dim=1)
    assert (error[2:] < 0.02).all(), error  # the refined ones (measured 0.012, 0.0001)


class TwoInputs(nn.Module):
    """The MLP of the batch test on a pair of inputs, split 4 + 2."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, a, b):
        return self.model(torch.cat([a, b], dim=1))


def test_refined_calls_split_into_passes_or_inputs_give_the_same_map():
    model, x = mixed_batch()
    explainer = IntegratedDecisionGradients(model)
    whole = explainer.attribute(x, target=0, n_steps=60, rescale=False)
    split = explainer.attribute(x, target=0, n_steps=60, rescale=False, internal_batch_size=7)
    torch.testing.assert_close(split, whole)
    pair = IntegratedDecisionGradients(TwoInputs(model)).attribute(
        (x[:, :4], x[:, 4:]), target=0, n_steps=60, rescale=False)
    torch.testing.assert_close(torch.cat(pair, dim=1), whole)


class WideAndNarrow(nn.Module):
    """Two ReLU layers side by side on the input: one read at a stride of 4, one whole
    and holding about a seventh of the units, so that both strides' counts matter."""

    def __init__(self):
        super().__init__()
        self.wide, self.narrow = nn.Linear(4, 3 * MAX_UNITS + 7), nn.Linear(4, MAX_UNITS // 2)
        self.relus = nn.ModuleList([nn.ReLU(), nn.ReLU()])
        self.out = nn.Linear(self.wide.out_features + self.narrow.out_features, 1)

    def forward(self, z):
        return self.out(torch.cat([self.relus[0](self.wide(z)), self.relus[1](self.narrow(z))],
                                  dim=1))


def test_a_layer_of_more_units_than_are_read_is_counted_at_a_stride_within_a_few_percent():
    torch.manual_seed(0)
    wide = WideAndNarrow()
    x = torch.randn(2, 4)
    counts, exact = counted(wide, x, 9), by_hooks(wide, x, 9)
    assert counts.sum() > 1000  # many units switch along these paths
    torch.testing.assert_close(counts.sum(dim=0).double(), exact.sum(dim=0).double(), rtol=0.05,
                               atol=0)
    torch.testing.assert_close(counts.double(), exact.double(), rtol=0.2, atol=60)
