"""RL004: skip joins that line up only for some input sizes (not selected by default).

## What it does
Checks whether the model's skip joins still line up when the spatial size of the input changes, and
states the constraint in words and numbers: "H and W must be multiples of 16". Select it with
`--select RL004`; it re-propagates the model once per residue of the input size (see below).

Strided layers map a size H to floor((H + 2p - d(k - 1) - 1) / s) + 1, and upsampling multiplies it, so
whether a join lines up depends only on H modulo the model's total downsampling factor S (for H at
least the size checked). reslint therefore tries every residue: H + 1 ... H + S - 1, each spatial
dim in turn. This sweep is complete for the strides involved, not a sample.

## Why is this bad?
A U-Net that works on 256x256 crops crashes on the user's 250x250 images with "Sizes of tensors must
match except in dimension 1", long after the model was written and tested.

## Example
```python
def forward(self, x):
    skip = self.enc(x)
    return self.dec(torch.cat([skip, self.up(self.down(skip))], dim=1))  # odd H fails
```

## Use instead
Resize to the skip before joining (`F.interpolate(up, size=skip.shape[-2:])`) or pad, as many U-Net
implementations do; or document and check the constraint at the model's entry.
"""

from __future__ import annotations

import math
from typing import Iterator

import torch

from reslint.findings import Finding
from reslint.rules.shapes import where

MAX_PERIOD = 64


def check(analysis) -> Iterator[Finding]:
    if not analysis.inputs or not isinstance(analysis.inputs[0], torch.Tensor) or analysis.inputs[0].dim() < 3:
        return
    base = analysis.inputs[0]
    period = downsampling_factor(analysis)
    if period < 2:
        return
    failing: dict[tuple, dict] = {}  # join key -> {"join": join, "dims": {dim: [bad sizes]}}
    for dim in range(2, base.dim()):
        for step in range(1, period):
            shape = list(base.shape)
            shape[dim] += step
            other = (torch.empty(shape, dtype=base.dtype, device="meta"), *analysis.inputs[1:])
            try:
                joins = analysis.failing_joins_at(other)
            except Exception:
                continue  # the model rejects this size outside its joins (a fixed-size head): not RL004's business
            for join in joins:
                entry = failing.setdefault(_key(join.node), {"join": join, "dims": {}})
                entry["dims"].setdefault(dim, []).append(shape[dim])
    by_key = {_key(j.node): j for j in analysis.joins}
    broken_here = {_key(j.node) for j in analysis.joins if j.node in analysis.propagation.failures}
    for key, entry in failing.items():
        if key in broken_here:  # fails at the given size too: RL001/RL003 report it
            continue
        node = by_key[key].node if key in by_key else entry["join"].node
        yield analysis.finding("RL004", node, _message(base, period, entry["dims"], node), {"input": list(base.shape)})


def downsampling_factor(analysis) -> int:
    """How much the model shrinks the input's spatial dims at most: H / (smallest H seen), capped."""
    base = analysis.inputs[0]
    smallest = min(
        (
            min(v.shape[d] for d in range(2, base.dim()))
            for v in analysis.propagation.values.values()
            if isinstance(v, torch.Tensor) and v.dim() == base.dim() and v.shape[0] == base.shape[0]
        ),
        default=None,
    )
    if not smallest:
        return 1
    factor = min(base.shape[d] for d in range(2, base.dim())) / smallest
    return min(MAX_PERIOD, 2 ** max(0, round(math.log2(factor))) if factor >= 1.5 else 1)


def _message(base: torch.Tensor, period: int, dims: dict[int, list[int]], node) -> str:
    names = {2: "L"} if base.dim() == 3 else ({2: "H", 3: "W"} if base.dim() == 4 else {2: "D", 3: "H", 4: "W"})
    rules: dict[str, list[str]] = {}  # constraint -> the dims it applies to
    for dim, bad in sorted(dims.items()):
        sizes = range(base.shape[dim], base.shape[dim] + period)
        multiple = _multiple(sizes, set(bad), period)
        residues = sorted({size % period for size in sizes if size not in bad})
        text = f"multiples of {multiple}" if multiple else f"≡ {' or '.join(map(str, residues))} (mod {period})"
        rules.setdefault(text, []).append(names.get(dim, f"dim {dim}"))
    clauses = "; ".join(f"{' and '.join(dim_names)} must be {text}" for text, dim_names in rules.items())
    first_dim, first_bad = min(dims.items())
    module = where(node)
    return (
        f"skip join in {module} lines up only for some input sizes: {clauses} "
        f"(the model downsamples up to {period}x); {names.get(first_dim, first_dim)}={first_bad[0]} fails here"
    )


def _multiple(sizes: range, bad: set[int], period: int) -> int | None:
    """m such that exactly the multiples of m line up, if the sweep shows that pattern."""
    for multiple in (d for d in range(2, period + 1) if period % d == 0):
        if all((size % multiple == 0) == (size not in bad) for size in sizes):
            return multiple
    return None


def _key(node) -> tuple:
    source = node.meta.get("source")
    return (node.meta.get("module_path"), source.path if source else None, source.line if source else None, source.column if source else None)
