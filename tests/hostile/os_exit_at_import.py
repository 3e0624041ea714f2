"""A module that ends the whole process when imported, without raising anything."""

import os

from torch import nn

os._exit(0)


class Net(nn.Module):
    pass
