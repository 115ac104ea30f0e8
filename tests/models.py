"""Small float64 models with known behaviour along a straight path."""

import torch
from torch import Tensor, nn


class SaturatingNet(nn.Module):
    """Logits ``5 tanh(gain * tanh(z W + b) v + c)``: from a zero baseline the
    target logit of a confident class rises steeply over the first part of the
    path, then sits flat (saturates)."""

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


class LinearNet(nn.Module):
    """Logits ``z W + c``: every path method has a closed form here."""

    def __init__(self, n_features: int = 6, n_classes: int = 3, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.linear = nn.Linear(n_features, n_classes).double()
        with torch.no_grad():
            self.linear.weight.copy_(torch.randn(n_classes, n_features, generator=g))
            self.linear.bias.copy_(torch.randn(n_classes, generator=g))

    def forward(self, z: Tensor) -> Tensor:
        return self.linear(z)


class TwoInputNet(nn.Module):
    """Takes two tensors and a scalar ``temperature`` forward argument."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.a = nn.Parameter(torch.randn(4, 8, generator=g, dtype=torch.float64))
        self.b = nn.Parameter(torch.randn(2 * 3, 8, generator=g, dtype=torch.float64))
        self.out = nn.Parameter(torch.randn(8, 3, generator=g, dtype=torch.float64))

    def forward(self, x1: Tensor, x2: Tensor, temperature: float = 1.0) -> Tensor:
        hidden = torch.tanh(x1 @ self.a + x2.flatten(1) @ self.b)
        return 4.0 * torch.tanh(hidden @ self.out / temperature)


def dense_path_reference(model: nn.Module, x: Tensor, baseline: Tensor, target: int,
                         n_points: int = 20000) -> tuple[Tensor, Tensor]:
    """IG and IDG of one example by a dense float64 midpoint rule, with autograd.

    Returns ``(ig, idg)``, each of the shape of ``x`` (no batch dimension)."""
    alphas = (torch.arange(n_points, dtype=torch.float64) + 0.5) / n_points
    direction = (x - baseline).to(torch.float64)
    points = (baseline + alphas[:, None] * direction).requires_grad_()
    logit = model(points)[:, target]
    (grads,) = torch.autograd.grad(logit.sum(), points)
    rate = grads @ direction
    ig = direction * grads.mean(dim=0)
    idg = direction * (grads * rate[:, None]).mean(dim=0)
    return ig, idg
