"""One root cause, one finding: what fails downstream only because of it is a note on it.

Each model has one bug (a missing permute back, an uncropped causal conv, a conv that lost its
padding, a window reverse with swapped dims) followed by blocks that are fine; reslint must report
the root at its line and nothing after it, with the later failures it would cause as its
`consequences`. Independent bugs, even on the same line in several blocks, each stay findings.
"""

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import reslint

SOURCE = open(__file__).read().splitlines()


def line_of(marker: str) -> int:
    """The line of this file that ends with the comment `# <marker>`."""
    hits = [i for i, text in enumerate(SOURCE, 1) if text.rstrip().endswith(f"# {marker}")]
    assert len(hits) == 1, marker
    return hits[0]


def findings(model, example, frontend="auto"):
    return reslint.check(model, example, frontend=frontend).findings


# -- a ConvNeXt-style stage: one block forgets to permute back to channels-first ------------------------


class ChannelsLastBlock(nn.Module):
    def __init__(self, dim, forget_permute=False):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.up = nn.Linear(dim, 4 * dim)
        self.down = nn.Linear(4 * dim, dim)
        self.forget_permute = forget_permute

    def forward(self, x):
        shortcut = x
        x = self.dwconv(x).permute(0, 2, 3, 1)
        x = self.down(F.gelu(self.up(self.norm(x))))
        if not self.forget_permute:
            x = x.permute(0, 3, 1, 2)
        return shortcut + x  # convnext add


class ChannelsLastStage(nn.Module):
    def __init__(self, broken=(1,), dim=16):
        super().__init__()
        self.stem = nn.Conv2d(3, dim, 4, stride=4)
        self.blocks = nn.Sequential(*[ChannelsLastBlock(dim, i in broken) for i in range(3)])
        self.head = nn.Linear(dim, 10)

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)).mean((2, 3)))


class LayerScaleBlock(nn.Module):
    """The permute back is missing before a layer scale written channels-first (as timm's is)."""

    def __init__(self, dim, forget_permute=False):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.gamma = nn.Parameter(torch.ones(dim))
        self.forget_permute = forget_permute

    def forward(self, x):
        shortcut = x
        x = self.mlp(self.norm(self.dwconv(x).permute(0, 2, 3, 1)))
        if not self.forget_permute:
            x = x.permute(0, 3, 1, 2)
        x = x.mul(self.gamma.reshape(1, -1, 1, 1))  # layer scale
        return x + shortcut


class LayerScaleStage(nn.Module):
    def __init__(self, broken=(1,), dim=16):
        super().__init__()
        self.stem = nn.Conv2d(3, dim, 4, stride=4)
        self.blocks = nn.Sequential(*[LayerScaleBlock(dim, i in broken) for i in range(3)])

    def forward(self, x):
        return self.blocks(self.stem(x))


class NormFirstBlock(nn.Module):
    """Forgets the permute *to* channels-last: the LayerNorm gets [N, C, H, W]."""

    def __init__(self, dim, broken=False):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, dim)
        self.broken = broken

    def forward(self, x):
        y = x if self.broken else x.permute(0, 2, 3, 1)
        y = self.norm(y)  # norm first
        return x + self.fc(y).permute(0, 3, 1, 2)


class NormFirstStage(nn.Module):
    def __init__(self, dim=16):
        super().__init__()
        self.blocks = nn.Sequential(NormFirstBlock(dim), NormFirstBlock(dim, broken=True), NormFirstBlock(dim))

    def forward(self, x):
        return self.blocks(x)


# -- a Mamba-style block: the causal conv's output is not cropped to the sequence length ----------------


class GatedConvBlock(nn.Module):
    def __init__(self, d=16, k=4, crop=True):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.in_proj = nn.Linear(d, 4 * d)
        self.conv = nn.Conv1d(2 * d, 2 * d, k, groups=2 * d, padding=k - 1)
        self.out_proj = nn.Linear(2 * d, d)
        self.crop = crop

    def forward(self, x):
        length = x.shape[1]
        h, z = self.in_proj(self.norm(x)).chunk(2, dim=-1)
        h = self.conv(h.transpose(1, 2))
        if self.crop:
            h = h[..., :length]
        y = F.silu(h.transpose(1, 2)) * F.silu(z)  # gate
        return x + self.out_proj(y)  # mamba add


class GatedConvLM(nn.Module):
    def __init__(self, broken=(1,), d=16):
        super().__init__()
        self.embed = nn.Embedding(50, d)
        self.layers = nn.ModuleList([GatedConvBlock(d, crop=i not in broken) for i in range(3)])
        self.head = nn.Linear(d, 50)

    def forward(self, ids):
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


# -- a DenseNet-style block of 4 layers: one conv lost padding=1 -----------------------------------------


class DenseLayer(nn.Module):
    def __init__(self, cin, growth, padding=1):
        super().__init__()
        self.bn = nn.BatchNorm2d(cin)
        self.conv = nn.Conv2d(cin, growth, 3, padding=padding, bias=False)

    def forward(self, x):
        return torch.cat([x, self.conv(F.relu(self.bn(x)))], 1)  # dense cat


