"""Each rule fires on its bug, at the marked line, and is silent on the correct twin."""

import pytest
import torch

import reslint
from conftest import expected_lines


def load(path, name="Net", **kwargs):
    from reslint.load import build, import_source
    from reslint.target import TargetSpec

    spec = TargetSpec(source=path, name=name, kwargs=kwargs, text=f"{path}:{name}")
    return build(getattr(import_source(spec), name), spec, spec.text).module


def lint(path, example, select=None, **kwargs):
    return reslint.check(load(path, **kwargs), example, select=select)


def codes_and_lines(report):
    return sorted((f.code, f.line) for f in report.findings)


TRANSFORMER = '''
import torch
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim, heads, out_dim):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, out_dim)

    def forward(self, x):
        B, T, D = x.shape
        q, k, v = self.qkv(x).reshape(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        y = torch.softmax(q @ k.transpose(-2, -1) / (D // self.heads) ** 0.5, dim=-1) @ v
        return self.proj(y.transpose(1, 2).reshape(B, T, D))


class Block(nn.Module):
    def __init__(self, dim, attn_out, ffn_out):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, 4, attn_out)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, ffn_out))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))  # expect: attention
        x = x + self.ffn(self.norm2(x))  # expect: ffn
        return x


class Net(nn.Module):
    def __init__(self, attn_out=32, ffn_out=32):
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(1, 8, 32))
        self.blocks = nn.Sequential(Block(32, attn_out, ffn_out), Block(32, 32, 32))
        self.norm = nn.LayerNorm(32)

    def forward(self, x):
        return self.norm(self.blocks(x + self.pos))
'''


@pytest.mark.parametrize("broken, line_marker", [({"attn_out": 48}, "attention"), ({"ffn_out": 64}, "ffn")])
def test_transformer_both_adds(model_file, broken, line_marker):
    path = model_file(TRANSFORMER)
    report = lint(path, torch.randn(2, 8, 32), **broken)
    finding, = report.findings
    assert (finding.code, finding.line, finding.module) == ("RL001", expected_lines(path, line_marker)[0], "blocks.0")
    assert finding.fix.kind == "resize-transform" and finding.fix.validated
    clean = lint(path, torch.randn(2, 8, 32))
    assert clean.ok and clean.targets[0].joins == 4  # two per block; the positional embedding is not a join


BROADCAST = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, pooled=True):
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1) if pooled else nn.Identity()
        self.scale = nn.Parameter(torch.ones(1, 8, 1, 1))
        self.context = nn.Sequential(nn.Conv2d(8, 4, 1), nn.ReLU(), nn.Conv2d(4, 8, 1))

    def forward(self, x):
        x = x * self.scale + 1.0  # a parameter and a constant: not skips
        x = x + self.context(x.mean((2, 3), keepdim=True))  # global context: broadcasts on purpose
        return x + self.pool(self.conv(x))  # expect: RL002
