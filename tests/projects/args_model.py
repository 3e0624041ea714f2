"""A model whose unannotated `args` parameter takes the one config-like class of the module."""

from torch import nn


class ModelArgs:
    def __init__(self, dim=8, n_layers=2):
        self.dim = dim
        self.n_layers = n_layers


class Residual(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        return x + self.proj(x)


class Mixer(nn.Module):
    def __init__(self, args):
        super().__init__()
        self.layers = nn.Sequential(*[Residual(args.dim) for _ in range(args.n_layers)])

    def forward(self, x):
        return self.layers(x)
