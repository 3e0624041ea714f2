from torch import nn

__all__ = ["DownBlock"]


class DownBlock(nn.Module):
    """Halves the size and doubles the channels, but forgets to project its skip."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv(x) + x  # expect: RL001
