"""Prints a lot (about 5 MB) when imported: the output is captured, kept short, and never reaches stdout."""

from small_bug import WideResidual

for number in range(50_000):
    print(f"{number:08d} " + "x" * 90)


class Net(WideResidual):
    pass
