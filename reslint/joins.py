"""Find the places where a skip path joins a transform path.

A join is an add (or a cat) whose tensor operands derive from a common tensor, the fork. The fork is
the nearest such tensor, found by walking backwards from the operands in reverse topological order,
so the walk only visits the block between fork and join. Of the two paths from the fork, the one with
fewer weighted layers (none, or just a projection) is the skip; the other is the transform.
Parameters and constants are not data: `x + self.pos_embed` has no fork and is not a join.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.fx as fx

from reslint.trace.ops import cat_tensors_and_dim, is_add, is_cat, reads_only_metadata
from reslint.trace.propagate import UNKNOWN, Propagation


@dataclass
class SkipJoin:
    node: fx.Node  # the add or cat
    kind: str  # "add" or "cat"
    skip: fx.Node
    transform: fx.Node
    fork: fx.Node
    skip_path: list[fx.Node]  # nodes after the fork up to and including the skip operand, in order
    transform_path: list[fx.Node]

    @property
    def skip_is_identity(self) -> bool:
        return self.skip is self.fork


def join_operands(node: fx.Node) -> list[fx.Node]:
    """The graph nodes a join combines (two for an add, the list items for a cat)."""
    if is_add(node):
        other = node.args[1] if len(node.args) > 1 else node.kwargs.get("other")
        return [a for a in (node.args[0], other) if isinstance(a, fx.Node)]
    if is_cat(node):
        tensors, _ = cat_tensors_and_dim(node.args, node.kwargs)
        return [t for t in tensors if isinstance(t, fx.Node)] if isinstance(tensors, (list, tuple)) else []
    return []


class JoinFinder:
    def __init__(self, propagation: Propagation):
        self.prop = propagation
        self.index = propagation.index
        self.data = self._data_derived()

    def _is_tensor(self, node: fx.Node) -> bool:
        """The node's value is tensor data: a tensor, or the tuple of a multi-output op (chunk, split)."""
        value = self.prop.values.get(node, UNKNOWN)
        if isinstance(value, (tuple, list)):
            return any(isinstance(item, torch.Tensor) for item in value)
        return value is UNKNOWN or isinstance(value, torch.Tensor)

    def _data_inputs(self, node: fx.Node) -> list[fx.Node]:
        """Inputs that carry tensor data derived from the model's inputs (not sizes, not parameters)."""
        return [n for n in node.all_input_nodes if n in self.data and self._is_tensor(n)]

    def _data_derived(self) -> set[fx.Node]:
        derived: set[fx.Node] = set()
        for node in self.prop.nodes:
            if reads_only_metadata(node):
                continue
            if node.op == "placeholder" or any(n in derived and self._is_tensor(n) for n in node.all_input_nodes):
                derived.add(node)
        return derived

    def data_operands(self, node: fx.Node) -> list[fx.Node]:
        """The operands of an add or cat that are tensor data (a join needs two, and a fork)."""
        if not (is_add(node) or is_cat(node)):
            return []
        return [n for n in join_operands(node) if n in self.data and self._is_tensor(n)]

    def joins(self) -> Iterator[SkipJoin]:
        for node in self.prop.nodes:
            operands = self.data_operands(node)
            if len(operands) < 2:
                continue
            join = self._join(node, operands[0], operands[1]) if is_add(node) else self._cat_join(node, operands)
            if join is not None:
                yield join

    def _cat_join(self, node: fx.Node, operands: list[fx.Node]) -> SkipJoin | None:
        # U-Net cats [up, skip] (or the reverse); DenseNet cats [input, f1, ..., fk]. The oldest and the
        # newest operand span the whole join, and one fork walk keeps DenseNet linear per layer.
        oldest = min(operands, key=self.index.__getitem__)
        newest = max(operands, key=self.index.__getitem__)
        return self._join(node, oldest, newest)

    def _join(self, node: fx.Node, a: fx.Node, b: fx.Node) -> SkipJoin | None:
        found = self.fork(a, b)
        if found is None:
            return None
        fork, marks = found
        path_a = self._path(a, fork, marks, 1)
        path_b = self._path(b, fork, marks, 2)
        # The skip is the path with fewer weighted layers other than projections (1x1 convs, linears),
        # then fewer weighted layers at all, then the shorter path (x + relu(x)).
        key_a = (*self.weight_profile(path_a), len(path_a), 1)
        key_b = (*self.weight_profile(path_b), len(path_b), 0)
        if key_a <= key_b:
            return SkipJoin(node, "add" if is_add(node) else "cat", a, b, fork, path_a, path_b)
        return SkipJoin(node, "add" if is_add(node) else "cat", b, a, fork, path_b, path_a)

    def fork(self, a: fx.Node, b: fx.Node) -> tuple[fx.Node, dict[fx.Node, int]] | None:
        """The nearest common data ancestor of a and b (a node may be its own ancestor).

        Nodes are popped in decreasing topological order, so when a node is popped every descendant
        that could mark it has been popped already: the first node marked from both sides is the fork.
        """
        marks: dict[fx.Node, int] = {a: 1}
        marks[b] = marks.get(b, 0) | 2
        heap = [(-self.index[n], id(n), n) for n in marks]
        heapq.heapify(heap)
        # How many queued nodes carry each side's mark: when one side has none left, there is no fork.
        queued = {1: sum(1 for m in marks.values() if m & 1), 2: sum(1 for m in marks.values() if m & 2)}
        while heap and queued[1] and queued[2]:
            _, _, node = heapq.heappop(heap)
            mark = marks[node]
            if mark == 3:
                return node, marks
            queued[mark] -= 1
            for parent in self._data_inputs(node):
                old = marks.get(parent, 0)
                new = old | mark
                if new == old:
                    continue
                marks[parent] = new
                if old == 0:
                    heapq.heappush(heap, (-self.index[parent], id(parent), parent))
                queued[mark] += 1
        return None

    def _path(self, operand: fx.Node, fork: fx.Node, marks: dict[fx.Node, int], side: int) -> list[fx.Node]:
        fork_index = self.index[fork]
        nodes = [n for n, m in marks.items() if m & side and self.index[n] > fork_index]
        if operand is fork:
            return []
        return sorted(nodes, key=self.index.__getitem__)

    def is_weighted(self, node: fx.Node) -> bool:
        """A layer with a weight matrix or kernel: conv, linear, embedding, or a functional op on one."""
        if node.op == "call_module":
            module = self.prop.module(node)
            return any(p.dim() >= 2 for p in module.parameters(recurse=True))
        if node.op in ("call_function", "call_method"):
            for arg in node.all_input_nodes:
                if arg.op == "get_attr":
                    value = self.prop.values.get(arg)
                    if isinstance(value, torch.Tensor) and value.dim() >= 2:
                        return True
        return False

    def is_projection(self, node: fx.Node) -> bool:
        module = self.prop.module(node)
        if isinstance(module, torch.nn.modules.conv._ConvNd):
            return all(k == 1 for k in module.kernel_size)
        return isinstance(module, torch.nn.Linear)

    def weight_profile(self, path: list[fx.Node]) -> tuple[int, int]:
        """(weighted layers that are not projections, weighted layers)."""
        weighted = [n for n in path if self.is_weighted(n)]
        return sum(1 for n in weighted if not self.is_projection(n)), len(weighted)


def find_joins(propagation: Propagation) -> list[SkipJoin]:
    return list(JoinFinder(propagation).joins())
