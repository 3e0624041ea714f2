"""--diff and --fix: the findings' source edits, gathered per file and applied to the user's own files.

The workers computed each fix's edits (reslint/source_fixes.py) as plain data; here they are applied to
each file's current text from the bottom of the file up, so that an edit that adds lines does not move
the lines the others name (an edit another finding also makes is made once), giving one new text per
file. Only the user's files are edited: files below the project root (the working
directory) and outside any site-packages; a fix elsewhere (torchvision's own ResNet) stays
report-only, with a note. Unsafe fixes are applied only when asked (`--unsafe-fixes`), as in ruff.
No torch here.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field

from reslint.edits import EditError, apply_all, unified_diff
from reslint.findings import Finding, Fix, Report
from reslint.where import display_path


@dataclass
class FixPlan:
    before: dict[str, str] = field(default_factory=dict)  # path -> text as read
    after: dict[str, str] = field(default_factory=dict)  # path -> text with the edits
    fixed: list[Finding] = field(default_factory=list)  # findings whose edits are in `after`
    notes: list[str] = field(default_factory=list)  # fixes left out, each with why

    @property
    def diff(self) -> str:
        return "".join(
            unified_diff(display_path(path), self.before[path], self.after[path])
            for path in sorted(self.after) if self.after[path] != self.before[path]
        )

    @property
    def changed_files(self) -> list[str]:
        return [path for path in sorted(self.after) if self.after[path] != self.before[path]]


def plan_fixes(report: Report, unsafe: bool = False, root: str | None = None) -> FixPlan:
    """What --fix would write: the edits of every finding's fix that may be applied.

    A finding met in several modules carries one fix per instance (two blocks of different classes
    with the same bug each get their own edit): all of them are written, or none (a finding half
    fixed would still fail where it was left)."""
    plan = FixPlan()
    root = os.path.abspath(root or os.getcwd())
    seen: set[int] = set()
    for finding in report.findings:
        where = f"{finding.path}:{finding.line}: {finding.code}"
        fixes = [f for f in fixes_of(finding) if id(f) not in seen]
        if not fixes:
            continue
        seen.update(id(f) for f in fixes)
        if any(f is None for f in fixes):
            if any(f is not None and f.validated for f in fixes):
                plan.notes.append(f"{where}: some of its instances have no fix; report only")
            continue
        if not all(f.edits for f in fixes):
            if any(f.validated for f in fixes):
                plan.notes.append(f"{where}: its fix cannot be written in the code's own terms; apply it by hand")
            continue
        if not all(f.safe for f in fixes) and not unsafe:
            plan.notes.append(f"{where}: its fix is not safe (see `reslint rule {finding.code}`); --unsafe-fixes applies it")
            continue
        edits = [e for f in fixes for e in f.edits]
        outside = [e.path for e in edits if not is_user_file(e.path, root)]
        if outside:
            plan.notes.append(f"{where}: the fix would edit {display_path(outside[0])}, which is not a file of this project; report only")
            continue
        try:  # the fix applies to the files as they are
            for edit in edits:
                if edit.path not in plan.before:
                    with open(edit.path, encoding="utf-8") as handle:
                        plan.before[edit.path] = handle.read()
            for path in {e.path for e in edits}:
                apply_all(plan.before[path], [e for e in edits if e.path == path])
        except (EditError, OSError) as error:
            plan.notes.append(f"{where}: its fix no longer applies ({error}); report only")
            continue
        plan.fixed.append(finding)
    for path in plan.before:
        edits = [e for f in plan.fixed for e in _edits_of(f) if e.path == path]
        try:
            plan.after[path] = apply_all(plan.before[path], edits)
        except EditError as error:  # the fixes apply one by one but not together: none of this file's
            plan.notes.append(f"{display_path(path)}: its fixes do not apply together ({error}); report only")
            plan.fixed = [f for f in plan.fixed if not any(e.path == path for e in _edits_of(f))]
            plan.after[path] = plan.before[path]
    return plan


def fixes_of(finding: Finding) -> list[Fix | None]:
    """The finding's fixes, one per instance (distinct; None for an instance without one); just the
    finding's own fix when its instances carry none (a finding made outside the analysis)."""
    fixes = [i.fix for i in finding.instances]
    if all(f is None for f in fixes):
        fixes = [finding.fix]
    elif finding.fix is not None:
        fixes.insert(0, finding.fix)
    unique: dict[int, Fix | None] = {}
    for fix in fixes:
        unique.setdefault(id(fix), fix)
    return list(unique.values())


def _edits_of(finding: Finding) -> list:
    return [e for f in fixes_of(finding) if f is not None for e in f.edits]



def write(plan: FixPlan) -> list[str]:
    """Write the changed files; their paths.

    Each file's cached bytecode goes too: an edit that keeps the file's size (`stride=2` -> `stride=1`)
    within the second of the first import would otherwise be read back from the stale .pyc (its check is
    size and whole-second mtime), and the lint after --fix would see the old code."""
    for path in plan.changed_files:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(plan.after[path])
        try:
            os.remove(importlib.util.cache_from_source(path))
        except (OSError, NotImplementedError, ValueError):
            pass
    return plan.changed_files


def is_user_file(path: str, root: str) -> bool:
    """Below the project root and in no installed package (a venv inside the project included)."""
    path = os.path.abspath(path)
    parts = path.split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return False
    return os.path.commonpath([path, root]) == root


def apply_fixes(report: Report, unsafe: bool = False, write_files: bool = True, root: str | None = None) -> str:
    """The unified diff of the report's fixes; with `write_files`, also written to the files."""
    plan = plan_fixes(report, unsafe, root)
    if write_files:
        write(plan)
    return plan.diff
