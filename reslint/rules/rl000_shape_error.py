"""RL000: shape error outside any skip join.

## What it does
Reports every op that fails on the example input and is not a skip join: a convolution given the
wrong number of channels, a `view` whose sizes do not multiply out, a matmul with mismatched inner
dims. reslint substitutes the shape the layer expected and goes on, so one run lists every error.

## Why is this bad?
The model cannot run at this input size at all. Often it is the downstream face of a skip bug, or a
layer declared with the wrong `in_channels` after an edit.

## Example
```python
self.conv1 = nn.Conv2d(3, 64, 3)
self.conv2 = nn.Conv2d(32, 64, 3)   # RL000: conv1 produces 64 channels
```

## Use instead
```python
self.conv2 = nn.Conv2d(64, 64, 3)
```
If the model only works at other input sizes, pass one with `--input`.

## Fix safety
"""

from __future__ import annotations

from typing import Iterator

import torch
import torch.fx as fx
from torch import nn

from reslint.findings import Finding
from reslint.rules.shapes import where


def check(analysis) -> Iterator[Finding]:
    claimed = {join.node for join in analysis.joins}  # joins are RL001's and RL003's
    for node, failure in analysis.propagation.failures.items():
        if failure.limitation or node in claimed:
            continue
        if node.op == "call_module":
            layer = analysis.propagation.module(node)
            what = f"{node.target} ({type(layer).__name__})"
        else:
            what = where(node)
            what = f"{_op_name(node)} in {what}"
        inputs = [analysis.shape(n) for n in node.all_input_nodes]
        shapes = {f"input{i}": shape for i, shape in enumerate(inputs) if shape is not None}
        message = explained(analysis, node, failure.message)
        yield analysis.finding("RL000", node, f"{what} fails: {message}", shapes, analysis.fixes.failure_fix(node))


def explained(analysis, node, message: str) -> str:
    """torch's own explanation, as a CPU run gives it, where the meta kernel's is vaguer ("Invalid
    channel dimensions"), plus a hint when the input is in the other layout (a missing permute)."""
    layer = analysis.propagation.module(node) if node.op == "call_module" else None
    x = node.args[0] if node.args else None
    shape = analysis.shape(x) if isinstance(x, fx.Node) else None
    if shape is None:
        return message
    weight = getattr(layer, "weight", None) if layer is not None else _functional_weight(analysis, node)
    name = _op_name(node) if layer is None else ""
    if isinstance(layer, nn.modules.conv._ConvNd) and not layer.transposed or name in ("conv1d", "conv2d", "conv3d"):
        groups = getattr(layer, "groups", None) or (node.args[6] if len(node.args) > 6 else node.kwargs.get("groups", 1))
        if not isinstance(weight, torch.Tensor) or len(shape) < 2:
            return message
        expected = weight.shape[1] * groups
        got = shape[1] if len(shape) == weight.dim() else shape[0]
        if got == expected:
            return message
        message = (
            f"Given groups={groups}, weight of size {list(weight.shape)}, expected input{shape} to have "
            f"{expected} channels, but got {got} channels instead"
        )
        if len(shape) == weight.dim() and shape[-1] == expected:
            message += f"; its last dim has {expected}: channels-last, missing a {_to_channels_first(len(shape))}?"
        return message
    if isinstance(layer, nn.Linear) or name == "linear":
        if not isinstance(weight, torch.Tensor) or weight.dim() != 2 or shape[-1] == weight.shape[1]:
            return message
        expected = weight.shape[1]
        message = f"expected input{shape} to have {expected} features in its last dim, but got {shape[-1]}"
        if len(shape) >= 3 and shape[1] == expected:
            message += f"; its dim 1 has {expected}: channels-first, missing a {_to_channels_last(len(shape))}?"
        return message
    return message


def _functional_weight(analysis, node):
    weight = node.args[1] if len(node.args) > 1 else node.kwargs.get("weight")
    return analysis.propagation.values.get(weight) if isinstance(weight, fx.Node) else None


def _to_channels_first(rank: int) -> str:
    return "transpose(1, 2)" if rank == 3 else f"permute(0, {rank - 1}, {', '.join(str(d) for d in range(1, rank - 1))})"


def _to_channels_last(rank: int) -> str:
    return "transpose(1, 2)" if rank == 3 else f"permute(0, {', '.join(str(d) for d in range(2, rank))}, 1)"


def _op_name(node) -> str:
    target = node.target
    return target if isinstance(target, str) else getattr(target, "__name__", str(target))
