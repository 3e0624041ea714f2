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
from reslint.findings import Finding, Report
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
    """What --fix would write: the edits of every finding's fix that may be applied."""
    plan = FixPlan()
    root = os.path.abspath(root or os.getcwd())
    seen: set[int] = set()
    for finding in report.findings:
        fix = finding.fix
        where = f"{finding.path}:{finding.line}: {finding.code}"
        if fix is None or id(fix) in seen:
            continue
        seen.add(id(fix))
        if not fix.edits:
            if fix.validated:
                plan.notes.append(f"{where}: its fix cannot be written in the code's own terms; apply it by hand")
            continue
        if not fix.safe and not unsafe:
            plan.notes.append(f"{where}: its fix is not safe (see `reslint rule {finding.code}`); --unsafe-fixes applies it")
            continue
        outside = [e.path for e in fix.edits if not is_user_file(e.path, root)]
        if outside:
            plan.notes.append(f"{where}: the fix would edit {display_path(outside[0])}, which is not a file of this project; report only")
            continue
        try:  # the fix applies to the files as they are
            for edit in fix.edits:
                if edit.path not in plan.before:
                    with open(edit.path, encoding="utf-8") as handle:
                        plan.before[edit.path] = handle.read()
            for path in {e.path for e in fix.edits}:
                apply_all(plan.before[path], [e for e in fix.edits if e.path == path])
        except (EditError, OSError) as error:
            plan.notes.append(f"{where}: its fix no longer applies ({error}); report only")
            continue
        plan.fixed.append(finding)
    for path in plan.before:
        edits = [e for f in plan.fixed for e in f.fix.edits if e.path == path]  # type: ignore[union-attr]
        try:
            plan.after[path] = apply_all(plan.before[path], edits)
        except EditError as error:  # the fixes apply one by one but not together: none of this file's
            plan.notes.append(f"{display_path(path)}: its fixes do not apply together ({error}); report only")
            plan.fixed = [f for f in plan.fixed if not any(e.path == path for e in f.fix.edits)]  # type: ignore[union-attr]
            plan.after[path] = plan.before[path]
    return plan



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
