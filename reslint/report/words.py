"""What the text formats say about a finding beyond its message: where else it occurs, what it breaks.

"2 instances: stages.1.0, stages.2.0", "in 11 of 12 BasicBlocks: layers.0–10", and for the failures
that follow only from it, "12 later ops fail only because of this: a; b; c; … and 9 more".
"""

from __future__ import annotations

from typing import Iterable

from reslint.findings import Finding, Instance

MANY = 4  # from this many instances on, say "in N of M blocks" rather than list them one by one
LISTED = 6  # pieces of a module list shown before "… and K more"


def describe_instances(finding: Finding) -> str:
    """The modules a finding occurs in, in a few words; "" when it occurs in one only."""
    instances = finding.instances
    if len(instances) < 2:
        return ""
    modules = list(dict.fromkeys(i.module for i in instances))
    listed = module_list(modules)
    if len(instances) < MANY:
        return f"{len(instances)} instances: {listed}"
    total = finding.modules_of_class
    if total and len(modules) == len(instances) and len(modules) <= total:
        blocks = _blocks(instances)
        if len(modules) == total:
            return f"in all {total} {blocks}: {listed}"
        return f"in {len(modules)} of {total} {blocks}: {listed}"
    return f"{len(instances)} instances: {listed}"


def _blocks(instances: list[Instance]) -> str:
    """"Blocks" for a plural of the instances' class: BasicBlock → BasicBlocks, Bottleneck → Bottleneck blocks."""
    names = {i.module_type for i in instances}
    name = names.pop() if len(names) == 1 else ""
    if not name:
        return "blocks"
    return f"{name}s" if name.lower().endswith("block") else f"{name} blocks"


def module_list(paths: list[str]) -> str:
    """Module paths, runs of three or more numbered siblings compressed: "layers.0–10", "stages.1.0, stages.2.0"."""
    pieces = [_run_text(run) for run in _runs(sorted(paths, key=_natural))]
    if len(pieces) > LISTED:
        shown = LISTED - 1
        pieces = [*pieces[:shown], f"… and {len(pieces) - shown} more"]
    return ", ".join(pieces)


def _natural(path: str) -> list:
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in path.split(".")]


def _runs(paths: Iterable[str]) -> list[list[str]]:
    """Consecutive paths that differ in one numbered part, counting up by one, as runs."""
    runs: list[list[str]] = []
    position: int | None = None  # the part that counts up in the current run
    for path in paths:
        if runs:
            step = _step(runs[-1][-1], path)
            if step is not None and (position is None or step == position):
                runs[-1].append(path)
                position = step
                continue
        runs.append([path])
        position = None
    return runs


def _step(previous: str, path: str) -> int | None:
    """The index of the one part in which `path` counts one up from `previous`; None otherwise."""
    a, b = previous.split("."), path.split(".")
    if len(a) != len(b):
        return None
    differing = [k for k in range(len(a)) if a[k] != b[k]]
    if len(differing) != 1:
        return None
    k = differing[0]
    if a[k].isdigit() and b[k].isdigit() and int(b[k]) == int(a[k]) + 1:
        return k
    return None


def _run_text(run: list[str]) -> str:
    if len(run) < 3:
        return ", ".join(run)
    first, last = run[0].split("."), run[-1].split(".")
    k = next(k for k in range(len(first)) if first[k] != last[k])
    return ".".join([*first[:k], f"{first[k]}–{last[k]}", *first[k + 1:]])


def consequences_count(finding: Finding) -> str:
    """"12 later ops fail only because of this"; "" when none do."""
    n = len(finding.consequences)
    if not n:
        return ""
    return f"{n} later op{'s' * (n != 1)} {'fail' if n != 1 else 'fails'} only because of this"


def describe_consequences(finding: Finding, limit: int = 3) -> str:
    """The count and the first few consequences: "2 later ops fail only because of this: a; b"."""
    count = consequences_count(finding)
    if not count:
        return ""
    here = f"{finding.path}:"  # the finding's own file goes without saying
    items = [f"line {c.removeprefix(here)}" if finding.path and c.startswith(here) else c for c in finding.consequences]
    shown = "; ".join(items[:limit]) + (f"; … and {len(items) - limit} more" if len(items) > limit else "")
    return f"{count}: {shown}"

