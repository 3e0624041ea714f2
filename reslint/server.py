"""`reslint server`: a Language Server Protocol server over stdio, for shape errors while you edit.

It imports torch and reslint's analysis once (and the installed libraries the configured targets
import). When a Python file is opened or saved it lints what that file affects, as a pre-commit run
with that file would (reslint.plan): the configured targets whose files, or the project files they
import, include it, and the nn.Module classes defined in it that build (those that cannot are skipped
quietly). Each target runs in a child forked from the warm server (reslint.runner.run_jobs: fresh
import of the user's modules, captured output, a timeout), so a model that hangs, crashes or exits
becomes a diagnostic, never a dead server.

The config applies as on the command line (nearest pyproject.toml above the saved file): select,
ignore, rule options, timeout, jobs, max-build-memory; the editor's initializationOptions may set
timeout and jobs.

What an editor gets:
- diagnostics: the rule code (linked to the rule's documentation), the message, both shapes and the
  fix; a target that could not be (wholly) analyzed is a diagnostic at its class (or line 1), not
  dropped, and so is a model of the saved file that the last lint analyzed and that no longer can be;
- code actions: a finding's fix as the edit `reslint --fix` writes ("quickfix" when the fix is safe,
  "quickfix.unsafe" when only --unsafe-fixes would write it), and every safe fix of the file at once
  ("source.fixAll.reslint");
- hover on a join's line: both operands' shapes, for every skip join the last lint saw there (the
  analysis keeps them when a job asks: the join-sites option, reslint.join_sites).

The protocol owns the real stdin/stdout; fd 1 is pointed at stderr so that nothing printed in this
process (a warning, a library's banner) can corrupt it. Lints run one after the other on a worker
thread, so hover and code actions answer while a model is linted.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from dataclasses import dataclass, replace
from typing import Any, Callable

import reslint.quiet_torch  # noqa: F401  (before anything imports torch)
from reslint.daemon import learned_from, preload, project_root, read_learned, remember_learned
from reslint.findings import VERSION, Finding, Report, TargetResult
from reslint.join_sites import OPTION as JOIN_SITES
from reslint.join_sites import JoinSite

DEFAULT_TIMEOUT = 60.0  # seconds per target while editing (the CLI's is 600): a hang is reported sooner
SOURCE = "reslint"
QUICKFIX_KIND = "quickfix"
UNSAFE_KIND = "quickfix.unsafe"  # a sub-kind: clients asking for quick fixes get them, marked
FIX_ALL_KIND = "source.fixAll.reslint"  # every safe fix of a file at once (editors run it on save if told)


# ---- what a lint leaves: problems per file, joins per line ----


@dataclass
class Problem:
    """One diagnostic to be: a finding, or a target that errored or was not wholly analyzed."""

    path: str  # absolute
    line: int  # 1-based
    column: int  # 1-based, 0: the whole line
    end_column: int
    severity: str  # error | warning | information
    message: str
    code: str | None = None
    finding: Finding | None = None


class Results:
    """The last lint of every job, and what it says per file. Read by the protocol thread, written by the worker."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_job: dict[str, tuple[list[Problem], list[JoinSite]]] = {}

    def replace(self, job_key: str, problems: list[Problem], joins: list[JoinSite]) -> set[str]:
        """Store a job's new results; the files whose diagnostics may have changed."""
        with self.lock:
            old_problems, old_joins = self.by_job.get(job_key, ([], []))
            self.by_job[job_key] = (problems, joins)
        return {p.path for p in old_problems + problems}

    def problems(self, path: str) -> list[Problem]:
        seen, found = set(), []
        with self.lock:
            entries = list(self.by_job.values())
        for problems, _ in entries:
            for problem in problems:
                key = (problem.line, problem.column, problem.code, problem.message)
                if problem.path == path and key not in seen:
                    seen.add(key)
                    found.append(problem)
        return sorted(found, key=lambda p: (p.line, p.column, p.code or ""))

    def joins(self, path: str, line: int) -> list[JoinSite]:
        with self.lock:
            entries = list(self.by_job.values())
        return [j for _, joins in entries for j in joins if j.path == path and j.line == line]


