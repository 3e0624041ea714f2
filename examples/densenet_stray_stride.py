"""A DenseNet whose dense layer has a stray stride: its output no longer concatenates with its input.

    reslint examples/densenet_stray_stride.py:DenseNet                  # RL003 at the torch.cat line
    reslint "examples/densenet_stray_stride.py:DenseNet(stray_stride=1)" # the fixed twin: clean
"""

import torch
from torch import nn


class DenseLayer(nn.Module):
    def __init__(self, in_channels: int, growth: int, stride: int = 1):
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.conv = nn.Conv2d(in_channels, growth, 3, stride, 1, bias=False)

    def forward(self, x):
        new_features = self.conv(torch.relu(self.norm(x)))
        return torch.cat([x, new_features], dim=1)


class DenseNet(nn.Module):
    example_input_array = torch.zeros(2, 3, 32, 32)

    def __init__(self, growth: int = 12, layers: int = 4, stray_stride: int = 2):
        super().__init__()
        self.stem = nn.Conv2d(3, 2 * growth, 3, 1, 1, bias=False)
        channels, blocks = 2 * growth, []
        for index in range(layers):
            blocks.append(DenseLayer(channels, growth, stride=stray_stride if index == 2 else 1))
            channels += growth
        self.block = nn.Sequential(*blocks)
        self.head = nn.Linear(channels, 10)

    def forward(self, x):
        x = self.block(self.stem(x))
        return self.head(x.mean(dim=(2, 3)))
