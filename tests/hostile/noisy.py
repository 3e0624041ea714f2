"""Prints and warns at import, build and forward, from Python and from the file descriptors directly."""

import os
import sys
import warnings

from small_bug import WideResidual

print("number of parameters: 0.46M")
warnings.warn("this model is deprecated", DeprecationWarning)
warnings.warn("a user warning at import")
os.write(1, b"written to fd 1 at import\n")
os.write(2, b"written to fd 2 at import\n")


class Net(WideResidual):
    def __init__(self) -> None:
        super().__init__()
        print("building Net", file=sys.stderr)
        print("{\"not\": \"the report\"}")

    def forward(self, x):
        print("forward with", tuple(x.shape))
        warnings.warn("a warning in forward", RuntimeWarning)
        return super().forward(x)