def problems_of(result: TargetResult, saved: str, say_skipped: bool = False) -> list[Problem]:
    """A target's findings, its error and its unanalyzed parts, as problems; a skipped target says
    nothing, unless `say_skipped` (it was analyzed by the last lint: its findings must not just vanish)."""
    problems = [
        Problem(os.path.abspath(f.path), f.line, f.column, f.end_column, f.severity, finding_message(f), f.code, f)
        for f in result.findings if f.path and f.line
    ]
    if result.status == "skipped" and not say_skipped:
        return problems
    path, line = target_location(result.target, saved)
    if result.status == "skipped":
        problems.append(Problem(path, line, 0, 0, "warning", f"reslint no longer analyzes {result.target}: {result.error}"))
    if result.status == "error":
        at_path, at_line = error_location(result.error or "") or phase_location(result.error or "", path) or (path, line)
        problems.append(Problem(at_path, at_line, 0, 0, "error", f"reslint could not analyze {result.target}: {result.error}"))
    for reason in result.incomplete:
        problems.append(Problem(path, line, 0, 0, "warning", f"reslint did not wholly analyze {result.target}: {reason}"))
    return problems


def finding_message(finding: Finding) -> str:
    """The message, both shapes, and the fix with its code, as the full format says them."""
    lines = [finding.message]
    lines += [f"{role}: {shape}" for role, shape in finding.shapes.items() if shape is not None]
    fix = finding.fix
    if fix is not None:
        state = "validated" if fix.validated else "not validated"
        lines.append(f"fix ({fix.kind}, {state}): {fix.description}".rstrip(": "))
        lines += [f"    {line}" for line in fix.code.splitlines()]
    lines += [f"then: {note}" for note in finding.consequences]
    return "\n".join(lines)


USER_LOCATION = re.compile(r" at (?P<path>[^\s:]+\.py):(?P<line>\d+)\b")


def error_location(error: str) -> tuple[str, int] | None:
    """The user's line an error names (`... while running the forward of Net at m.py:14`), if any."""
    for match in reversed(list(USER_LOCATION.finditer(error))):
        path = os.path.abspath(match["path"])
        if os.path.isfile(path):
            return path, int(match["line"])
    return None


CLASS_OR_DEF = "^[ \t]*(?:class|def)[ \t]+{name}\\b"
PHASE = re.compile(r" while (?:building|running the forward of) (?P<name>[A-Za-z_][\w.]*)")


def phase_location(error: str, path: str) -> tuple[str, int] | None:
    """A worker killed or timed out without a user line: the class it was building or running
    (`... killed by SIGKILL while running the forward of Net`), when the target's file defines it."""
    match = PHASE.search(error)
    if match is None or not path.endswith(".py"):
        return None
    pattern = re.compile(CLASS_OR_DEF.format(name=re.escape(match["name"].rpartition(".")[2])))
    for number, text in enumerate(_lines(path), 1):
        if pattern.match(text):
            return path, number
    return None


def target_location(target: str, saved: str) -> tuple[str, int]:
    """Where a target's own problems go: its class (or factory) in its file, else line 1 of the saved file."""
    from reslint.errors import TargetError
    from reslint.target import parse_target

    try:
        spec = parse_target(target)
    except TargetError:
        return saved, 1
    if not spec.is_file or not os.path.isfile(spec.source):
        return saved, 1
    path = os.path.abspath(spec.source)
    if spec.name:
        pattern = re.compile(CLASS_OR_DEF.format(name=re.escape(spec.name.rpartition(".")[2])))
        for number, text in enumerate(_lines(path), 1):
            if pattern.match(text):
                return path, number
    return path, 1


def _lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().splitlines()
    except OSError:
        return []


# ---- hover: the joins each lint saw (reslint.join_sites, kept by the analysis when a job asks) ----


