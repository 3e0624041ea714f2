"""Choose, at each failing node, the substitute the rest of the model accepts.

The first propagation substitutes a default value where an op fails (the left operand's shape for an
add). That guess can be wrong: if the skip's shape is the intended one, the guess makes every later
layer fail too. Here each failing node tries each of its substitutes, the rest of the model is
re-propagated, and the one leaving the fewest failures wins; on a tie, the join's preferred side
(the transform for an add: it carries the block's declared channels and stride; the skip for a cat).
"""

from __future__ import annotations

import torch.fx as fx

from reslint.joins import SkipJoin
from reslint.trace.ops import cat_tensors_and_dim
from reslint.trace.propagate import Propagation


def preferred_operand(join: SkipJoin) -> int | None:
    """Index, among the join's tensor args, of the operand whose shape the join should take."""
    wanted = join.transform if join.kind == "add" else join.skip
    if join.kind == "add":
        operands = [a for a in join.node.args if isinstance(a, fx.Node)]
    else:
        tensors, _ = cat_tensors_and_dim(join.node.args, join.node.kwargs)
        operands = [a for a in tensors if isinstance(a, fx.Node)]
    return operands.index(wanted) if wanted in operands else None


def settle(propagation: Propagation, joins: list[SkipJoin]) -> None:
    preferences = {join.node: preferred_operand(join) for join in joins}
    for node in propagation.nodes:
        failure = propagation.failures.get(node)
        if failure is None or len(failure.candidates) < 2:
            continue
        preferred = preferences.get(node)
        best = None
        for pick in range(len(failure.candidates)):
            delta = propagation.recompute({}, chosen={node: pick})
            rank = (len(propagation.failing_after(delta)), pick != preferred, pick)
            if best is None or rank < best[0]:
                best = (rank, pick, delta)
        _, pick, delta = best
        propagation.commit(delta, {node: pick})
