"""What the analysis' run tells about each built layer: the inputs it ran on, and whether they were the
model's own values or came after a failure (a substitute stood in for a broken op's result).

A layer fix is validated with every layer made alike at its call changed (reslint.size_fixes), so the
edit writes it for all of them. An instance the lint proved right (it ran on the model's own values)
must then compute what it did: `unchanged_at_inputs` checks the new settings at the shapes it ran on.
An instance that ran downstream of a failure was never proven right: the fix decides what it gets.
"""

from __future__ import annotations

import copy
import math
from collections import defaultdict
from typing import Any

import torch
import torch.fx as fx
from torch import nn

# Layer attributes a constructor argument sets that decide its output size (what a size fix changes).
SIZE_SETTINGS = ("padding", "ceil_mode", "count_include_pad", "_reversed_padding_repeated_twice")
_LARGEST_CHECK = 1 << 20  # elements of a real-valued comparison run on CPU


class LayerRuns:
    """Each layer's calls in the analysis' graph, and which of them ran after a failure."""

    def __init__(self, propagation: Any) -> None:
        self.propagation = propagation
        self.values: dict[fx.Node, Any] = propagation.values
        self._calls: dict[str, list[fx.Node]] = defaultdict(list)
        for node in propagation.nodes:
            if node.op == "call_module":
                self._calls[str(node.target)].append(node)
        self._after_failure = _downstream(propagation.failures)

    def ran(self, path: str) -> bool:
        return bool(self._calls.get(path))

    def proven(self, path: str) -> bool:
        """It ran, every time on values the model computed itself (none downstream of a failure)."""
        calls = self._calls.get(path, [])
        return bool(calls) and not any(self.after_failure(call) for call in calls)

    def after_failure(self, node: fx.Node) -> bool:
        """The node ran on a value computed from a failure's substitute."""
        return any(n in self._after_failure for n in node.all_input_nodes)

    def input_shapes(self, path: str) -> list[tuple[tuple[int, ...], torch.dtype]] | None:
        """(shape, dtype) of each call's one tensor input; None when a call had another kind of input."""
        shapes = []
        for call in self._calls.get(path, []):
            value = self.values.get(call.args[0]) if len(call.args) == 1 and not call.kwargs and isinstance(call.args[0], fx.Node) else None
            if not isinstance(value, torch.Tensor):
                return None
            shapes.append((tuple(value.shape), value.dtype))
        return shapes


def _downstream(failures: dict[fx.Node, Any]) -> set[fx.Node]:
    """The failing nodes and every node computed from them."""
    seen, pending = set(failures), list(failures)
    while pending:
        for user in pending.pop().users:
            if user not in seen:
                seen.add(user)
                pending.append(user)
    return seen


def with_settings(layer: nn.Module, cls: type, arguments: dict[str, Any]) -> nn.Module | None:
    """A copy of the layer with the size settings the constructor gives for `arguments`."""
    try:
        with torch.device("meta"):
            built = cls(**arguments)
        changed = copy.deepcopy(layer)
        for name in SIZE_SETTINGS:
            if hasattr(layer, name) and hasattr(built, name):
                setattr(changed, name, getattr(built, name))
        return changed
    except Exception:  # noqa: BLE001  a constructor reslint cannot call alone: nothing proven
        return None


def unchanged_at_inputs(layer: nn.Module, changed: nn.Module, inputs: list[tuple[tuple[int, ...], torch.dtype]]) -> bool:
    """The changed layer computes what the layer did on every input it ran on: the same output shape,
    and the same values (pooling that differs only in `ceil_mode`: one shape, so the same windows;
    otherwise compared on random values, weights included, on CPU)."""
    if not inputs:
        return False
    differs = {n for n in SIZE_SETTINGS if hasattr(layer, n) and getattr(layer, n) != getattr(changed, n, None)}
    for shape, dtype in inputs:
        try:
            with torch.no_grad():
                before = layer(torch.empty(shape, dtype=dtype, device="meta"))
                after = changed(torch.empty(shape, dtype=dtype, device="meta"))
        except Exception:  # noqa: BLE001
            return False
        if not (isinstance(before, torch.Tensor) and isinstance(after, torch.Tensor)) or before.shape != after.shape:
            return False
        pooling = isinstance(layer, (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd))
        if pooling and differs <= {"ceil_mode"}:
            continue
        if not _same_values(layer, changed, shape, dtype):
            return False
    return True


def _same_values(layer: nn.Module, changed: nn.Module, shape: tuple[int, ...], dtype: torch.dtype) -> bool:
    if not dtype.is_floating_point or math.prod(shape) > _LARGEST_CHECK:
        return False
    try:
        generator = torch.Generator().manual_seed(0)
        old = copy.deepcopy(layer).to_empty(device="cpu")
        for tensor in old.parameters():
            if tensor.is_floating_point():
                tensor.data.copy_(torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype))
        for tensor in old.buffers():  # running statistics: a variance is positive
            tensor.data.copy_(torch.rand(tensor.shape, generator=generator).to(tensor.dtype) + 1)
        new = copy.deepcopy(changed).to_empty(device="cpu")
        new.load_state_dict(old.state_dict())
        x = torch.randn(shape, generator=generator, dtype=dtype)
        with torch.no_grad():
            return torch.equal(old(x), new(x))
    except Exception:  # noqa: BLE001
        return False
