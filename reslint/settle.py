"""Choose, at each failing node, the substitute the rest of the model accepts.

The first propagation substitutes a default value where an op fails (the left operand's shape for an
add). That guess can be wrong: if the skip's shape is the intended one, the guess makes every later
layer fail too. Here each failing node tries each of its substitutes and the rest of the model is
re-propagated. What counts as evidence against a substitute is a later layer or op that rejects it,
and every node it leaves unknown (a layer that fails with no substitute ends what can be checked).
A later join that fails is not evidence: it may be a bug of its own, and lining up by chance with a
wrong substitute proves nothing. So later failing joins take their own preferred side during the
trials, and the preferred side wins ties: the transform for an add (it carries the block's declared
channels and stride), the skip for a cat (a DenseNet or U-Net concat keeps the skip's size).
"""

from __future__ import annotations

import torch.fx as fx

from reslint.joins import SkipJoin
from reslint.trace.ops import cat_tensors_and_dim
from reslint.trace.propagate import UNKNOWN, Delta, Propagation


def preferred_operand(join: SkipJoin) -> int | None:
    """Index, among the join's tensor args, of the operand whose shape the join should take."""
    wanted = join.transform if join.kind == "add" else join.skip
    if join.kind == "add":
        operands = [a for a in join.node.args if isinstance(a, fx.Node)]
    else:
        tensors, _ = cat_tensors_and_dim(join.node.args, join.node.kwargs)
        operands = [a for a in tensors if isinstance(a, fx.Node)]
    return operands.index(wanted) if wanted in operands else None


class Settler:
    def __init__(self, propagation: Propagation, joins: list[SkipJoin]):
        self.prop = propagation
        self.preferences = {join.node: preferred_operand(join) for join in joins}
        self.unknown = sum(1 for value in propagation.values.values() if value is UNKNOWN)

    def settle(self) -> None:
        if not self.prop.failures:
            return
        # Every join, failing now or once an earlier choice changes, starts on its preferred side.
        initial = {node: pick for node, pick in self.preferences.items() if pick is not None}
        changed = {node: pick for node, pick in initial.items() if node in self.prop.failures and pick != 0}
        self.prop.chosen.update(initial)
        if changed:
            self._commit(self.prop.recompute({}, chosen=changed), changed)
        for node in self.prop.nodes:
            failure = self.prop.failures.get(node)
            if failure is None or len(failure.candidates) < 2:
                continue
            preferred = self.preferences.get(node)
            best = None
            for pick in range(len(failure.candidates)):
                delta = self.prop.recompute({}, chosen={node: pick})
                rank = (self.evidence_against(delta), pick != preferred, pick)
                if best is None or rank < best[0]:
                    best = (rank, pick, delta)
            _, pick, delta = best
            self._commit(delta, {node: pick})

    def evidence_against(self, delta: Delta) -> int:
        """Failing nodes that are not joins, plus nodes left unknown, once `delta` is applied."""
        failing = sum(1 for node in self.prop.failing_after(delta) if node not in self.preferences)
        return failing + self.unknown + self._unknown_change(delta)

    def _unknown_change(self, delta: Delta) -> int:
        values = self.prop.values
        return sum((value is UNKNOWN) - (values[node] is UNKNOWN) for node, value in delta.values.items())

    def _commit(self, delta: Delta, chosen: dict[fx.Node, int]) -> None:
        self.unknown += self._unknown_change(delta)
        self.prop.commit(delta, chosen)


def settle(propagation: Propagation, joins: list[SkipJoin]) -> None:
    Settler(propagation, joins).settle()
