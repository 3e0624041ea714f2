"""Each fix kind, proven: reslint validates it on meta, and pasting it makes the real model run."""

import pytest
import torch
from torch import nn

import reslint


class ConvBlock(nn.Module):
    def __init__(self, dims, cin, cout, stride, norm=None):
        super().__init__()
        conv = getattr(nn, f"Conv{dims}d")
        self.conv = conv(cin, cout, 3, stride, 1, bias=False)
        self.norm = norm(cout) if norm else nn.Identity()
        self.shortcut = nn.Identity()

    def forward(self, x):
        return torch.relu(self.norm(self.conv(x)) + self.shortcut(x))


class TokenBlock(nn.Module):
    def __init__(self, din, dout):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(din, 4 * din), nn.GELU(), nn.Linear(4 * din, dout))
        self.shortcut = nn.Identity()

    def forward(self, x):
        return x + self.mlp(x)


def fixed_runs(model, fix, attribute, example):
    parent, _, name = attribute.rpartition(".")
    owner = model.get_submodule(parent) if parent else model
    setattr(owner, name, eval(fix.code, {"nn": nn}))
    return model(example)


@pytest.mark.parametrize(
    "dims, norm, expected",
    [
        (1, None, "nn.Conv1d(4, 8, kernel_size=1, stride=2)"),
        (2, nn.BatchNorm2d, "nn.Sequential(nn.Conv2d(4, 8, kernel_size=1, stride=2, bias=False), nn.BatchNorm2d(8))"),
        (2, lambda c: nn.GroupNorm(2, c), "nn.Sequential(nn.Conv2d(4, 8, kernel_size=1, stride=2, bias=False), nn.GroupNorm(2, 8))"),
        (3, nn.BatchNorm3d, "nn.Sequential(nn.Conv3d(4, 8, kernel_size=1, stride=2, bias=False), nn.BatchNorm3d(8))"),
    ],
)
def test_project_skip_conv(dims, norm, expected):
    model = ConvBlock(dims, 4, 8, 2, norm)
    example = torch.randn(2, 4, *([8] * dims))
    finding, = reslint.check(model, example).findings
    assert finding.code == "RL001"
    assert (finding.fix.kind, finding.fix.code, finding.fix.validated) == ("project-skip", expected, True)
    assert fixed_runs(model, finding.fix, "shortcut", example).shape == (2, 8, *([4] * dims))


@pytest.mark.parametrize("shape", [(2, 16), (2, 5, 16)])
def test_project_skip_linear_for_feature_and_token_tensors(shape):
    class Widen(nn.Module):
        def __init__(self):
            super().__init__()
            self.mlp = nn.Sequential(nn.Linear(16, 64), nn.GELU(), nn.Linear(64, 32))
            self.shortcut = nn.Identity()
            self.head = nn.Linear(32, 3)  # the rest of the model wants 32: the transform is right

        def forward(self, x):
            return self.head(self.shortcut(x) + self.mlp(x))

    model = Widen()
    finding, = reslint.check(model, torch.randn(*shape)).findings
    assert (finding.fix.kind, finding.fix.code, finding.fix.validated) == ("project-skip", "nn.Linear(16, 32)", True)
    assert fixed_runs(model, finding.fix, "shortcut", torch.randn(*shape)).shape == (*shape[:-1], 3)


def test_restride_skip_names_the_projection_and_its_stride():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 8, 3, 2, 1)
            self.downsample = nn.Sequential(nn.Conv2d(4, 8, kernel_size=1, bias=False), nn.BatchNorm2d(8))

        def forward(self, x):
            return self.conv(x) + self.downsample(x)

    model = Block()
    finding, = reslint.check(model, torch.randn(2, 4, 16, 16)).findings
    fix = finding.fix
    assert (fix.kind, fix.module, fix.code, fix.validated) == (
        "restride-skip", "downsample.0", "nn.Conv2d(4, 8, kernel_size=1, stride=2, bias=False)", True,
    )
    assert fixed_runs(model, fix, "downsample.0", torch.randn(2, 4, 16, 16)).shape == (2, 8, 8, 8)


def test_restride_skip_resizes_the_norm_after_a_wrong_width_projection():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 8, 3, 1, 1)
            self.downsample = nn.Sequential(nn.Conv2d(4, 6, kernel_size=1, bias=False), nn.BatchNorm2d(6))

        def forward(self, x):
            return self.conv(x) + self.downsample(x)

    finding, = reslint.check(Block(), torch.randn(2, 4, 16, 16)).findings
    assert finding.fix.kind == "restride-skip" and finding.fix.validated
    assert finding.fix.code.splitlines() == [
        "downsample.0 = nn.Conv2d(4, 8, kernel_size=1, bias=False)",
        "downsample.1 = nn.BatchNorm2d(8)",
    ]


def test_resize_transform_when_the_rest_of_the_model_wants_the_skip_width():
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = TokenBlock(16, 64)  # the FFN projects back to 64 instead of 16
            self.norm = nn.LayerNorm(16)

        def forward(self, x):
            return self.norm(self.block(x))

    model = Model()
    finding, = reslint.check(model, torch.randn(2, 5, 16)).findings
    fix = finding.fix
    assert (fix.kind, fix.module, fix.code, fix.validated) == ("resize-transform", "block.mlp.2", "nn.Linear(64, 16)", True)
    assert fixed_runs(model, fix, "block.mlp.2", torch.randn(2, 5, 16)).shape == (2, 5, 16)


def test_a_fix_that_breaks_the_rest_of_the_model_is_not_validated():
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = TokenBlock(16, 64)
            self.trunk = nn.Linear(16, 3)  # wants 16
            self.other = nn.Linear(64, 3)  # wants 64: no single width satisfies both

        def forward(self, x):
            y = self.block(x)
            return self.trunk(y) + self.other(y)

    findings = reslint.check(Model(), torch.randn(2, 16)).findings
    rl001 = [f for f in findings if f.code == "RL001"]
    assert len(rl001) == 1 and rl001[0].fix is not None and not rl001[0].fix.validated


def test_project_transform_when_no_layer_of_the_transform_can_be_resized():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(8, 32, 3, padding=1)
            self.out = nn.Identity()  # its output projection was lost
            self.head = nn.Conv2d(8, 3, 1)  # the rest of the model wants 8 channels: the skip is right

        def forward(self, x):
            B, _, H, W = x.shape
            y = self.conv(x).view(B, 16, 2, H, W).sum(2)  # grouped sum: 32 -> 16 channels
            return self.head(x + self.out(y))

    model = Block()
    finding, = reslint.check(model, torch.randn(2, 8, 8, 8)).findings
    fix = finding.fix
    assert (fix.kind, fix.code, fix.validated) == ("project-transform", "nn.Conv2d(16, 8, kernel_size=1)", True)
    assert fixed_runs(model, fix, "out", torch.randn(2, 8, 8, 8)).shape == (2, 3, 8, 8)
