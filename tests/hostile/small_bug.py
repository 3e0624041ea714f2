"""A tiny residual MLP whose transform is wider than its skip: shared by the hostile models below."""

import torch
from torch import nn


class WideResidual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 8)
        self.example_input_array = torch.empty(2, 4)

    def forward(self, x):
        return self.fc(x) + x  # expect: RL001
