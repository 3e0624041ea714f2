"""Parses its own command line at import, with options only: it must see its own argv, not reslint's."""

import argparse

from small_bug import WideResidual

parser = argparse.ArgumentParser()
parser.add_argument("--depth", type=int, default=2)
args = parser.parse_args()


class Net(WideResidual):
    pass
