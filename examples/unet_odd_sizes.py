"""A small U-Net whose decoder only lines up with the encoder when H and W are multiples of 4.

    reslint examples/unet_odd_sizes.py:UNet --input 1,3,64,64                 # clean at 64x64
    reslint examples/unet_odd_sizes.py:UNet --input 1,3,66,66                 # RL003: 66 -> 33 -> 16 -> 32
    reslint examples/unet_odd_sizes.py:UNet --input 1,3,64,64 --select RL004  # states the constraint
    reslint "examples/unet_odd_sizes.py:UNet(resize=True)" --input 1,3,66,66 --select RL  # resizes: clean
"""

import torch
import torch.nn.functional as F
from torch import nn


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(),
    )


class UNet(nn.Module):
    def __init__(self, channels: int = 8, classes: int = 2, resize: bool = False):
        super().__init__()
        self.resize = resize
        self.enc1 = conv_block(3, channels)
        self.enc2 = conv_block(channels, 2 * channels)
        self.bottom = conv_block(2 * channels, 4 * channels)
        self.up2 = nn.ConvTranspose2d(4 * channels, 2 * channels, 2, stride=2)
        self.dec2 = conv_block(4 * channels, 2 * channels)
        self.up1 = nn.ConvTranspose2d(2 * channels, channels, 2, stride=2)
        self.dec1 = conv_block(2 * channels, channels)
        self.out = nn.Conv2d(channels, classes, 1)

    def up(self, layer, x, skip):
        x = layer(x)
        if self.resize:  # what robust U-Nets do: match the skip whatever the input size
            x = F.interpolate(x, size=skip.shape[-2:])
        return x

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        b = self.bottom(F.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([e2, self.up(self.up2, b, e2)], dim=1))
        d1 = self.dec1(torch.cat([e1, self.up(self.up1, d2, e1)], dim=1))
        return self.out(d1)
