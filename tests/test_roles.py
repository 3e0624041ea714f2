"""Dimension roles: what each dim of each tensor is, from the layers around it."""

import torch
import torch.nn.functional as F
from torch import nn

from reslint.roles import roles_of
from reslint.trace import trace


def roles_by_name(model, *inputs, frontend="fx"):
    propagation = trace(model, inputs, frontend).propagation
    return {node.name: roles_of(propagation, node) for node in propagation.nodes if roles_of(propagation, node)}


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        y = F.relu(self.bn(self.conv(x)))
        return self.fc(torch.flatten(y, 1))


def test_conv_net():
    roles = roles_by_name(ConvNet(), torch.randn(2, 3, 8, 8))
    assert roles["x"] == roles["conv"] == roles["relu"] == ("batch", "channels", "spatial", "spatial")
    assert roles["flatten"] == roles["fc"] == ("batch", "features")


class TokenBlock(nn.Module):
    """Embedding, attention heads split by reshape and joined back, a causal Conv1d over time."""

    def __init__(self, heads=4):
        super().__init__()
        self.heads = heads
        self.embed = nn.Embedding(100, 16)
        self.qkv = nn.Linear(16, 48)
        self.conv = nn.Conv1d(16, 16, 3, padding=2)

    def forward(self, tokens):
        x = self.embed(tokens)
        B, T, D = x.shape
        q, k, v = self.qkv(x).reshape(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v)
        merged = attended.transpose(1, 2).reshape(B, T, D)
        timewise = self.conv(merged.transpose(1, 2))[..., :T]
        return x + timewise.transpose(1, 2)


def test_token_transformer_heads_and_time():
    for frontend in ("fx", "eager"):
        roles = roles_by_name(TokenBlock(), torch.zeros(2, 12, dtype=torch.long), frontend=frontend)
        by_shape = {tuple(r) for r in roles.values()}
        assert ("batch", "sequence") in by_shape  # the token ids
        assert ("batch", "sequence", "features") in by_shape  # embedded, merged back, the residual add
        assert ("batch", "heads", "sequence", "features") in by_shape  # q, k, v and the attention output
        assert ("batch", "sequence", "heads", "features") in by_shape  # transposed back before the merge
        assert ("batch", "channels", "sequence") in by_shape  # the Conv1d over time
        assert ("batch", "sequence", "unknown", "heads", "features") in by_shape  # the fused qkv split


class PatchEmbed(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Conv2d(3, 16, 4, stride=4)
        self.norm = nn.LayerNorm(16)

    def forward(self, x):
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


def test_vit_patch_embed_flatten_transpose():
    roles = roles_by_name(PatchEmbed(), torch.randn(2, 3, 16, 16))
    assert roles["flatten"] == ("batch", "channels", "sequence")  # the spatial grid flattened into tokens
    assert roles["transpose"] == roles["norm"] == ("batch", "sequence", "features")


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim=8):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.pw = nn.Linear(dim, 4 * dim)
        self.pw2 = nn.Linear(4 * dim, dim)

    def forward(self, x):
        y = self.dwconv(x).permute(0, 2, 3, 1)  # channels-last
        y = self.pw2(F.gelu(self.pw(self.norm(y))))
        return x + y.permute(0, 3, 1, 2)  # and back


def test_convnext_permute_to_channels_last_and_back():
    roles = roles_by_name(ConvNeXtBlock(), torch.randn(2, 8, 10, 12))
    assert roles["permute"] == roles["pw"] == ("batch", "spatial", "spatial", "features")
    assert roles["permute_1"][0] == "batch" and roles["permute_1"][2:] == ("spatial", "spatial")
    assert roles["permute_1"][1] in ("channels", "features")
    assert roles["add"] == ("batch", "channels", "spatial", "spatial")


class Windows(nn.Module):
    """Swin-style window partition: batch x windows, then a token sequence per window."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):  # [B, H, W, C]
        B, H, W, C = x.shape
        w = x.view(B, H // 4, 4, W // 4, 4, C).permute(0, 1, 3, 2, 4, 5).reshape(-1, 16, C)
        return self.fc(w)


def test_window_partition():
    roles = roles_by_name(Windows(), torch.randn(2, 8, 8, 8))
    assert roles["reshape"] == ("batch", "sequence", "features")


def test_multihead_attention_module():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(16, 4)  # sequence-first

        def forward(self, x):
            return x + self.attn(x, x, x)[0]

    roles = roles_by_name(Block(), torch.randn(7, 2, 16))
    assert roles["add"] == ("sequence", "batch", "features")


def test_roles_are_cached_on_the_propagation():
    propagation = trace(ConvNet(), (torch.randn(2, 3, 8, 8),), "fx").propagation
    node = next(n for n in propagation.nodes if n.name == "conv")
    assert roles_of(propagation, node) == ("batch", "channels", "spatial", "spatial")
    cached = propagation._reslint_roles
    roles_of(propagation, node)
    assert propagation._reslint_roles is cached
