"""A model built from a config object (its annotation names the class), and a block that needs plain arguments."""

from dataclasses import dataclass

from torch import nn


@dataclass
class TinyConfig:
    width: int = 8
    hidden: int = 16
    depth: int = 2
    broken: bool = False  # the last block widens without projecting its skip


class Block(nn.Module):
    def __init__(self, dim, hidden, out=None):
        super().__init__()
        self.up = nn.Linear(dim, hidden)
        self.down = nn.Linear(hidden, out or dim)

    def forward(self, x):
        return x + self.down(self.up(x).relu())  # expect: RL001


class Stack(nn.Module):
    def __init__(self, config: TinyConfig):
        super().__init__()
        self.config = config
        blocks = [Block(config.width, config.hidden) for _ in range(config.depth)]
        if config.broken:
            blocks.append(Block(config.width, config.hidden, out=2 * config.width))
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x):
        return self.blocks(x)


def make_stack(config):
    return Stack(config)
