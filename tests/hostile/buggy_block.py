"""A well-behaved model with one bug: the second stage's block widens and strides without projecting its skip."""

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x):
        out = self.bn1(self.conv1(x)).relu()
        out = self.bn2(self.conv2(out))
        out += x  # expect: RL001
        return out.relu()


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, 1, 1)
        self.stage1 = Block(8, 8, 1)
        self.stage2 = Block(8, 16, 2)
        self.example_input_array = torch.empty(2, 3, 16, 16)

    def forward(self, x):
        return self.stage2(self.stage1(self.stem(x)))
