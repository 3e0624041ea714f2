"""RL004: skip joins that line up only for some input sizes (not selected by default).

## What it does
Checks whether the model's skip joins still line up when the spatial size (or the sequence length)
of the input changes, and states the condition for the whole model first, in one sentence, then what
each join needs: "H and W must be multiples of 16; H=100 fails at up1 (Up)". Select it with
`--select RL004`; it re-propagates the model once per residue of the input size (see below).

Strided layers map a size H to floor((H + 2p - d(k - 1) - 1) / s) + 1, and upsampling multiplies it, so
whether a join lines up depends only on H modulo the model's total downsampling factor S (for H at
least the size checked). reslint therefore tries every residue: H + 1 ... H + S - 1, each spatial
(or sequence) dim in turn. This sweep is complete for the strides involved, not a sample. The sizes
that work are then said as "multiples of k" when that is exact, else as the sizes themselves.

## Known problems
Dims are swept one at a time, the others kept at the example's size; sizes below the example's are
not tried.

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
SIZE_ROLES = ("spatial", "sequence")


def check(analysis) -> Iterator[Finding]:
    if not analysis.inputs or not isinstance(analysis.inputs[0], torch.Tensor):
        return
    base = analysis.inputs[0]
    dims = swept_dims(analysis)
    period = downsampling_factor(analysis, dims)
    if period < 2 or not dims:
        return
    failing: dict[tuple, dict] = {}  # join key -> {"join": join, "dims": {dim: [bad sizes]}}
    tried: dict[int, list[int]] = {}  # dim -> sizes the model ran at (outside its joins)
    for dim in dims:
        for step in range(period):
            shape = list(base.shape)
            shape[dim] += step
            other = (torch.empty(shape, dtype=base.dtype, device="meta"), *analysis.inputs[1:])
            if step == 0:
                tried.setdefault(dim, []).append(shape[dim])  # the example itself: its own failures are RL001/RL003's
                continue
            try:
                joins = analysis.failing_joins_at(other)
            except Exception:
                continue  # the model rejects this size outside its joins (a fixed-size head): not RL004's business
            tried.setdefault(dim, []).append(shape[dim])
            for join in joins:
                entry = failing.setdefault(_key(join.node), {"join": join, "dims": {}})
                entry["dims"].setdefault(dim, []).append(shape[dim])
    by_key = {_key(j.node): j for j in analysis.joins}
    broken_here = {_key(j.node) for j in analysis.joins if j.node in analysis.propagation.failures}
    reported = {key: entry for key, entry in failing.items() if key not in broken_here}  # broken here: RL001/RL003
    if not reported:
        return
    names = dim_names(analysis, dims)
    whole = whole_model_sentence(failing, tried, names, period)
    for key, entry in reported.items():
        node = by_key[key].node if key in by_key else entry["join"].node
        here = conditions({d: tried[d] for d in entry["dims"]}, entry["dims"], names, period, verb="are")
        message = f"skip joins line up only for some input sizes: {whole}; this join lines up when {here}"
        yield analysis.finding("RL004", node, message, {"input": list(base.shape)})


def swept_dims(analysis) -> list[int]:
    """The input's spatial and sequence dims (by role), else every dim after batch and channels."""
    base = analysis.inputs[0]
    roles = None
    try:
        from reslint.roles import roles_of

        placeholder = next(n for n in analysis.propagation.nodes if n.op == "placeholder")
        roles = roles_of(analysis.propagation, placeholder)
    except Exception:
        roles = None
    if roles:
        dims = [d for d, role in enumerate(roles) if role in SIZE_ROLES]
        if dims:
            return dims
    return list(range(2, base.dim())) if base.dim() >= 3 else []


def dim_names(analysis, dims: list[int]) -> dict[int, str]:
    """'H', 'W' (or 'D', 'H', 'W'; 'L' for one spatial dim), 'the sequence length' for tokens."""
    base = analysis.inputs[0]
    if len(dims) == 1 and base.dim() == 2:
        return {dims[0]: "the sequence length"}
    letters = {1: ["L"], 2: ["H", "W"], 3: ["D", "H", "W"]}.get(len(dims))
    return {d: (letters[i] if letters else f"dim {d}") for i, d in enumerate(dims)}


