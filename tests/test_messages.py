"""The words findings use: dims named by their role, the whole model's size condition, gates."""

import torch
import torch.nn.functional as F
from torch import nn

import reslint


def only(report, code):
    found = [f for f in report.findings if f.code == code]
    assert len(found) == 1, report.findings
    return found[0]


class CausalConvBlock(nn.Module):
    """A time-series block whose causal conv is not cropped: the sequence grows by 2."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.conv = nn.Conv1d(16, 16, 3, padding=2)

    def forward(self, tokens):
        x = self.embed(tokens)
        return x + self.conv(x.transpose(1, 2)).transpose(1, 2)


def test_sequence_length_mismatch_is_called_a_sequence():
    finding = only(reslint.check(CausalConvBlock(), torch.zeros(2, 20, dtype=torch.long)), "RL001")
    assert "sequence 20→22" in finding.message and "channels" not in finding.message


class StridedBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(16, 32, 3, stride=2, padding=1)

    def forward(self, x):
        return x + self.conv(x)


def test_spatial_mismatch_names_channels_and_stride():
    finding = only(reslint.check(StridedBlock(), torch.randn(2, 16, 8, 8)), "RL001")
    assert "channels 16→32, spatial /2" in finding.message


class ThreeWayCat(nn.Module):
    def __init__(self):
        super().__init__()
        self.same = nn.Conv2d(4, 4, 3, padding=1)
        self.shrinks = nn.Conv2d(4, 4, 3)  # no padding: 8x8 -> 6x6

    def forward(self, x):
        return torch.cat([x, self.same(x), self.shrinks(x)], dim=1)


def test_three_tensor_cat_shows_the_tensor_that_does_not_fit():
    finding = only(reslint.check(ThreeWayCat(), torch.randn(2, 4, 8, 8)), "RL003")
    assert "[2, 4, 6, 6]" in finding.message  # the odd third tensor, not the two that agree
    assert "channels (dim 1)" in finding.message and "spatial 8x8→6x6" in finding.message


class UNet4(nn.Module):
    """Four 2x downsamplings, upsampled back without resizing: H and W must be multiples of 16."""

    def __init__(self, c=2):
        super().__init__()
        self.enc = nn.ModuleList(nn.Conv2d(c if i else 1, c, 3, padding=1) for i in range(4))
        self.mid = nn.Conv2d(c, c, 3, padding=1)
        self.dec = nn.ModuleList(nn.Conv2d(2 * c, c, 3, padding=1) for _ in range(4))

    def forward(self, x):
        skips = []
        for conv in self.enc:
            x = conv(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.mid(x)
        for conv in self.dec:
            x = conv(torch.cat([skips.pop(), F.interpolate(x, scale_factor=2.0)], dim=1))
        return x


def test_rl004_says_the_whole_model_condition_first():
    findings = reslint.check(UNet4(), torch.randn(1, 1, 64, 64), select=["RL004"]).findings
    assert findings and all(f.code == "RL004" for f in findings)
    for finding in findings:
        assert finding.message.index("H and W must be multiples of 16") < finding.message.index("this join")
        assert "mod" not in finding.message


class XceptionEntry(nn.Module):
    def __init__(self, inplace=True):
        super().__init__()
        self.relu = nn.ReLU(inplace=inplace)
        self.sep = nn.Conv2d(8, 16, 3, padding=1)
        self.shortcut = nn.Conv2d(8, 16, 1)

    def forward(self, x):
        out = self.relu(x)  # overwrites x before the shortcut reads it
        out = self.sep(out)
        return out + self.shortcut(x)


def test_rl006_inplace_op_before_the_skip_projection():
    finding = only(reslint.check(XceptionEntry(), torch.randn(2, 8, 8, 8)), "RL006")
    assert "shortcut" in finding.message
    assert reslint.check(XceptionEntry(inplace=False), torch.randn(2, 8, 8, 8)).ok


class InplaceBeforeCat(nn.Module):
    def __init__(self):
        super().__init__()
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        out = self.conv(self.relu(x))
        return torch.cat([x, out], dim=1)


def test_rl006_words_a_cat_as_a_concat():
    finding = only(reslint.check(InplaceBeforeCat(), torch.randn(2, 8, 8, 8)), "RL006")
    assert "concat" in finding.message and "adds" not in finding.message


class Excitation(nn.Module):
    def __init__(self, fuse="add", gate=nn.Sigmoid):
        super().__init__()
        self.fuse = fuse
        layers = [nn.AdaptiveAvgPool2d(1), nn.Conv2d(8, 2, 1), nn.ReLU(), nn.Conv2d(2, 8, 1)]
        self.branch = nn.Sequential(*layers, gate()) if gate else nn.Sequential(*layers)

    def forward(self, x):
        return x + self.branch(x) if self.fuse == "add" else x * self.branch(x)


def test_gate_added_instead_of_multiplied():
    x = torch.randn(2, 8, 8, 8)
    for gate in (nn.Sigmoid, nn.Hardsigmoid):
        finding = only(reslint.check(Excitation("add", gate), x), "RL002")
        assert "gate" in finding.message
    assert reslint.check(Excitation("mul"), x).ok  # squeeze-and-excitation as written
    assert reslint.check(Excitation("add", gate=None), x).ok  # GCNet's channel_add: a context transform


class WrongWidth(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 12, 3, padding=1)
        self.b = nn.Conv2d(8, 4, 3)

    def forward(self, x):
        return self.b(self.a(x))


def test_rl000_keeps_torchs_explanation():
    finding = only(reslint.check(WrongWidth(), torch.randn(2, 3, 8, 8)), "RL000")
    assert "expected input[2, 12, 8, 8] to have 8 channels, but got 12 channels instead" in finding.message


def test_broadcast_arithmetic_without_weights_is_not_a_residual():
    """A MoE router's position arithmetic broadcasts a reduction on purpose: no weighted layer, no RL002."""

    class Router(nn.Module):
        def __init__(self):
            super().__init__()
            self.gate = nn.Linear(16, 4)

        def forward(self, x):
            gates = self.gate(x).softmax(-1)
            position = gates.cumsum(-2) + gates.sum(-2, keepdim=True)
            return x * position.mean(-1, keepdim=True)

    report = reslint.check(Router(), torch.empty(2, 8, 16))
    assert report.findings == []
