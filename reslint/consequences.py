"""What fails downstream only because of a root failure: a note on its finding, not more findings.

Settle carries on, past each failure, the value the code meant to compute there, so later layers
fail only for bugs of their own. The consequences of a failure are what that choice avoided: the
failures that appear when the failing op's result is carried on as written (each of its own
substitutes other than the settled one) and are absent as settled. Other failing nodes are a
firewall: past them the settled values go on, so what follows another bug is not counted here.
"""

from __future__ import annotations

import torch.fx as fx

from reslint.findings import Finding
from reslint.trace.ops import is_add, is_cat
from reslint.trace.propagate import Propagation
from reslint.where import display_path


def consequences_of(propagation: Propagation) -> dict[fx.Node, list[fx.Node]]:
    """For each failing node, the later nodes that fail only when its result is carried on as written."""
    failing = {node for node, failure in propagation.failures.items() if not failure.limitation}
    found: dict[fx.Node, list[fx.Node]] = {}
    for root in failing:
        failure = propagation.failures[root]
        own = failure.local if failure.local is not None else len(failure.candidates)
        chosen = propagation.chosen.get(root, 0)
        caused: set[fx.Node] = set()
        for pick in range(own):
            if pick == chosen:
                continue
            try:
                delta = propagation.recompute({}, chosen={root: pick}, firewall=failing - {root})
            except Exception:
                continue
            caused |= {
                node for node in propagation.failing_after(delta) - failing
                if not delta.failures[node].limitation
            }
        if caused:
            found[root] = sorted(caused, key=propagation.index.__getitem__)
    return found


def describe(node: fx.Node) -> str:
    source = node.meta.get("source")
    module = node.meta.get("module_path")
    at = f"{display_path(source.path)}:{source.line}" if source else node.name
    where = f"{at} in {module}" if module else at
    if is_add(node):
        what = "add"
    elif is_cat(node):
        what = "cat"
    elif node.op == "call_module":
        what = str(node.target)
    else:
        target = node.target
        what = target if isinstance(target, str) else getattr(target, "__name__", str(target))
    return f"{where}: {what} fails"


def attach_consequences(propagation: Propagation, findings: list[Finding]) -> None:
    """Write each failure's consequences onto the finding reported at its node."""
    by_location: dict[tuple, list[str]] = {}
    for root, caused in consequences_of(propagation).items():
        by_location.setdefault(_location(root), []).extend(describe(node) for node in caused)
    for finding in findings:
        notes = by_location.get((finding.path, finding.line, finding.column, finding.module))
        if notes:
            finding.consequences = list(dict.fromkeys(notes))


def _location(node: fx.Node) -> tuple:
    source = node.meta.get("source")
    if source is None:
        return ("", 0, 0, node.meta.get("module_path", ""))
    return (display_path(source.path), source.line, source.column, node.meta.get("module_path", ""))
