"""A model holding a block that was compiled elsewhere (by prebuilt.py, when it was imported)."""

from torch import nn

from prebuilt import SCRIPTED


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(8, 8)
        self.inner = SCRIPTED

    def forward(self, x):
        return self.inner(self.stem(x))
