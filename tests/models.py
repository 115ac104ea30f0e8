"""Small float64 models with known behaviour along a straight path."""

import torch
from torch import Tensor, nn

from captum_idg.testing import SaturatingNet, dense_path_reference

__all__ = ["LinearNet", "SaturatingNet", "TwoInputNet", "dense_path_reference"]


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
