"""Choose, at each failing node, the substitute the rest of the model accepts.

One root cause must give one finding: what the model does after a failure is checked on the value
the code *meant* to compute there, so that later layers fail only for bugs of their own.

Candidates. A failing op offers its local substitutes (each operand's shape for an add; for a
layer, its output on the input moved to the layout it expects (a missing permute), or resized) and
the shapes the rest of the model expects there (`expected_shapes`): the other operand of the first
join downstream that the failing value meets, the residual stream it is meant to rejoin (a ConvNeXt
layer scale applied channels-first to a channels-last tensor expects the block's input shape).

Choice. Each failing node, in graph order, tries each candidate and the rest of the model is
re-propagated. Ranked by:
1. evidence against it: later layers or ops (not joins) that reject it, and nodes left unknown;
2. for a join, its preferred side (`preferred_operand`);
3. the trouble it leaves downstream: later joins that fail, or newly only work by broadcasting;
4. the candidate's order.
A later join that fails is not evidence (tier 1): it may be a bug of its own, and lining up by
chance with a wrong substitute proves nothing; so later failing joins take their own preferred side
during the trials, as the trial's values make it (a join whose transform was unknown before, or
lined up, is judged again once the trial gives it a broken transform: `Settler._trial`). Tier 3
only breaks ties among candidates nothing rejects: an op with no side of its own (an RL000) takes
the value under which the rest of the block lines up.

The preferred side of an add is the transform when the operands differ in what layers declare
(channels or features, or a stride's exact factor): it carries the block's declared width and stride
(a missing projection). It is the skip, the residual stream, when the transform is the skip's shape
permuted (a missing permute back) or differs in a size no declared stride explains (an uncropped
causal conv, a lost padding, a window reverse with swapped dims): carrying such a transform on would
make every later block fail, or line up by chance and hide their own bugs. A cat prefers its skip (a
DenseNet or U-Net concat keeps the skip's size).
"""

from __future__ import annotations

from collections import ChainMap, deque
from typing import Any, Collection, Mapping

import torch
import torch.fx as fx
from torch import nn

from reslint.joins import SkipJoin
from reslint.roles import roles_of
from reslint.trace.ops import cat_tensors_and_dim, is_add, is_elementwise
from reslint.trace.propagate import UNKNOWN, Delta, Propagation, same_value

DECLARED_ROLES = {"channels", "features", "heads"}
PREFERENCE_ROUNDS = 4  # re-propagations of a trial as later failing joins change their preferred side
EXPECTED_SEARCH = 64  # nodes visited downstream of a failing node when looking for what it rejoins


def join_operand_nodes(join: SkipJoin) -> list[fx.Node]:
    if join.kind == "add":
        return [a for a in join.node.args if isinstance(a, fx.Node)]
    tensors, _ = cat_tensors_and_dim(join.node.args, join.node.kwargs)
    return [a for a in tensors if isinstance(a, fx.Node)]


def preferred_operand(join: SkipJoin, propagation: Propagation | None = None, values: Mapping[fx.Node, Any] | None = None) -> int | None:
    """Index, among the join's tensor args, of the operand whose shape the join should take
    (its operands' `values`, by default the propagation's)."""
    wanted = join.skip if join.kind != "add" or (propagation is not None and transform_is_broken(propagation, join, values)) else join.transform
    operands = join_operand_nodes(join)
    return operands.index(wanted) if wanted in operands else None


def transform_is_broken(propagation: Propagation, join: SkipJoin, values: Mapping[fx.Node, Any] | None = None) -> bool:
    """The add's transform differs from its residual stream in a way no declared layer explains.

    Only for a skip with no weighted layer (the block's input, maybe normed): a projection on the
    skip may itself be the bug. Then the transform is suspect when it is the skip's shape permuted
    after a permute (a layout not permuted back), or when it differs in a dim no layer declares (not
    channels, features or heads) while nothing on its path resamples (no stride, pooling or
    upsampling): an uncropped causal conv, a lost padding, a window reverse with swapped dims.
    """
    values = propagation.values if values is None else values
    skip, transform = (values.get(n) for n in (join.skip, join.transform))
    if not isinstance(skip, torch.Tensor) or not isinstance(transform, torch.Tensor) or skip.dim() != transform.dim():
        return False
    if any(_weighted(propagation, node) for node in join.skip_path):
        return False
    a, b = tuple(skip.shape), tuple(transform.shape)
    if a == b:
        return False
    if sorted(a) == sorted(b) and any(_moves_dims(node) for node in join.transform_path):
        return True
    if any(_resamples(propagation, node) for node in join.transform_path):
        return False
    roles = [set(r) for r in zip(*(_roles(propagation, n, len(a)) for n in (join.skip, join.transform)))]
    return any(s != t and s != 1 and t != 1 and not roles[dim] & DECLARED_ROLES for dim, (s, t) in enumerate(zip(a, b)))


