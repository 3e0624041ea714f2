"""A residual stack of `depth` tiny blocks, x = x + W relu(x): graph size grows linearly with depth.

    reslint "benchmarks/targets/stack.py:ResidualStack(depth=500)" --input 1,16

Each block is three fx nodes (relu, linear, add) and one skip join.
"""

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.linear = nn.Linear(width, width)

    def forward(self, x):
        return x + self.linear(torch.relu(x))


class ResidualStack(nn.Module):
    def __init__(self, depth: int = 50, width: int = 16):
        super().__init__()
        self.blocks = nn.Sequential(*[Block(width) for _ in range(depth)])

    def forward(self, x):
        return self.blocks(x)
