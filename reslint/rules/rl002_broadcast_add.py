"""RL002: residual add that only works by broadcasting.

## What it does
Finds residual adds whose skip and transform both derive from the block's input but have different
shapes that happen to broadcast: `[B, D] + [B, 1]` from a head that projects to one unit,
`[B, C, H, W] + [B, C, 1, 1]` from a transform that pooled away its spatial dims.

## Why is this bad?
Nothing crashes. The model runs, trains, and learns something else than what was written: every
position receives the same transform output, so the block is not a residual block any more. Such bugs
survive for months.

A gate added instead of multiplied is reported too: an operand that comes out of a sigmoid or hard
sigmoid and is broadcast over the feature map (`x + self.se(x)` with `self.se` ending in
`nn.Sigmoid()` on a `[B, C, 1, 1]`). Every Squeeze-and-Excitation, CBAM and GCNet `channel_mul`
block in public code multiplies such a gate (`x * gate`); GCNet's `channel_add` branch adds its
pooled context on purpose, but through a plain conv, never a sigmoid, so it stays silent.

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

## Fix safety
- `remove-reduction` and `resize-transform` are layer or statement fixes:
"""

from __future__ import annotations

from typing import Iterator

from reslint.findings import Finding
from reslint.rules.shapes import describe_difference, join_roles, where


def check(analysis) -> Iterator[Finding]:
    for join, skip, transform in analysis.joins_of("add", failed=False):
        out = analysis.shape(join.node)
        if out is None or skip == transform:
            continue
        gate = _gate(analysis, join, out)
        if gate is not None:
            message = (
                f"residual add in {where(join.node)} adds a gate: transform {transform} comes out of "
                f"{_describe(analysis, gate)} and is broadcast over skip {skip}; a gate scales the feature map "
                "(multiply: `x * gate`), as squeeze-and-excitation blocks do"
            )
            yield analysis.finding("RL002", join.node, message, {"skip": skip, "transform": transform}, analysis.fixes.gate_fix(join))
            continue
        if not _has_weights(analysis, join) or not _squeezed_by_mistake(analysis, join, out):
            continue
        message = (
            f"residual add in {where(join.node)} only works by broadcasting: skip {skip} + transform {transform} "
            f"→ {out} ({describe_difference(skip, transform, join_roles(analysis, join.node, join.skip, join.transform))})"
        )
        yield analysis.join_finding("RL002", join, message, skip, transform)


def _has_weights(analysis, join) -> bool:
    """A residual join skips around weighted layers; an add of two weightless computations of one tensor
    (a router's `gates.cumsum(-2) + gates.sum(-2, keepdim=True)`) is arithmetic that broadcasts on purpose."""
    return any(analysis.join_finder.is_weighted(node) for node in (*join.transform_path, *join.skip_path))


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


GATES = {"sigmoid", "hardsigmoid", "hard_sigmoid"}
# Ops that pass a gate on unchanged in value: reshaping it for the broadcast.
PASS_THROUGH = {"view", "reshape", "expand", "expand_as", "flatten", "unsqueeze", "squeeze", "contiguous", "to", "float", "type_as"}


def _gate(analysis, join, out: list[int]):
    """The sigmoid node the broadcast operand comes straight out of, if it does."""
    for operand in (join.transform, join.skip):
        shape = analysis.shape(operand)
        if shape is None or shape == out or len(shape) != len(out):
            continue
        if not any(a == 1 and b != 1 for a, b in zip(shape, out)):
            continue
        node = operand
        while node is not None and _op(analysis, node) in PASS_THROUGH:
            node = node.args[0] if node.args and hasattr(node.args[0], "op") else None
        if node is not None and _op(analysis, node) in GATES:
            return node
    return None


def _op(analysis, node) -> str:
    from reslint.trace.ops import method_name

    if node.op == "call_module":
        return type(analysis.propagation.module(node)).__name__.lower()
    name = method_name(node) or (getattr(node.target, "__name__", "") if node.op == "call_function" else "")
    return name.rstrip("_").lower()


def _describe(analysis, node) -> str:
    if node.op == "call_module":
        return f"{node.target} ({type(analysis.propagation.module(node)).__name__})"
    return _op(analysis, node)