def hover_text(joins: list[JoinSite], problems: list[Problem]) -> str | None:
    """Markdown: each distinct join on the line with its operands' shapes (repeated blocks once, counted)."""
    entries: dict[tuple, list[str]] = {}
    for join in joins:
        shapes = tuple((role, tuple(shape) if shape else None) for role, shape in join.shapes.items())
        entries.setdefault((join.kind, shapes), []).append(f"{join.module or 'model'} ({join.module_type})" if join.module_type else (join.module or "model"))
    lines = []
    for (kind, shapes), modules in list(entries.items())[:6]:
        where = modules[0] + (f" and {len(modules) - 1} more" if len(modules) > 1 else "")
        lines.append(f"**reslint** skip join ({'residual add' if kind == 'add' else 'concat'}) in {where}")
        lines += [f"- {role}: `{list(shape) if shape else 'unknown'}`" for role, shape in shapes]
    if not lines:  # no join recorded there (the target errored): the findings' shapes
        for problem in problems:
            if problem.finding is not None:
                lines.append(f"**reslint** {problem.code} in {problem.finding.module or 'model'}")
                lines += [f"- {role}: `{shape}`" for role, shape in problem.finding.shapes.items()]
    return "\n".join(lines) or None


# ---- code actions: a fix as an edit ----


@dataclass
class LineEdit:
    """Replace lines start..end (1-based, inclusive) of path with text (whole lines, each ending in a
    newline); end = start - 1 inserts the text before line start."""

    path: str
    start: int
    end: int
    text: str


def fix_edits(finding: Finding, root: str | None = None) -> list[LineEdit]:
    """The lines a finding's fix changes.

    What `reslint --fix --unsafe-fixes` would write for this finding alone (reslint.apply: its edits
    applied to the files as they are, only the project's own files), as the changed line ranges;
    nothing when --fix would refuse it (a file outside the project, a fix that no longer applies).
    A fix without edits: its unified diff, else its statement (Fix.line/end_line) with fix.code
    indented as the original; none for a layer to paste (the diagnostic's message carries it).
    """
    fix = finding.fix
    if fix is None:
        return []
    if fix.edits:
        return _planned_edits([finding], unsafe=True, root=root)
    diff = getattr(fix, "diff", None)
    if diff:
        edits = diff_edits(diff)
        if edits:
            return edits
    if fix.line and fix.end_line and finding.path:
        path = os.path.abspath(finding.path)
        lines = _lines(path)
        if not 1 <= fix.line <= fix.end_line <= len(lines):
            return []
        indent = re.match(r"[ \t]*", lines[fix.line - 1]).group(0)
        code = fix.code.splitlines() or [""]
        body = "".join(f"{indent}{line}\n" if line.strip() else "\n" for line in code)
        return [LineEdit(path, fix.line, fix.end_line, body)]
    return []


def safe_fix_edits(findings: list[Finding], root: str | None = None) -> list[LineEdit]:
    """What `reslint --fix` writes for these findings (their safe fixes only), as changed line ranges."""
    fixable = [f for f in findings if f.fix is not None and f.fix.safe and f.fix.edits]
    return _planned_edits(fixable, unsafe=False, root=root) if fixable else []


_PLANNED: dict[tuple, tuple[list[Finding], list[LineEdit]]] = {}  # editors ask for code actions on every cursor move
PLANNED_KEPT = 64


def _planned_edits(findings: list[Finding], unsafe: bool, root: str | None) -> list[LineEdit]:
    """What reslint.apply.plan_fixes writes for these findings, as changed line ranges; the same
    answer for the same fixes while the files they edit are unchanged (applying them parses each file)."""
    from reslint.apply import plan_fixes

    fixes = [f.fix for f in findings] + [i.fix for f in findings for i in f.instances if i.fix is not None]
    paths = sorted({edit.path for fix in fixes if fix is not None for edit in fix.edits})  # each instance's fix too
    key = (tuple(id(f.fix) for f in findings), unsafe, root or os.getcwd(), tuple(_stamp(p) for p in paths))
    if key in _PLANNED:  # the findings are kept with the answer: their ids cannot be reused meanwhile
        return _PLANNED[key][1]
    targets = [TargetResult(target=f.target, status="findings", findings=[f]) for f in findings]
    plan = plan_fixes(Report(targets), unsafe=unsafe, root=root)
    edits = [edit for path in plan.changed_files for edit in changed_lines(path, plan.before[path], plan.after[path])]
    if len(_PLANNED) >= PLANNED_KEPT:
        del _PLANNED[next(iter(_PLANNED))]
    _PLANNED[key] = (list(findings), edits)
    return edits


