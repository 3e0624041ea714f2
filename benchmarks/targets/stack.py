"""A residual stack of `depth` tiny blocks, x = x + W relu(x): graph size grows linearly with depth.

    reslint "benchmarks/targets/stack.py:ResidualStack(depth=500)" --input 1,16

Each block is three fx nodes (relu, linear, add) and one skip join. With broken=True every block's
linear has half the width (a bug in a block that is repeated): every join fails and gets a fix,

    reslint "benchmarks/targets/stack.py:ResidualStack(depth=300, broken=True)" --input 1,16
"""

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, width: int, out: int | None = None):
        super().__init__()
        self.linear = nn.Linear(width, out or width)

    def forward(self, x):
        return x + self.linear(torch.relu(x))


class ResidualStack(nn.Module):
    def __init__(self, depth: int = 50, width: int = 16, broken: bool = False):
        super().__init__()
        self.blocks = nn.Sequential(*[Block(width, width // 2 if broken else width) for _ in range(depth)])

    def forward(self, x):
        return self.blocks(x)
