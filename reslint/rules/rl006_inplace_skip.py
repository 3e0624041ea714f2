"""RL006: in-place op overwrites a tensor that a later join uses as its skip.

## What it does
Finds in-place operations (`nn.ReLU(inplace=True)`, `x.relu_()`, `F.relu(x, inplace=True)`,
`x += ...`, `x.mul_(...)`) applied to a tensor after it was taken as a skip and before the join that
adds or concatenates it. Reported at the in-place op, naming the join.

## Why is this bad?
The skip and the in-place op share memory: the join receives the transformed value instead of the
block's input, so `x + f(x)` silently becomes `relu(x) + f(x)`. Nothing crashes; the network is
simply not the one that was written. (Autograd may also raise "one of the variables needed for
gradient computation has been modified by an inplace operation" only in training.)

This rule reads the fx graph, which keeps the names the code uses; for models that only the eager
frontend can record, in-place aliasing is already resolved and this rule cannot tell intent apart.

The same holds when the skip has a projection: an in-place op at the start of the transform
branch overwrites the block's input before `self.shortcut(x)` reads it (a bug found in a public
Xception). For a concatenated skip, the concat reads the overwritten value.

## Example
```python
def forward(self, x):
    out = self.relu(x)          # nn.ReLU(inplace=True): overwrites x
    out = self.conv(out)
    return out + x              # x is relu(x) by now
```

## Use instead
```python
def forward(self, x):
    out = self.relu(x.clone())  # or nn.ReLU(inplace=False)
    out = self.conv(out)
    return out + x
```
"""

from __future__ import annotations

import operator
from typing import Iterator

from reslint.findings import Finding
from reslint.rules.shapes import where
from reslint.trace.ops import is_inplace_method, method_name

INPLACE_FUNCTIONS = {operator.iadd, operator.isub, operator.imul, operator.itruediv}


def check(analysis) -> Iterator[Finding]:
    index = analysis.propagation.index
    reported = set()
    for join in analysis.joins:
        reads = "the concat reads" if join.kind == "cat" else "the join adds"
        # The skip itself overwritten between the fork and the join: `out = relu_(x); ...; out + x`.
        skip = join.skip
        for user in skip.users:
            if user is join.node or user in reported or not index[skip] < index[user] < index[join.node]:
                continue
            if not _overwrites_first_argument(analysis, user, skip) or not _transform_took_it_before(join, user, index):
                continue
            reported.add(user)
            message = f"in-place {_what(analysis, user)} overwrites the skip of the join in {where(join.node)}{_at(join)}: {reads} the transformed value"
            yield analysis.finding("RL006", user, message, {"skip": analysis.shape(skip)}, analysis.fixes.not_inplace_fix(user))
        # The block's input overwritten before the skip's projection reads it (Xception's
        # `out = self.relu(x)` with inplace=True, then `out + self.shortcut(x)`).
        for user, reader in _overwritten_before_projection(analysis, join, index):
            if user in reported:
                continue
            reported.add(user)
            message = (
                f"in-place {_what(analysis, user)} overwrites the input of the join in {where(join.node)}{_at(join)} "
                f"before the skip's {_reader(analysis, reader)} reads it: the skip is computed from the transformed value"
            )
            yield analysis.finding("RL006", user, message, {"skip": analysis.shape(join.fork)}, analysis.fixes.not_inplace_fix(user))


def _overwritten_before_projection(analysis, join, index):
    """(in-place op, skip-path node) pairs: the op overwrites the fork before the skip path reads it."""
    fork = join.fork
    if join.skip is fork:
        return
    readers = [n for n in join.skip_path if fork in n.all_input_nodes]
    for user in fork.users:
        if user is join.node or user in join.skip_path or not _overwrites_first_argument(analysis, user, fork):
            continue
        later = [r for r in readers if index[r] > index[user]]
        if later and index[user] < index[join.node]:
            yield user, later[0]


def _what(analysis, node) -> str:
    if node.op == "call_module":
        return f"{node.target} ({type(analysis.propagation.module(node)).__name__}, inplace=True)"
    return _name(node)


def _reader(analysis, node) -> str:
    if node.op == "call_module":
        return f"projection {node.target} ({type(analysis.propagation.module(node)).__name__})"
    return _name(node)


def _at(join) -> str:
    source = join.node.meta.get("source")
    return f" at line {source.line}" if source else ""


def _transform_took_it_before(join, inplace, index) -> bool:
    """The transform read the skip before the in-place op, or through it: only then do the two differ."""
    return any(
        node is inplace or (join.skip in node.all_input_nodes and index[node] < index[inplace])
        for node in join.transform_path
    )


def _overwrites_first_argument(analysis, node, tensor) -> bool:
    if not node.args or node.args[0] is not tensor:
        return False
    if node.op == "call_module":
        return getattr(analysis.propagation.module(node), "inplace", False) is True
    if node.op == "call_function" and node.target in INPLACE_FUNCTIONS:
        return True
    if node.kwargs.get("inplace") is True:
        return True
    name = method_name(node) or (getattr(node.target, "__name__", "") if node.op == "call_function" else "")
    return is_inplace_method(name)


def _name(node) -> str:
    target = node.target
    return target if isinstance(target, str) else getattr(target, "__name__", str(target))
