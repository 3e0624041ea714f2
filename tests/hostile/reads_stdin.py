"""Asks a question on stdin at import: it must get end-of-file, not wait for an answer."""

from torch import nn

answer = input("dataset path? ")


class Net(nn.Module):
    pass
