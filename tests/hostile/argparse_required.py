"""Parses its own command line at import and needs an argument: argparse exits with status 2."""

import argparse

from torch import nn

parser = argparse.ArgumentParser()
parser.add_argument("data_dir")
args = parser.parse_args()


class Net(nn.Module):
    pass
