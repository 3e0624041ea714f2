"""RL003: concatenated skip with mismatched non-concat dims.

## What it does
Finds skip connections joined by concatenation (`torch.cat([skip, up], dim=1)`, U-Net decoders,
DenseNet layers) where the tensors differ in a dimension other than the one they are joined along.
A DenseNet layer with a wrong output size is concatenated again by every later layer of its block: it
is reported once, at the first concat.

## Why is this bad?
`torch.cat` fails with "Sizes of tensors must match except in dimension 1". In a U-Net this happens
only for input sizes that the encoder rounds down (an odd size before a stride-2 layer), so the model
works in the tutorial and crashes on the user's data.

## Example
```python
def forward(self, x):
    skip = self.enc(x)                    # [B, 64, 75, 75]
    up = self.up(self.down(skip))         # [B, 64, 74, 74]: 75 // 2 * 2
    return self.dec(torch.cat([skip, up], dim=1))
```

## Use instead
Resize the decoder tensor to the skip before joining:
```python
    up = F.interpolate(up, size=skip.shape[-2:])
    return self.dec(torch.cat([skip, up], dim=1))
```
reslint proposes that change (`resize-to-skip`), or, when a layer with a stray stride breaks a dense
block, that layer with the right stride (`resize-transform`), and validates it as for RL001.

## Fix safety
- `resize-to-skip` is a statement fix (the cat with `F.interpolate(up, size=skip.shape[2:])`);
  `resize-transform` (a stray stride) is a layer fix.
"""

from __future__ import annotations

from typing import Iterator

import torch.fx as fx

from reslint.findings import Finding
from reslint.rules.shapes import describe_difference, join_roles, role_name, where
from reslint.trace.ops import cat_tensors_and_dim


def check(analysis) -> Iterator[Finding]:
    reported_odd: set = set()  # operands already reported as not fitting a concat
    for join, skip, other in analysis.joins_of("cat", failed=True):
        tensors, dim = cat_tensors_and_dim(join.node.args, join.node.kwargs)
        odd = odd_operands(analysis, tensors, skip, dim)
        if odd and odd <= reported_odd:
            continue  # a DenseNet layer's wrong output, concatenated again by every later layer: one bug
        reported_odd |= odd
        yield analysis.join_finding("RL003", join, _message(analysis, join, tensors, dim, skip, other, odd), skip, other)


def _message(analysis, join, tensors, dim: int, skip: list[int], other: list[int], odd: set) -> str:
    """Names the concat dim by its role; with 3+ tensors, shows the one that does not fit."""
    nodes = [t for t in tensors if isinstance(t, fx.Node)] if isinstance(tensors, (list, tuple)) else []
    roles = join_roles(analysis, join.skip, join.transform, *nodes)
    axis = dim % len(skip) if skip else dim
    along = f"{role_name(roles, axis)} (dim {axis})" if roles and role_name(roles, axis) != f"dim {axis}" else f"dim {axis}"
    if len(nodes) >= 3 and odd:
        if len(odd) == len(nodes) - 1 and join.skip in nodes and _agree(analysis, odd, dim):
            # the skip is the odd one: the others agree with each other
            shape = analysis.shape(next(iter(odd)))
            difference = describe_difference(_outside(shape, skip, axis), skip, roles)
            return (
                f"concatenated skip in {where(join.node)}: of the {len(nodes)} tensors concatenated along {along}, "
                f"the skip {skip} does not fit the others {shape} ({difference})"
            )
        first = min(odd, key=nodes.index)
        shape = analysis.shape(first)
        difference = describe_difference(skip, _outside(shape, skip, axis), roles)
        return (
            f"concatenated skip in {where(join.node)}: of the {len(nodes)} tensors concatenated along {along}, "
            f"tensor {nodes.index(first) + 1} {shape} does not fit the skip {skip} ({difference})"
        )
    difference = describe_difference(skip, _outside(other, skip, axis), roles)
    return (
        f"concatenated skip in {where(join.node)}: skip {skip} and {other} differ outside the concat dim, "
        f"{along} ({difference})"
    )


def _outside(shape: list[int] | None, skip: list[int], axis: int) -> list[int]:
    """`shape` with the concat dim set to the skip's: only the dims that must agree are compared."""
    along = list(shape or [])
    if len(along) == len(skip):
        along[axis] = skip[axis]
    return along


def _agree(analysis, nodes, dim: int) -> bool:
    shapes = [analysis.shape(n) for n in nodes]
    if any(s is None for s in shapes):
        return False
    return len({tuple(_outside(s, shapes[0], dim % len(shapes[0]))) for s in shapes}) == 1


def odd_operands(analysis, tensors, skip: list[int], dim: int) -> set:
    """The concatenated tensors that differ from the skip outside the concat dim."""
    def fits(shape):
        return shape is not None and len(shape) == len(skip) and all(
            a == b for d, (a, b) in enumerate(zip(shape, skip)) if d != dim % len(skip)
        )
    return {t for t in tensors if isinstance(t, fx.Node) and not fits(analysis.shape(t))}
