"""Imports its sibling `layers` as a script would: the two projects' `layers` differ."""

from torch import nn

from layers import Block


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(8, 8)
        self.block = Block(8)

    def forward(self, x):
        return self.block(self.stem(x))