def _stamp(path: str) -> tuple:
    try:
        info = os.stat(path)
    except OSError:
        return (path, None)
    return (path, info.st_mtime_ns, info.st_size)


def changed_lines(path: str, before: str, after: str) -> list[LineEdit]:
    """The line ranges in which two texts of a file differ, as edits that turn one into the other."""
    import difflib

    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    return [
        LineEdit(os.path.abspath(path), i1 + 1, i2, "".join(new[j1:j2]))  # i1 == i2: an insertion before line i1 + 1
        for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"
    ]


HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")


def diff_edits(diff: str) -> list[LineEdit]:
    """Line edits from a unified diff: each hunk replaces its old lines with its new ones."""
    edits: list[LineEdit] = []
    path = None
    lines = diff.splitlines(keepends=True)
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("+++ "):
            name = line[4:].rstrip("\n").split("\t")[0]
            path = os.path.abspath(name[2:] if name.startswith("b/") and not os.path.exists(name) else name)
        elif line.startswith("@@") and path:
            match = HUNK.match(line)
            if not match:
                return []
            start, count = int(match[1]), int(match[2] if match[2] is not None else 1)
            new: list[str] = []
            index += 1
            while index < len(lines) and not lines[index].startswith(("@@", "--- ", "+++ ")):
                body = lines[index]
                if body.startswith((" ", "+")):
                    new.append(body[1:] if body.endswith("\n") else body[1:] + "\n")
                elif body.startswith("\\"):  # "\ No newline at end of file"
                    pass
                index += 1
            if count == 0:  # pure insertion after line `start`
                edits.append(LineEdit(path, start + 1, start, "".join(new)))
            else:
                edits.append(LineEdit(path, start, start + count - 1, "".join(new)))
            continue
        index += 1
    return edits


@dataclass
class Action:
    """A code action to offer: a title, its kind, the line edits, and the problem it fixes (if one)."""

    title: str
    kind: str
    edits: list[LineEdit]
    problem: Problem | None = None
    preferred: bool = False


def code_actions(problems: list[Problem], first: int, last: int, only: list[str] | None = None, root: str | None = None) -> list[Action]:
    """The fixes of the problems on lines first..last (1-based): a safe one as a quick fix, the others as
    `quickfix.unsafe`, each with the edits `reslint --fix` (`--unsafe-fixes`) would write; and every
    safe fix of the file at once (`source.fixAll.reslint`). `only`: the kinds the editor asked for
    (LSP kinds nest: `quickfix` includes `quickfix.unsafe`)."""

    def wanted(kind: str) -> bool:
        return not only or any(kind == k or kind.startswith(f"{k}.") for k in only)

    actions = []
    for problem in problems:
        finding = problem.finding
        if finding is None or finding.fix is None or not first <= problem.line <= last:
            continue
        safe = bool(finding.fix.safe)
        kind = QUICKFIX_KIND if safe else UNSAFE_KIND
        if not wanted(kind):
            continue
        edits = fix_edits(finding, root)
        if edits:
            title = f"reslint: {finding.fix.description or finding.fix.kind} ({finding.code})" + ("" if safe else " (unsafe)")
            actions.append(Action(title, kind, edits, problem, preferred=safe))
    if wanted(FIX_ALL_KIND):
        edits = safe_fix_edits([p.finding for p in problems if p.finding is not None], root)
        if edits:
            actions.append(Action("reslint: apply every safe fix in this file", FIX_ALL_KIND, edits))
    return actions


