"""RL001: residual add with mismatched shapes.

## What it does
Finds residual adds (`x + f(x)`, `out += identity`, `torch.add`, `x.add_(...)`) where the skip and the
transform do not have the same shape, so the add fails: the block changes channels or stride, or a
transformer sublayer returns the wrong width, and the skip has no projection to match.

## Why is this bad?
The model crashes with "The size of tensor a (64) must match the size of tensor b (128)" the first time
the block runs: deep inside a training job, after data loading and compilation have already cost time.

## Example
```python
class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + x)  # RL001 when cin != cout or stride != 1
```

## Use instead
Project the skip with a 1x1 convolution that has the block's stride (plus the block's norm), or an
`nn.Linear` for token and feature tensors:
```python
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        ...
        return F.relu(out + self.shortcut(x))
```
reslint proposes the projection (or the change to an existing one, or to the transform's last layer)
and marks it `validated` when shapes then propagate through the whole model.

## Fix safety
- `project-skip` goes into the block class: `self.shortcut = <projection> if <guard> else
  nn.Identity()` at the end of `__init__`, and the join adds `self.shortcut(x)`. The projection's
  numbers are the block's constructor parameters (`in_planes`, `planes`, `stride`); the guard
  (`stride != 1 or in_planes != planes`) separates the instances that need it from the others. Safe
  when every instance's projection is validated and the guard is true on exactly those instances: the
  others get `nn.Identity()`, the same output and the same state_dict. A block that already chooses
  (`self.skip = P if project else nn.Identity()`) gets its own condition widened
  (`P if project or <guard> else ...`); one whose `downsample=None` no caller passes builds it behind
  the guard. Not safe when the skip is rebound under a branch.
"""

from __future__ import annotations

from typing import Iterator

from reslint.findings import Finding
from reslint.rules.shapes import describe_difference, join_roles, where


def check(analysis) -> Iterator[Finding]:
    for join, skip, transform in analysis.joins_of("add", failed=True):
        message = (
            f"residual add in {where(join.node)}: skip {skip} does not match transform {transform} "
            f"({describe_difference(skip, transform, join_roles(analysis, join.skip, join.transform))})"
        )
        yield analysis.join_finding("RL001", join, message, skip, transform)