def whole_model_sentence(failing: dict, tried: dict[int, list[int]], names: dict[int, str], period: int) -> str:
    """'H and W must be multiples of 16; H=100 fails at up1 (Up)': every join's failures together."""
    bad: dict[int, list[int]] = {}
    for entry in failing.values():
        for dim, sizes in entry["dims"].items():
            bad.setdefault(dim, []).extend(sizes)
    sentence = conditions({d: tried[d] for d in bad}, bad, names, period)
    dim, sizes = min(bad.items())
    first = min(sizes)
    at = next(e["join"].node for e in _in_graph_order(failing) if first in e["dims"].get(dim, ()))
    return f"{sentence} ({names[dim]}={first} fails at {_place(at)})"


def conditions(tried: dict[int, list[int]], bad: dict[int, list[int]], names: dict[int, str], period: int, verb: str = "must be") -> str:
    """The dims' conditions, dims that share one said together: 'H and W must be multiples of 4'."""
    said: dict[str, list[str]] = {}
    for dim in sorted(bad):
        said.setdefault(condition(tried[dim], set(bad[dim]), period), []).append(names[dim])
    return "; ".join(f"{' and '.join(dims)} {verb} {text}" for text, dims in said.items())


def _place(node) -> str:
    """'up1 (Up), line 40': where a join is, for a reader who has the source open."""
    source = node.meta.get("source")
    line = f"line {source.line}" if source else node.name
    module = node.meta.get("module_path")
    return f"{where(node)}, {line}" if module else f"{line} in {where(node)}"


def condition(sizes: list[int], bad: set[int], period: int) -> str:
    """'multiples of 16' when exactly the multiples work, '1 more than a multiple of 8'; else the
    sizes that work, shortened: '64, 65, 68, 69, … (0 or 1 more than a multiple of 4)'."""
    works = [size for size in sorted(sizes) if size not in bad]
    if not works:
        return "other sizes (none of those tried works)"
    for step in (d for d in range(2, period + 1) if period % d == 0):
        residues = sorted({size % step for size in works})
        if not all((size % step in residues) == (size not in bad) for size in sizes):
            continue
        if residues == [0]:
            return f"multiples of {step}"
        more = " or ".join(map(str, residues))
        if len(residues) == 1:
            return f"{more} more than a multiple of {step}"
        shown = sorted({size + k * step for size in works for k in (0, 1)})[:4]
        return f"{', '.join(map(str, shown))}, … ({more} more than a multiple of {step})"
    shown = sorted({size + k * period for size in works for k in (0, 1)})[:4]
    return f"{', '.join(map(str, shown))}, … (repeating every {period})"


def downsampling_factor(analysis, dims: list[int] | None = None) -> int:
    """How much the model shrinks the swept dims at most: size / (smallest size seen), capped.

    Sizes of 1 (a global pool) say nothing about the strides, and are not counted."""
    base = analysis.inputs[0]
    dims = dims if dims is not None else list(range(2, base.dim()))
    if not dims:
        return 1
    smallest = min(
        (
            min(v.shape[d] for d in dims if v.shape[d] > 1)
            for v in analysis.propagation.values.values()
            if isinstance(v, torch.Tensor) and v.dim() == base.dim() and v.shape[0] == base.shape[0]
            and any(v.shape[d] > 1 for d in dims)
        ),
        default=None,
    )
    if not smallest:
        return 1
    factor = min(base.shape[d] for d in dims) / smallest
    return min(MAX_PERIOD, 2 ** max(0, round(math.log2(factor))) if factor >= 1.5 else 1)


def _in_graph_order(failing: dict) -> list[dict]:
    def position(entry):
        node = entry["join"].node
        return list(node.graph.nodes).index(node) if node.graph is not None else 0
    return sorted(failing.values(), key=position)


def _key(node) -> tuple:
    source = node.meta.get("source")
    return (node.meta.get("module_path"), source.path if source else None, source.line if source else None, source.column if source else None)