# ---- columns: Python's are UTF-8 bytes, LSP's are UTF-16 units ----


def utf16_column(text: str, byte_column: int) -> int:
    """0-based UTF-16 offset of a 1-based UTF-8 byte column of a line (0 when unknown)."""
    if byte_column <= 0:
        return 0
    prefix = text.encode("utf-8")[: byte_column - 1].decode("utf-8", errors="ignore")
    return len(prefix.encode("utf-16-le")) // 2


def line_length16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# ---- the linter: what to lint for a saved file, run on a worker thread ----


class Linter:
    """Lints the files it is given, one at a time on its own thread, and reports the changed files."""

    def __init__(self, on_changed: Callable[[set[str]], None], timeout: float | None = None, jobs: int | None = None) -> None:
        self.on_changed = on_changed
        self.timeout = timeout
        self.jobs = jobs
        self.results = Results()
        self.pending: list[str] = []
        self.condition = threading.Condition()
        self.learned: list[str] = []
        self.root = project_root()  # whose .reslint/imports.json says what earlier lints' models imported
        self.analyzed: dict[str, set[str]] = {}  # discovered job -> its models the last lint analyzed
        self.thread = threading.Thread(target=self._loop, name="reslint-lint", daemon=True)
        self.thread.start()

    def request(self, path: str) -> None:
        """Lint this file soon; saving it again before its turn does not queue it twice."""
        with self.condition:
            if path not in self.pending:
                self.pending.append(path)
            self.condition.notify()

    def _loop(self) -> None:
        # What earlier lints of this project imported (the daemon's or a server's): before the first
        # lint, on this thread, not on the protocol's (initialize answers at once; a save waits here,
        # as its child would otherwise import them itself, and the next child again).
        preload(read_learned(self.root))
        while True:
            with self.condition:
                while not self.pending:
                    self.condition.wait()
                path = self.pending.pop(0)
            try:
                changed = self.lint(path)
            except Exception as error:  # noqa: BLE001  reslint's own bug: said on the file, the server goes on
                logging.getLogger(__name__).exception("linting %s", path)
                problem = Problem(path, 1, 0, 0, "error", f"reslint failed on this file: {type(error).__name__}: {error}")
                changed = self.results.replace(f"internal:{path}", [problem], [])
            else:
                changed |= self.results.replace(f"internal:{path}", [], [])
            self.on_changed(changed | {path})
            if self.learned:  # installed packages the models imported: now, while idle, for every later lint
                remember_learned(self.root, self.learned)
                preload(self.learned)
                self.learned = []

    def lint(self, path: str) -> set[str]:
        """Lint what `path` affects; the files whose problems changed."""
        from reslint.config import load_config
        from reslint.errors import TargetError
        from reslint.materialize import set_build_budget
        from reslint.plan import plan_jobs
        from reslint.runner import run_jobs

        try:
            config = load_config(os.path.dirname(path))
        except TargetError as error:
            return self.results.replace(f"config:{path}", [Problem(path, 1, 0, 0, "error", str(error))], [])
        changed = self.results.replace(f"config:{path}", [], [])
        options = {**config.options, JOIN_SITES: True}  # the analysis keeps each join's shapes, for hover
        select = tuple(config.select) if config.select else None
        ignore = tuple(config.ignore) if config.ignore else None
        try:
            jobs = plan_jobs([path], config, [], select, ignore, config.frontend or "auto", options)
        except TargetError as error:
            return changed | self.results.replace(f"plan:{path}", [Problem(path, 1, 0, 0, "error", str(error))], [])
        changed |= self.results.replace(f"plan:{path}", [], [])
        # As pre-commit's changed files: a saved file's classes that cannot be built are each skipped
        # (and said only if the last lint analyzed them), rather than the file being one error.
        jobs = [replace(job, lenient=True) if job.discovered else job for job in jobs]
        if not any(job.target == path for job in jobs):  # no longer a file with models: forget its old ones
            changed |= self.results.replace(path, [], [])
        if not jobs:
            return changed
        workers = max(1, min(len(jobs), self.jobs or config.jobs or 2))
        timeout = self.timeout or config.timeout or DEFAULT_TIMEOUT
        set_build_budget(config.max_build_memory)  # as the CLI: before the fork, every child inherits it
        ran = run_jobs(jobs, workers, timeout)
        for job, results in zip(jobs, ran):
            said = self._said(job, results) if job.discovered else {id(r) for r in results}
            problems = [p for result in results if id(result) in said for p in problems_of(result, path, say_skipped=True)]
            joins = [j for result in results for j in getattr(result, "join_sites", [])]
            changed |= self.results.replace(job.target, problems, joins)
        self.learned = learned_from(r for rs in ran for r in rs)
        return changed

    def _said(self, job, results: list[TargetResult]) -> set[int]:
        """Which results of a file's discovered models become diagnostics (their ids).

        Models found in a file, not asked for, that cannot be imported or built stay quiet, as in a
        pre-commit run: a helper module is not an error. But a model the last lint analyzed that now
        fails to import, build or run says so, until it is analyzed again: its findings do not just
        vanish, as if it had become clean. A worker that hung or died is always said.
        """
        before = self.analyzed.get(job.target, set())
        said: set[int] = set()
        now: set[str] = set()
        for result in results:
            quiet = result.status == "skipped" or _could_not_load(result, job)
            if not quiet:
                said.add(id(result))
                if result.status in ("ok", "findings", "incomplete"):
                    now.add(result.target)
                else:
                    now |= before & {result.target}
            elif result.target in before:
                said.add(id(result))
                now.add(result.target)
            elif result.target == job.target and before:  # the file itself no longer imports
                said.add(id(result))
                now |= before
        self.analyzed[job.target] = now
        return said