def _roles(propagation: Propagation, node: fx.Node, rank: int) -> tuple[str, ...]:
    """The node's roles as the propagation's values give them; unknown if its value there (before a
    trial changed it) is not a tensor of that rank."""
    roles = roles_of(propagation, node)
    return roles if roles is not None and len(roles) == rank else ("unknown",) * rank


def _weighted(propagation: Propagation, node: fx.Node) -> bool:
    module = propagation.module(node)
    return module is not None and any(p.dim() >= 2 for p in module.parameters())


RESAMPLING = (nn.Upsample, nn.PixelShuffle, nn.PixelUnshuffle, nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)


def _resamples(propagation: Propagation, node: fx.Node) -> bool:
    """A layer or call that changes spatial or sequence sizes on purpose: a stride, a pooling, an upsampling."""
    module = propagation.module(node)
    if module is not None:
        stride = getattr(module, "stride", 1)
        strides = stride if isinstance(stride, (tuple, list)) else (stride,)
        return isinstance(module, RESAMPLING) or any(s not in (1, None) for s in strides)
    name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
    return any(word in name for word in ("pool", "interpolate", "upsample", "pixel_shuffle", "pixel_unshuffle"))


def _moves_dims(node: fx.Node) -> bool:
    name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
    return name in ("permute", "transpose", "movedim", "swapaxes", "swapdims", "mT")


class ExpectedShapes:
    """What the rest of the model expects at a node: the other operand of the first join (an add or
    another elementwise op of two tensors) that each path from it reaches, one not computed from it."""

    def __init__(self, propagation: Propagation):
        self.prop = propagation
        self.rejoined: dict[fx.Node, list[fx.Node]] = {}  # the operands met, found once per node

    def __call__(self, node: fx.Node) -> list[tuple[int, ...]]:
        if node not in self.rejoined:
            self.rejoined[node] = self._search(node)
        shapes: list[tuple[int, ...]] = []
        for operand in self.rejoined[node]:  # their values as settled so far, not as first propagated
            value = self.prop.values.get(operand)
            if isinstance(value, torch.Tensor) and value.dim() > 1 and tuple(value.shape) not in shapes:
                shapes.append(tuple(value.shape))
        return shapes

    def _search(self, start: fx.Node) -> list[fx.Node]:
        index = self.prop.index
        found: list[fx.Node] = []
        reached = {start}
        queue = deque(start.users)
        visited = 0
        while queue and visited < EXPECTED_SEARCH and len(found) < 2:
            node = queue.popleft()
            if node in reached:
                continue
            reached.add(node)
            visited += 1
            if is_add(node) or is_elementwise(node):
                before = [a for a in node.all_input_nodes if a not in reached and not self._derives_from(a, start)]
                tensors = [a for a in before if isinstance(self.prop.values.get(a), torch.Tensor) and self.prop.values[a].dim() > 1]
                if tensors:
                    if tensors[0] not in found:
                        found.append(tensors[0])
                    continue  # this path rejoins here
            queue.extend(node.users)
        return found

    def _derives_from(self, node: fx.Node, start: fx.Node) -> bool:
        """Whether `node` is computed from `start` (a walk back that never goes above `start`)."""
        index = self.prop.index
        floor = index[start]
        stack, seen = [node], set()
        while stack:
            current = stack.pop()
            if current is start:
                return True
            if current in seen or index[current] < floor:
                continue
            seen.add(current)
            stack.extend(current.all_input_nodes)
        return False


