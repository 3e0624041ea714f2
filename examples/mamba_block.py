"""A pure-PyTorch Mamba-style language model whose last block projects back to the wrong width.

The selective scan is a Python loop over the sequence, which torch.fx cannot trace: reslint records
the model's own run on meta tensors instead (the eager frontend).

    reslint examples/mamba_block.py:MambaLM            # RL001 at `return x + self.out_proj(y)`
    reslint "examples/mamba_block.py:MambaLM(bug=False)" # clean
"""

import torch
import torch.nn.functional as F
from torch import nn


class MambaBlock(nn.Module):
    def __init__(self, dim: int, state: int = 8, expand: int = 2, out_dim: int | None = None):
        super().__init__()
        inner = expand * dim
        self.norm = nn.LayerNorm(dim)
        self.in_proj = nn.Linear(dim, 2 * inner)
        self.conv = nn.Conv1d(inner, inner, 4, padding=3, groups=inner)
        self.x_proj = nn.Linear(inner, 1 + 2 * state)
        self.A_log = nn.Parameter(torch.zeros(inner, state))
        self.out_proj = nn.Linear(inner, out_dim or dim)

    def scan(self, u, delta, B, C):
        A = -torch.exp(self.A_log)
        h = torch.zeros(u.shape[0], u.shape[2], A.shape[1], device=u.device)
        ys = []
        for t in range(u.shape[1]):  # a Python loop over the sequence
            h = torch.exp(delta[:, t, :, None] * A) * h + delta[:, t, :, None] * B[:, t, None, :] * u[:, t, :, None]
            ys.append((h * C[:, t, None, :]).sum(-1))
        return torch.stack(ys, dim=1)

    def forward(self, x):
        u, gate = self.in_proj(self.norm(x)).chunk(2, dim=-1)
        u = F.silu(self.conv(u.transpose(1, 2))[..., : x.shape[1]].transpose(1, 2))
        delta, B, C = self.x_proj(u).split([1, self.A_log.shape[1], self.A_log.shape[1]], dim=-1)
        y = self.scan(u, F.softplus(delta), B, C) * F.silu(gate)
        return x + self.out_proj(y)


class MambaLM(nn.Module):
    def __init__(self, vocab: int = 256, dim: int = 32, depth: int = 3, bug: bool = True):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        widths = [None] * depth
        if bug:
            widths[-1] = 2 * dim  # the last block's out_proj returns the inner width
        self.blocks = nn.ModuleList([MambaBlock(dim, out_dim=w) for w in widths])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)

    def example_inputs(self):
        return (torch.zeros(2, 16, dtype=torch.long),)

    def forward(self, tokens):
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))
