"""--diff and --fix: the findings' source edits, gathered per file and applied to the user's own files.

The workers computed each fix's edits (reslint/source_fixes.py) as plain data; here they are applied in
order to each file's current text (an edit another finding already made is not made twice), giving one
new text per file. Only the user's files are edited: files below the project root (the working
directory) and outside any site-packages; a fix elsewhere (torchvision's own ResNet) stays
report-only, with a note. Unsafe fixes are applied only when asked (`--unsafe-fixes`), as in ruff.
No torch here.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field

from reslint.edits import EditError, unified_diff
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
        staged = dict(plan.after)
        try:
            for edit in fix.edits:
                if edit.path not in plan.before:
                    with open(edit.path, encoding="utf-8") as handle:
                        plan.before[edit.path] = handle.read()
                staged[edit.path] = edit.apply(staged.get(edit.path, plan.before[edit.path]))
        except (EditError, OSError) as error:
            plan.notes.append(f"{where}: its fix no longer applies ({error}); report only")
            continue
        plan.after = staged
        plan.fixed.append(finding)
    for path in plan.before:
        plan.after.setdefault(path, plan.before[path])
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