class Settler:
    def __init__(self, propagation: Propagation, joins: list[SkipJoin]):
        self.prop = propagation
        self.joins = {join.node: join for join in joins}
        self.preferences = {join.node: preferred_operand(join, propagation) for join in joins}
        self.unknown = sum(1 for value in propagation.values.values() if value is UNKNOWN)

    def settle(self) -> None:
        if not self.prop.failures:
            return
        self.prop.expected = ExpectedShapes(self.prop)
        # Every join, failing now or once an earlier choice changes, starts on its preferred side.
        initial = {node: pick for node, pick in self.preferences.items() if pick is not None}
        changed = {node: pick for node, pick in initial.items() if node in self.prop.failures and pick != 0}
        self.prop.chosen.update(initial)
        # Failing ops (not joins) are re-run so that they offer the expected shapes too.
        rerun = {node: self.prop.chosen.get(node, 0) for node in self.prop.failures if node not in self.preferences}
        if changed or rerun:
            self._commit(*self._trial({**rerun, **changed}, fixed=rerun))
        for node in self.prop.nodes:
            failure = self.prop.failures.get(node)
            if failure is None:
                continue
            if node not in self.preferences:  # its expected shapes as the choices so far make them
                self._commit(*self._trial({node: self.prop.chosen.get(node, 0)}, fixed={node}))
                failure = self.prop.failures.get(node)
            if failure is None or len(failure.candidates) < 2:
                continue
            if node in self.joins:  # its sides as the earlier choices left them
                self.preferences[node] = preferred_operand(self.joins[node], self.prop)
            preferred = self.preferences.get(node)
            best = None
            for pick in range(len(failure.candidates)):
                delta, chosen = self._trial({node: pick}, fixed={node})
                rank = (self.evidence_against(delta), pick != preferred, self.trouble(delta, node), pick)
                if best is None or rank < best[0]:
                    best = (rank, delta, chosen)
            _, delta, chosen = best
            self._commit(delta, chosen)

    def _trial(self, chosen: dict[fx.Node, int], fixed: Collection[fx.Node] = ()) -> tuple[Delta, dict[fx.Node, int]]:
        """The rest of the model re-propagated with these picks, and each later join it leaves failing
        on its preferred side as *these* values make it, not as the values before: a join whose
        transform was unknown, or lined up by chance, prefers its transform, and kept after an earlier
        choice makes its transform a broken copy of the skip, it would carry that on (two identical
        blocks with a lost padding: the second would pass the first's shrunk map to what follows).
        Returns the delta and the picks it used (the given ones and the joins' re-preferred sides)."""
        chosen = dict(chosen)
        delta = self.prop.recompute({}, chosen=chosen)
        for _ in range(PREFERENCE_ROUNDS):
            values = ChainMap(delta.values, self.prop.values)
            moved = {}
            for join_node in delta.failures:
                join = self.joins.get(join_node)
                if join is None or join_node in fixed:
                    continue
                pick = preferred_operand(join, self.prop, values)
                if pick is not None and pick != chosen.get(join_node, self.prop.chosen.get(join_node, 0)):
                    moved[join_node] = pick
            if not moved:
                break
            chosen.update(moved)
            delta = self.prop.recompute({}, chosen=chosen)
        return delta, chosen

    def evidence_against(self, delta: Delta) -> int:
        """Failing nodes that are not joins, plus nodes left unknown, once `delta` is applied."""
        failing = sum(1 for node in self.prop.failing_after(delta) if node not in self.preferences)
        return failing + self.unknown + self._unknown_change(delta)

    def trouble(self, delta: Delta, tried: fx.Node) -> int:
        """Joins after `tried` that fail, or that only work by broadcasting, once `delta` is applied."""
        failing = sum(1 for node in self.prop.failing_after(delta) if node in self.preferences and node is not tried)
        broadcasting = 0
        for node, value in delta.values.items():
            join = self.joins.get(node)
            if join is None or node is tried or node in delta.failures or join.kind != "add" or not isinstance(value, torch.Tensor):
                continue
            operands = [delta.values.get(n, self.prop.values.get(n)) for n in (join.skip, join.transform)]
            if any(isinstance(v, torch.Tensor) and v.shape != value.shape for v in operands):
                broadcasting += 1
        return failing + broadcasting

    def _unknown_change(self, delta: Delta) -> int:
        values = self.prop.values
        return sum((value is UNKNOWN) - (values[node] is UNKNOWN) for node, value in delta.values.items())

    def _commit(self, delta: Delta, chosen: dict[fx.Node, int]) -> None:
        self.unknown += self._unknown_change(delta)
        self.prop.commit(delta, chosen)


def settle(propagation: Propagation, joins: list[SkipJoin]) -> None:
    Settler(propagation, joins).settle()
