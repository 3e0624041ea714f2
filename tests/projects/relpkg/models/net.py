"""Imports its blocks relatively, as a package module does."""

from torch import nn

from .parts import *


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.down = DownBlock(8, 16)

    def forward(self, x):
        return self.down(self.stem(x))
