"""RL002: residual add that only works by broadcasting.

## What it does
Finds residual adds whose skip and transform both derive from the block's input but have different
shapes that happen to broadcast: `[B, D] + [B, 1]` from a head that projects to one unit,
`[B, C, H, W] + [B, C, 1, 1]` from a transform that pooled away its spatial dims.

## Why is this bad?
Nothing crashes. The model runs, trains, and learns something else than what was written: every
position receives the same transform output, so the block is not a residual block any more. Such bugs
survive for months.

Adds of parameters and constants (positional embeddings, biases, layer scale) are not skip joins and
are never reported; neither are SE-style multiplies, global-context blocks whose transform models the
pooled context with its own layers before adding it back (GCNet), nor outer sums of unsqueezed terms
(decomposed relative position biases in SAM and MViTv2): they broadcast on purpose. Only an operand
that lost dims to a reduction (pooling, a mean, a layer of width 1) is reported.

## Example
```python
def forward(self, x):                   # x: [B, 64, 32, 32]
    y = self.pool(self.conv(x))         # nn.AdaptiveAvgPool2d(1): [B, 64, 1, 1]
    return x + y                        # broadcasts to [B, 64, 32, 32]
```

## Use instead
```python
def forward(self, x):
    return x + self.conv(x)             # keep the transform at the skip's shape
```
"""

from __future__ import annotations

from typing import Iterator

from reslint.findings import Finding
from reslint.rules.shapes import describe_difference, join_roles, where


def check(analysis) -> Iterator[Finding]:
    for join, skip, transform in analysis.joins_of("add", failed=False):
        out = analysis.shape(join.node)
        if out is None or skip == transform or not _squeezed_by_mistake(analysis, join, out):
            continue
        message = (
            f"residual add in {where(join.node)} only works by broadcasting: skip {skip} + transform {transform} "
            f"→ {out} ({describe_difference(skip, transform, join_roles(analysis, join.node, join.skip, join.transform))})"
        )
        yield analysis.join_finding("RL002", join, message, skip, transform)


def _squeezed_by_mistake(analysis, join, out: list[int]) -> bool:
    """A broadcast operand lost dims to a reduction (pooling, a mean, a layer of width 1) and nothing
    models the squeezed tensor afterwards.

    Operands that gain size-1 dims by unsqueezing broadcast on purpose (outer sums such as decomposed
    relative position terms); a context branch with weighted layers after its reduction (GCNet,
    SE-with-add) does too.
    """
    for operand, path in ((join.transform, join.transform_path), (join.skip, join.skip_path)):
        if analysis.shape(operand) == out:
            continue
        reduction = analysis.fixes.reduction_node(path, tuple(out))
        if reduction is None:
            continue
        after = path[path.index(reduction) + 1 :]
        if not any(analysis.join_finder.is_weighted(node) for node in after):
            return True
    return False
