"""RL005: deep plain stack with no skip.

## What it does
Finds chains of 20 or more weighted layers (convolutions, linear layers) along one path of the model
where no skip connection spans any part of the chain. The threshold is configurable
(`--rl005-depth`, or `rl005-depth` in `[tool.reslint]`).

## Why is this bad?
Plain networks degrade past 20–30 layers: gradients at initialisation shrink or explode from layer to
layer, and a deeper plain net reaches a *higher* training loss than a shallower one (He et al., 2016).
Residual connections fix this; an architecture should have them from the start. VGG-19 (19 weighted
layers) is the deepest plain network in common use.

## Example
```python
layers = []
for _ in range(20):
    layers += [nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU()]
self.body = nn.Sequential(*layers)
```

## Use instead
Group the layers into residual blocks:
```python
class Residual(nn.Module):
    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        return x + self.body(x)

self.body = nn.Sequential(*[Residual(nn.Sequential(*layers[i:i + 6])) for i in range(0, len(layers), 6)])
```
"""

from __future__ import annotations

from typing import Iterator

from reslint.findings import Finding, Fix

DEFAULT_DEPTH = 20
RESIDUAL_CODE = (
    "class Residual(nn.Module):\n"
    "    def __init__(self, body):\n"
    "        super().__init__()\n"
    "        self.body = body\n\n"
    "    def forward(self, x):\n"
    "        return x + self.body(x)"
)


def check(analysis) -> Iterator[Finding]:
    threshold = int(analysis.options.get("rl005-depth", DEFAULT_DEPTH))
    chain = longest_plain_chain(analysis)
    if len(chain) < threshold:
        return
    first, last = chain[0], chain[-1]
    groups = residual_groups(analysis, chain)
    fix = Fix(
        kind="add-residuals",
        module=_common_prefix([str(n.target) for n in chain]),
        code=RESIDUAL_CODE,
        validated=bool(groups),
        description=(
            f"wrap runs of layers with equal input and output shapes in Residual blocks: {', '.join(groups)}"
            if groups else "no run of these layers keeps its shape; add projections where the width changes"
        ),
    )
    message = (
        f"{len(chain)} weighted layers in a row with no skip connection, from {_name(first)} to {_name(last)} "
        f"(threshold {threshold}): plain stacks this deep train worse than shallower ones"
    )
    yield analysis.finding("RL005", first, message, {"input": analysis.shape(first.all_input_nodes[0]) if first.all_input_nodes else None}, fix)


def longest_plain_chain(analysis) -> list:
    """The longest path of weighted layers that no join's skip or transform path covers."""
    spanned = {join.node for join in analysis.joins}  # a chain through a join has a skip spanning it
    for join in analysis.joins:
        spanned.update(join.transform_path)
        spanned.update(join.skip_path)
    is_weighted = analysis.join_finder.is_weighted
    length: dict = {}  # node -> number of plain weighted layers on the best chain reaching it
    chain: dict = {}  # node -> that chain, as a linked list (previous link, weighted node)
    for node in analysis.propagation.nodes:
        best = max((n for n in node.all_input_nodes if n in length), key=length.__getitem__, default=None)
        base_length, base_chain = (length[best], chain[best]) if best is not None else (0, None)
        if node in spanned:
            length[node], chain[node] = 0, None
        elif is_weighted(node):
            length[node], chain[node] = base_length + 1, (base_chain, node)
        else:
            length[node], chain[node] = base_length, base_chain
    end = max(length, key=length.__getitem__, default=None)
    layers, link = [], chain.get(end)
    while link is not None:
        link, node = link
        layers.append(node)
    return layers[::-1]


def residual_groups(analysis, chain) -> list[str]:
    """Runs of consecutive layers that keep their input's shape: each can become `x + body(x)`."""
    groups, start = [], 0
    shapes_in = [analysis.shape(n.all_input_nodes[0]) if n.all_input_nodes else None for n in chain]
    shapes_out = [analysis.shape(n) for n in chain]
    for end in range(len(chain)):
        if shapes_in[end] != shapes_out[end]:  # a layer that changes the shape stays outside the blocks
            start = end + 1
        elif end > start and shapes_in[start] == shapes_out[end]:
            groups.append(f"{_name(chain[start])}..{_name(chain[end])}")
            start = end + 1
    return groups


def _name(node) -> str:
    return str(node.target) if node.op == "call_module" else node.name


def _common_prefix(paths: list[str]) -> str:
    parts = [p.split(".") for p in paths]
    prefix = []
    for items in zip(*parts):
        if len(set(items)) != 1:
            break
        prefix.append(items[0])
    return ".".join(prefix)
