"""Residual blocks compiled with TorchScript, one with a missing projection."""

import torch
from torch import nn


@torch.jit.script
def fused_add(a, b):
    return a + b  # expect: RL001


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1)

    def forward(self, x):
        return fused_add(self.conv(x), x)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.same = torch.jit.script(Block(8, 8, 1))
        self.down = torch.jit.script(Block(8, 16, 2))

    def forward(self, x):
        return self.down(self.same(self.stem(x)))
