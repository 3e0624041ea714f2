"""Whether an `F.pad` statement whose amounts are reordered (axes swapped: `[dY // 2, ..., dX - dX // 2]`
to `[dX // 2, ..., dY - dY // 2]`) is safe everywhere the statement ran, from the analysis' run.

The fix's validation changed the pad of the broken instance only. The rewritten line runs in every
instance, so here it is checked as it will be: every pad the line made gets the new order of its own
amounts (the values it computed), the model re-runs from there, and
  - an instance that ran on the model's own values and was right must pad by what it did (the amounts in
    the new order equal the old ones there: both 0 when its sizes already matched);
  - no join on the finding's line fails any more, and nothing fails that did not fail before.
An instance that ran only after a failure (on a substitute) was never proven right: the re-run decides.
"""

from __future__ import annotations

import ast
import copy
import os
import textwrap
from typing import Any

import torch.fx as fx

from reslint.layer_runs import LayerRuns


def reordered_pad(old_statement: ast.stmt, new_code: str) -> tuple[list[int], list[bool]] | None:
    """For each position of the new pad list, the old position it takes its amount from, and which old
    amounts are written as numbers; None when the new statement is not the old one with its single pad
    call's amounts reordered."""
    try:
        new = ast.parse(textwrap.dedent(new_code)).body
    except SyntaxError:
        return None
    if len(new) != 1:
        return None
    old_statement = copy.deepcopy(old_statement)
    old_pads, new_pads = _pad_lists(old_statement), _pad_lists(new[0])
    if len(old_pads) != 1 or len(new_pads) != 1:
        return None
    old_items = [ast.dump(e) for e in old_pads[0].elts]
    new_items = [ast.dump(e) for e in new_pads[0].elts]
    if sorted(old_items) != sorted(new_items) or len(set(old_items)) != len(old_items) or old_items == new_items:
        return None
    order = [old_items.index(item) for item in new_items]
    old_pads[0].elts = new_pads[0].elts  # nothing else may differ
    literal = [isinstance(e, ast.Constant) for e in _pad_lists(copy.deepcopy(new[0]))[0].elts]
    literal = [literal[order.index(i)] for i in range(len(order))]
    return (order, literal) if ast.dump(old_statement) == ast.dump(new[0]) else None


def _pad_lists(tree: ast.AST) -> list[ast.List | ast.Tuple]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and (node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")) == "pad":
            amounts = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "pad"), None)
            if isinstance(amounts, (ast.List, ast.Tuple)):
                found.append(amounts)
    return found


def reordered_pad_safe(runs: LayerRuns, path: str, first_line: int, last_line: int, join_line: int,
                       reordered: tuple[list[int], list[bool]], broken_modules: set[str], built_modules: set[str]) -> bool:
    """Every built instance ran the pad line; the right ones pad as before; re-run with every pad of the
    line reordered, no join of the finding's line fails and nothing newly fails."""
    propagation = runs.propagation
    order, literal = reordered
    path = os.path.abspath(path)

    def on_lines(node: fx.Node, first: int, last: int) -> bool:
        source = node.meta.get("source")
        return source is not None and os.path.abspath(source.path) == path and first <= source.line <= last

    pads = [n for n in propagation.nodes if n.op == "call_function" and getattr(n.target, "__name__", "") == "pad"
            and on_lines(n, first_line, last_line)]
    if not pads or built_modules - {n.meta.get("module_path", "") for n in pads}:
        return False  # an instance that never ran the line: nothing proves what the new line does there
    overrides: dict[fx.Node, Any] = {}
    for node in pads:
        amounts = node.args[1] if len(node.args) > 1 else None
        if not isinstance(amounts, (list, tuple)) or len(amounts) != len(order) or "pad" in node.kwargs:
            return False
        values = [propagation.values.get(a) if isinstance(a, fx.Node) else a for a in amounts]
        if not all(type(v) is int for v in values):
            return False
        right = node.meta.get("module_path", "") not in broken_modules and not runs.after_failure(node)
        if not right and any(not isinstance(a, fx.Node) and not lit for a, lit in zip(amounts, literal)):
            return False  # an amount the source computes, recorded as a number (an eager run): a re-run keeps it
        if right and [values[i] for i in order] != values:
            return False  # a right instance would pad otherwise
        overrides[node] = lambda args, kwargs, target=node.target: target(args[0], [args[1][i] for i in order], *args[2:], **kwargs)
    try:
        delta = propagation.recompute(overrides)
    except Exception:  # noqa: BLE001
        return False
    failing = propagation.failing_after(delta)
    return failing <= set(propagation.failures) and not any(on_lines(n, join_line, join_line) for n in failing)