class DenseStack(nn.Module):
    def __init__(self, broken=(1,), c=8, growth=4):
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.block = nn.Sequential(*[DenseLayer(c + i * growth, growth, 0 if i in broken else 1) for i in range(4)])
        self.fuse = nn.Conv2d(c + 4 * growth, c, 1)  # a residual dense block: fused back onto its input

    def forward(self, x):
        x = self.stem(x)
        return x + self.fuse(self.block(x))


# -- a Swin-style stage (channels-last, padded windows): one block reverses with H and W swapped ---------


def window_partition(x, ws):
    B, H, W, C = x.shape
    x = x.view(B, H // ws, ws, W // ws, ws, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, ws, ws, C)


def window_reverse(windows, ws, H, W):
    C = windows.shape[-1]
    B = windows.shape[0] // ((H // ws) * (W // ws))
    x = windows.view(B, H // ws, W // ws, ws, ws, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(B, H, W, C)


class WindowBlock(nn.Module):
    def __init__(self, dim, ws, swap=False):
        super().__init__()
        self.ws, self.swap = ws, swap
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x):
        B, H, W, C = x.shape
        shortcut = x
        pad_h, pad_w = (-H) % self.ws, (-W) % self.ws
        x = F.pad(self.norm1(x), (0, 0, 0, pad_w, 0, pad_h))
        Hp, Wp = H + pad_h, W + pad_w
        w = window_partition(x, self.ws).view(-1, self.ws * self.ws, C)
        q, k, v = self.qkv(w).chunk(3, dim=-1)
        w = self.proj(F.scaled_dot_product_attention(q, k, v)).view(-1, self.ws, self.ws, C)
        x = window_reverse(w, self.ws, Wp, Hp) if self.swap else window_reverse(w, self.ws, Hp, Wp)
        x = shortcut + x[:, :H, :W, :]  # swin add
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """Swin v1's: reads the stage's declared resolution, not the tensor's."""

    def __init__(self, dim, resolution):
        super().__init__()
        self.resolution = resolution
        self.reduction = nn.Linear(4 * dim, 2 * dim)

    def forward(self, x):
        H, W = self.resolution
        B, C = x.shape[0], x.shape[-1]
        x = x.reshape(B, H // 2, 2, W // 2, 2, C).permute(0, 1, 3, 4, 2, 5).flatten(3)
        return self.reduction(x)


class WindowStage(nn.Module):
    def __init__(self, broken=(1,), dim=16, ws=4, size=(8, 12)):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, 4, stride=4)
        self.blocks = nn.Sequential(*[WindowBlock(dim, ws, i in broken) for i in range(4)])
        self.merge = PatchMerging(dim, size)

    def forward(self, x):
        return self.merge(self.blocks(self.patch(x).permute(0, 2, 3, 1)))


# -- the tests ---------------------------------------------------------------------------------------


CASES = {
    "convnext": (ChannelsLastStage, lambda: torch.empty(1, 3, 32, 32), "RL001", "convnext add"),
    "layer-scale": (LayerScaleStage, lambda: torch.empty(1, 3, 32, 32), "RL000", "layer scale"),
    "mamba": (GatedConvLM, lambda: torch.zeros(2, 12, dtype=torch.long), "RL000", "gate"),
    "densenet": (DenseStack, lambda: torch.empty(1, 3, 16, 16), "RL003", "dense cat"),
    "swin": (WindowStage, lambda: torch.empty(1, 3, 32, 48), "RL001", "swin add"),
}


@pytest.mark.parametrize("name", CASES)
def test_one_bug_is_one_finding_with_its_consequences(name):
    model, example, code, marker = CASES[name]
    found = findings(model(), example())
    assert [(f.code, f.line) for f in found] == [(code, line_of(marker))]
    assert found[0].consequences, "the later failures it causes are a note on it"


def test_consequences_are_in_the_json():
    report = reslint.check(ChannelsLastStage(), torch.empty(1, 3, 32, 32))
    finding, = json.loads(json.dumps(report.to_json()))["findings"]
    assert finding["consequences"] and all(isinstance(c, str) for c in finding["consequences"])
    assert {"code", "path", "line", "shapes", "fix"} <= set(finding)


def test_a_layer_given_the_other_layout_is_the_only_finding():
    found = findings(NormFirstStage(), torch.empty(1, 16, 8, 8))
    assert [(f.code, f.line) for f in found] == [("RL000", line_of("norm first"))]


@pytest.mark.parametrize("name, broken", [
    ("convnext", (0, 2)), ("layer-scale", (0, 1, 2)), ("mamba", (0, 2)), ("densenet", (0, 2)), ("swin", (0, 1, 2, 3)),
])
def test_independent_bugs_each_stay_findings(name, broken):
    model, example, code, marker = CASES[name]
    found = findings(model(broken=broken), example())
    # One finding per source line, with one instance per broken block.
    assert [(f.code, f.line) for f in found] == [(code, line_of(marker))]
    assert len(found[0].instances) == len(broken)


@pytest.mark.parametrize("name", CASES)
def test_the_eager_frontend_agrees(name):
    model, example, code, marker = CASES[name]
    found = findings(model(), example(), frontend="eager")
    assert [(f.code, f.line) for f in found] == [(code, line_of(marker))]


@pytest.mark.parametrize("name", CASES)
def test_the_fixed_models_are_clean(name):
    model, example, _, _ = CASES[name]
    assert not findings(model(broken=()), example())
