"""captum_idg.paths is enough to build a new method: no private import, checked against a
dense float64 path integral, and no two modules of the package import each other."""

import ast
from pathlib import Path as FilePath

import torch
from torch import nn

from captum_idg.paths import Path, PathAttribution, StraightLinePath, Weight

ROOT = FilePath(__file__).resolve().parent.parent


def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 2)).double().eval()


def dense(net, x, curve, speed, weight=lambda a: 1.0, points=4096):
    r"""``sum_k weight(a_k) grad F(z(a_k)) * dz/da(a_k) / points``, the slow obvious loop."""
    total = torch.zeros_like(x)
    for k in range(points):
        a = (k + 0.5) / points
        z = curve(a).requires_grad_()
        (g,) = torch.autograd.grad(net(z[None])[0, 1], z)
        total += weight(a) * g * speed(a) / points
    return total


# --- the user's code: two methods from public parts (30 lines) -------------------------
class Late(Weight):  # path-weighted IG: each sample counts by w(a) = 2a
    def __call__(self, schedule, steps, rate, logits):
        return schedule.weights[steps] * 2 * schedule.alphas[steps]


class ThroughWaypoint(Path):  # baseline -> waypoint (a = 1/2) -> input, two straight legs
    def __init__(self, inputs, baselines, waypoint=0.5):
        super().__init__(inputs)
        self.baselines, self.waypoint = baselines, waypoint

    def select(self, index):
        return ThroughWaypoint(self.taken(self.inputs, index), self.taken(self.baselines, index),
                               self.waypoint)

    def _legs(self, alphas, x, b):
        a = alphas.to(x.dtype).view(*alphas.shape, *[1] * (x.dim() - 1))
        w = torch.full_like(x, self.waypoint)
        first = a < 0.5
        point = torch.where(first, b + 2 * a * (w - b), w + (2 * a - 1) * (x - w))
        return point, torch.where(first, 2 * (w - b), 2 * (x - w)).expand_as(point)

    def points(self, alphas):
        return tuple(self._legs(alphas, x, b)[0].flatten(0, 1)
                     for x, b in zip(self.inputs, self.baselines))

    def derivative(self, alphas):
        return tuple(self._legs(alphas, x, b)[1] for x, b in zip(self.inputs, self.baselines))
# -----------------------------------------------------------------------------------------


def test_path_weighted_ig_from_public_parts_matches_the_dense_integral():
    net, x = model(), torch.randn(2, 5, generator=torch.Generator().manual_seed(1),
                                  dtype=torch.float64)
    ours = PathAttribution(net, weight=Late()).attribute(x, target=1, n_steps=32)
    for b in range(2):
        row = x[b]
        expected = row * dense(net, row, lambda a, row=row: a * row, lambda a: 1.0,
                               lambda a: 2 * a)
        torch.testing.assert_close(ours[b], expected, rtol=1e-6, atol=1e-8)


def test_a_path_through_a_waypoint_matches_the_dense_integral_and_is_complete():
    net, x = model(), torch.randn(3, 5, generator=torch.Generator().manual_seed(2),
                                  dtype=torch.float64)
    explainer = PathAttribution(net, path=ThroughWaypoint, sampler="riemann_middle")
    ours, delta = explainer.attribute(x, target=1, n_steps=256, return_convergence_delta=True)
    w = torch.full((5,), 0.5, dtype=torch.float64)
    for b in range(3):
        def curve(a, b=b):
            return 2 * a * w if a < 0.5 else w + (2 * a - 1) * (x[b] - w)

        def speed(a, b=b):
            return 2 * w if a < 0.5 else 2 * (x[b] - w)

        torch.testing.assert_close(ours[b], dense(net, x[b], curve, speed), rtol=1e-3, atol=1e-5)
    with torch.no_grad():  # the gradient theorem: any path sums to F(x) - F(x')
        change = net(x)[:, 1] - net(torch.zeros_like(x))[:, 1]
    torch.testing.assert_close(ours.sum(1), change, rtol=1e-3, atol=1e-5)
    assert delta.abs().max() < 1e-3
    straight = PathAttribution(net, path=StraightLinePath).attribute(x, target=1)
    assert not torch.allclose(ours, straight, atol=1e-3)  # the waypoint changes the map


def test_the_user_code_above_is_short_and_imports_nothing_private():
    source = FilePath(__file__).read_text()
    user = source.split("# --- the user's code")[1].split("# -----")[0]
    assert len(user.strip().splitlines()) <= 30
    imports = [node for node in ast.walk(ast.parse(source))
               if isinstance(node, ast.ImportFrom) and node.module.startswith("captum_idg")]
    assert imports and all("._" not in node.module for node in imports)


def test_no_two_modules_of_the_package_import_each_other():
    package = ROOT / "captum_idg"
    graph = {}
    for file in package.rglob("*.py"):
        name = ".".join(file.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        imported = set()
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
        graph[name] = {m for m in imported if m.startswith("captum_idg")}

    def reaches(start, goal, seen):
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(f"{a} <-> {b}" for a in graph for b in graph[a]
                    if b != a and b in graph and reaches(b, a, {b}))
    assert not cycles, cycles
