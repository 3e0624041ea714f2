"""Compiles a block when it is imported: imported before reslint starts, it stays TorchScript."""

import torch
from torch import nn


class Inner(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        return x + self.fc(x)


SCRIPTED = torch.jit.script(Inner())
