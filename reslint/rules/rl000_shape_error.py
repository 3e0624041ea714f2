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
"""

from __future__ import annotations

from typing import Iterator

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
        yield analysis.finding("RL000", node, f"{what} fails: {failure.message}", shapes)


def _op_name(node) -> str:
    target = node.target
    return target if isinstance(target, str) else getattr(target, "__name__", str(target))