def _could_not_load(result: TargetResult, job) -> bool:
    """A discovered file whose models could not be built or imported (said by the child), as opposed
    to one whose worker hung or died (said by the parent, with a faulthandler stack or none)."""
    if result.status != "error" or result.target != job.target:
        return False
    stack = result.traceback
    return stack is not None and "most recent call first" not in stack


# ---- the protocol ----


def build_server():
    """The pygls server with reslint's features (imported here: `reslint --help` never pays for pygls)."""
    from lsprotocol import types
    from pygls.lsp.server import LanguageServer
    from pygls.uris import from_fs_path, to_fs_path

    server = LanguageServer("reslint", VERSION)
    state: dict[str, Any] = {"linter": None}

    severity = {"error": types.DiagnosticSeverity.Error, "warning": types.DiagnosticSeverity.Warning}

    def linter() -> Linter:
        if state["linter"] is None:
            state["linter"] = Linter(publish_soon)
        return state["linter"]

    def publish_soon(paths: set[str]) -> None:
        """Called on the worker thread: publish on the protocol's own loop."""
        loop = state.get("loop")
        if loop is None:
            publish(paths)
        else:
            loop.call_soon_threadsafe(publish, paths)

    def publish(paths: set[str]) -> None:
        """The linted file always (an empty list says it is clean), and every file whose problems changed."""
        for path in sorted(paths):
            diagnostics = [to_diagnostic(p) for p in linter().results.problems(path)]
            server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=from_fs_path(path), diagnostics=diagnostics))

    def to_diagnostic(problem: Problem):
        lines = _lines(problem.path)
        text = lines[problem.line - 1] if 0 < problem.line <= len(lines) else ""
        start = utf16_column(text, problem.column) if problem.column else len(text) - len(text.lstrip())
        end = utf16_column(text, problem.end_column) if problem.end_column > problem.column else line_length16(text)
        where = types.Range(types.Position(problem.line - 1, start), types.Position(problem.line - 1, max(end, start)))
        extra = {}
        if problem.code:
            extra = dict(code=problem.code, code_description=types.CodeDescription(href=rule_doc_uri(problem.code)))
        return types.Diagnostic(
            range=where, message=problem.message, source=SOURCE,
            severity=severity.get(problem.severity, types.DiagnosticSeverity.Information), **extra,
        )

    def path_of(uri: str) -> str | None:
        path = to_fs_path(uri)
        return os.path.abspath(path) if path else None

    def lint_document(uri: str) -> None:
        path = path_of(uri)
        if path and path.endswith((".py", ".pyi")) and os.path.isfile(path):
            linter().request(path)

    @server.feature(types.INITIALIZE)
    def initialize(params: types.InitializeParams) -> None:
        import asyncio

        state["loop"] = asyncio.get_running_loop() if _in_loop() else None
        options = params.initialization_options if isinstance(params.initialization_options, dict) else {}
        root = to_fs_path(params.root_uri) if params.root_uri else params.root_path
        if root and os.path.isdir(root):
            os.chdir(root)  # findings' paths are relative to the children's (inherited) working folder
        timeout, jobs = options.get("timeout"), options.get("jobs")
        state["linter"] = Linter(
            publish_soon,
            timeout=float(timeout) if isinstance(timeout, (int, float)) and timeout > 0 else None,
            jobs=int(jobs) if isinstance(jobs, int) and jobs > 0 else None,
        )

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: types.DidOpenTextDocumentParams) -> None:
        lint_document(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(params: types.DidSaveTextDocumentParams) -> None:
        lint_document(params.text_document.uri)

    kinds = [types.CodeActionKind.QuickFix, UNSAFE_KIND, FIX_ALL_KIND]

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(code_action_kinds=kinds))
    def code_action(params: types.CodeActionParams):
        path = path_of(params.text_document.uri)
        if path is None:
            return []
        only = list(params.context.only or []) if params.context else []

        def workspace_edit(edits: list[LineEdit]):
            changes: dict[str, list] = {}
            for edit in edits:
                end = types.Position(edit.end, 0)  # the line after the last replaced one, column 0
                changes.setdefault(from_fs_path(edit.path), []).append(
                    types.TextEdit(range=types.Range(types.Position(edit.start - 1, 0), end), new_text=edit.text))
            return types.WorkspaceEdit(changes=changes)

        problems = linter().results.problems(path)
        first, last = params.range.start.line + 1, params.range.end.line + 1
        return [
            types.CodeAction(
                title=action.title, kind=action.kind, edit=workspace_edit(action.edits), is_preferred=action.preferred,
                diagnostics=[to_diagnostic(action.problem)] if action.problem else None,
            )
            for action in code_actions(problems, first, last, only)
        ]

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(params: types.HoverParams):
        path = path_of(params.text_document.uri)
        if path is None:
            return None
        line = params.position.line + 1
        results = linter().results
        text = hover_text(results.joins(path, line), [p for p in results.problems(path) if p.line == line])
        if not text:
            return None
        return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text))

    return server


def _in_loop() -> bool:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def rule_doc_uri(code: str) -> str:
    """The rule's documentation: its module, whose docstring is what `reslint rule CODE` prints."""
    from pathlib import Path

    from reslint.rules import RULES

    rule = RULES.get(code)
    if rule is None:
        return Path(os.path.dirname(os.path.abspath(__file__)), "rules", "__init__.py").as_uri()
    return Path(os.path.dirname(os.path.abspath(__file__)), "rules", f"{rule.module}.py").as_uri()


def serve() -> None:
    """Run over stdio until the editor says exit: the protocol keeps the real stdin/stdout to itself."""
    protocol_in = os.fdopen(os.dup(0), "rb")
    protocol_out = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)  # whatever this process prints goes to the editor's log, not into the protocol
    sys.stdin = open(0, encoding="utf-8", closefd=False)
    sys.stdout = open(1, "w", encoding="utf-8", errors="replace", closefd=False, buffering=1)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="reslint server: %(message)s")
    from reslint.daemon import warm_parent

    config = None
    try:
        from reslint.config import load_config

        config = load_config(".")
    except Exception:  # noqa: BLE001  a broken config is reported on the files it concerns
        pass
    warm_parent(config)
    build_server().start_io(protocol_in, protocol_out)