'''


def test_rl002_broadcast_add(model_file):
    path = model_file(BROADCAST)
    report = lint(path, torch.randn(2, 8, 8, 8))
    finding, = report.findings
    assert (finding.code, finding.line) == ("RL002", expected_lines(path, "RL002")[0])
    assert finding.shapes == {"skip": [2, 8, 8, 8], "transform": [2, 8, 1, 1]}
    assert (finding.fix.kind, finding.fix.code, finding.fix.validated) == ("remove-reduction", "pool = nn.Identity()", True)
    assert lint(path, torch.randn(2, 8, 8, 8), pooled=False).ok


def test_rl002_feature_width_one():
    class Head(torch.nn.Module):
        def __init__(self, out=1):
            super().__init__()
            self.fc = torch.nn.Linear(16, out)

        def forward(self, x):
            return x + self.fc(torch.relu(x))

    finding, = reslint.check(Head(), torch.randn(4, 16)).findings
    assert finding.code == "RL002" and (finding.fix.kind, finding.fix.code) == ("resize-transform", "nn.Linear(16, 16)")
    assert reslint.check(Head(16), torch.randn(4, 16)).ok


def test_rl003_densenet_stray_stride_names_the_layer():
    model = load("examples/densenet_stray_stride.py", "DenseNet")
    finding, = reslint.check(model, torch.randn(2, 3, 32, 32)).findings
    assert (finding.code, finding.module) == ("RL003", "block.2")
    assert (finding.fix.kind, finding.fix.module, finding.fix.validated) == ("resize-transform", "block.2.conv", True)
    assert finding.fix.code == "nn.Conv2d(48, 12, kernel_size=3, padding=1, bias=False)"
    assert reslint.check(load("examples/densenet_stray_stride.py", "DenseNet", stray_stride=1), torch.randn(2, 3, 32, 32)).ok


def test_rl003_unet_resize_to_skip_and_rl004_constraint():
    unet = load("examples/unet_odd_sizes.py", "UNet")
    finding, = reslint.check(unet, torch.randn(1, 3, 66, 66)).findings
    assert finding.code == "RL003" and finding.shapes == {"skip": [1, 16, 33, 33], "transform": [1, 16, 32, 32]}
    assert finding.fix.kind == "resize-to-skip" and finding.fix.validated
    assert finding.fix.code == "d2 = self.dec2(torch.cat([e2, F.interpolate(self.up(self.up2, b, e2), size=e2.shape[2:])], dim=1))"

    assert reslint.check(unet, torch.randn(1, 3, 64, 64)).ok  # RL004 is not selected by default
    constraints = reslint.check(unet, torch.randn(1, 3, 64, 64), select=["RL004"]).findings
    assert [f.code for f in constraints] == ["RL004", "RL004"]
    assert all("H and W must be multiples of 4" in f.message for f in constraints)  # the whole model's condition
    assert "H and W are 64, 65, 68, 69" in constraints[0].message  # then the join's own
    assert "H and W are multiples of 2" in constraints[1].message

    resizing = load("examples/unet_odd_sizes.py", "UNet", resize=True)
    assert reslint.check(resizing, torch.randn(1, 3, 64, 64), select=["RL"]).ok


def test_rl005_plain_stack_threshold():
    from torch import nn

    def plain(weighted):
        layers = [nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()]
        for _ in range(weighted - 2):
            layers += [nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()]
        return nn.Sequential(*layers, nn.Flatten(), nn.Linear(8 * 8 * 8, 10))

    assert reslint.check(plain(19), torch.randn(2, 3, 8, 8)).ok
    finding, = reslint.check(plain(20), torch.randn(2, 3, 8, 8)).findings
    assert finding.code == "RL005" and "20 weighted layers" in finding.message
    assert finding.fix.kind == "add-residuals" and finding.fix.validated


def test_rl005_vgg19_passes():
    torchvision = pytest.importorskip("torchvision")
    assert reslint.check(torchvision.models.vgg19(), torch.randn(1, 3, 224, 224)).ok


INPLACE = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, inplace=True):
        super().__init__()
        self.relu = nn.ReLU(inplace=inplace)
        self.conv = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        out = self.relu(x)  # expect: RL006
        out = self.conv(out)
        return out + x
'''


def test_rl006_inplace_op_overwrites_the_skip(model_file):
    path = model_file(INPLACE)
    finding, = lint(path, torch.randn(2, 8, 8, 8)).findings
    assert (finding.code, finding.line) == ("RL006", expected_lines(path, "RL006")[0])
    assert "line 15" in finding.message  # names the join
    assert lint(path, torch.randn(2, 8, 8, 8), inplace=False).ok


def test_rl006_augmented_assignment_on_an_alias():
    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            identity = x
            x += self.conv(x)
            return x + identity

    finding, = reslint.check(Block(), torch.randn(2, 4, 8, 8)).findings
    assert finding.code == "RL006"


def test_rule_selection():
    model = load("examples/densenet_stray_stride.py", "DenseNet")
    assert [f.code for f in reslint.check(model, torch.randn(2, 3, 32, 32), select=["RL00"]).findings] == ["RL003"]
    assert reslint.check(model, torch.randn(2, 3, 32, 32), ignore=["RL003"]).findings == []
