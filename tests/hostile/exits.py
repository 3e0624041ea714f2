"""Model code that ends, crashes, interrupts or hangs the process at build or forward time."""

import os
import signal
import sys
import time

import torch
from torch import nn


class _Layer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.example_input_array = torch.empty(2, 4)


class ExitInInit(_Layer):
    def __init__(self) -> None:
        super().__init__()
        sys.exit(4)


class ExitInForward(_Layer):
    def forward(self, x):
        sys.exit(3)


class OsExitInInit(_Layer):
    def __init__(self) -> None:
        super().__init__()
        os._exit(0)


class OsExitInForward(_Layer):
    def forward(self, x):
        os._exit(5)


class InterruptInForward(_Layer):
    def forward(self, x):
        raise KeyboardInterrupt


class Segfault(_Layer):
    def forward(self, x):
        os.kill(os.getpid(), signal.SIGSEGV)
        return self.fc(x)


class Hangs(_Layer):
    def forward(self, x):
        while True:
            time.sleep(0.05)


class Stop(BaseException):
    """A control-flow exception that is not an Exception."""


class RaisesBaseException(_Layer):
    def forward(self, x):
        raise Stop("stop here")
