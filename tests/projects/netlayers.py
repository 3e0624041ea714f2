"""Exists, but imports a dependency that is not installed (whose name is a prefix of this module's)."""

import net  # noqa: F401

from torch import nn


class Net(nn.Module):
    def forward(self, x):
        return x
