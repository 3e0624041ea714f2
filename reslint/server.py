"""`reslint server`: a Language Server Protocol server over stdio, for shape errors while you edit.

It imports torch and reslint's analysis once (and the installed libraries the configured targets
import). When a Python file is opened or saved it lints what that file affects, as a pre-commit run
with that file would (reslint.plan): the configured targets whose files, or the project files they
import, include it, and the nn.Module classes defined in it that build (those that cannot are skipped
quietly). Each target runs in a child forked from the warm server (reslint.runner.run_jobs: fresh
import of the user's modules, captured output, a timeout), so a model that hangs, crashes or exits
becomes a diagnostic, never a dead server.

What an editor gets:
- diagnostics: the rule code (linked to the rule's documentation), the message, both shapes and the
  fix; a target that could not be (wholly) analyzed is a diagnostic at its class (or line 1), not dropped;
- code actions: a finding's fix as an edit ("quickfix" when the fix is safe, "quickfix.unsafe" when not);
- hover on a join's line: both operands' shapes, for every skip join the last lint saw there.

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
from dataclasses import dataclass, field
from typing import Any, Callable

import reslint.quiet_torch  # noqa: F401  (before anything imports torch)
from reslint.daemon import learned_from, preload
from reslint.findings import VERSION, Finding, TargetResult

DEFAULT_TIMEOUT = 60.0  # seconds per target while editing (the CLI's is 600): a hang is reported sooner
SOURCE = "reslint"
UNSAFE_KIND = "quickfix.unsafe"


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


@dataclass
class JoinSite:
    """A skip join the analysis saw, for hover: where it is, in which module, and its operands' shapes."""

    path: str
    line: int
    column: int
    end_column: int
    kind: str  # add | cat
    module: str
    module_type: str
    shapes: dict[str, list[int] | None] = field(default_factory=dict)


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


def problems_of(result: TargetResult, saved: str) -> list[Problem]:
    """A target's findings, its error and its unanalyzed parts, as problems; a skipped target says nothing."""
    problems = [
        Problem(os.path.abspath(f.path), f.line, f.column, f.end_column, f.severity, finding_message(f), f.code, f)
        for f in result.findings if f.path and f.line
    ]
    if result.status == "skipped":
        return problems
    path, line = target_location(result.target, saved)
    if result.status == "error":
        at_path, at_line = error_location(result.error or "") or (path, line)
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


# ---- hover data: the joins each lint saw, recorded in the forked child ----


def record_join_sites() -> None:
    """Make every analysis (in the children forked from here) keep its joins on its TargetResult.

    The analysis itself has no such output; the joins are read where `analyze_model` has them, and ride
    back to the server on the result (`result.join_sites`, pickled with it). Hover degrades to the
    findings' shapes if reslint.analyze changes shape.
    """
    import reslint.analyze as analyze

    if getattr(analyze, "_join_sites_recorded", False):
        return
    base, analyze_model = analyze.Analysis, analyze.analyze_model
    seen: list[JoinSite] = []

    class RecordingAnalysis(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            try:
                seen.extend(_join_sites(self))
            except Exception:  # noqa: BLE001  hover is a nicety; the lint goes on
                pass

    def recording_analyze_model(*args, **kwargs):
        seen.clear()
        result = analyze_model(*args, **kwargs)
        result.join_sites = list(seen)
        return result

    analyze.Analysis = RecordingAnalysis
    analyze.analyze_model = recording_analyze_model
    analyze._join_sites_recorded = True


def _join_sites(analysis) -> list[JoinSite]:
    from reslint.joins import join_operands

    sites = []
    for join in analysis.joins:
        source = join.node.meta.get("source")
        if source is None:
            continue
        shapes: dict[str, list[int] | None] = {"skip": analysis.shape(join.skip), "transform": analysis.shape(join.transform)}
        others = [n for n in join_operands(join.node) if n is not join.skip and n is not join.transform]
        for index, node in enumerate(others, 3):
            shapes[f"operand {index}"] = analysis.shape(node)
        shapes["result"] = analysis.shape(join.node)
        sites.append(JoinSite(
            os.path.abspath(source.path), source.line, source.column, source.end_column, join.kind,
            join.node.meta.get("module_path", ""), join.node.meta.get("module_type", ""), shapes,
        ))
    return sites


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
    if not lines:  # no join recorded (older analysis): the findings' shapes
        for problem in problems:
            if problem.finding is not None:
                lines.append(f"**reslint** {problem.code} in {problem.finding.module or 'model'}")
                lines += [f"- {role}: `{shape}`" for role, shape in problem.finding.shapes.items()]
    return "\n".join(lines) or None


# ---- code actions: a fix as an edit ----


@dataclass
class LineEdit:
    """Replace lines start..end (1-based, inclusive) of path with text (whole lines, each ending in a newline)."""

    path: str
    start: int
    end: int
    text: str


def fix_edits(finding: Finding) -> list[LineEdit]:
    """The source edit of a finding's fix: its unified diff when it has one, else its statement
    (Fix.line/end_line) with fix.code indented as the original; none for a layer to paste."""
    fix = finding.fix
    if fix is None:
        return []
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
        self.thread = threading.Thread(target=self._loop, name="reslint-lint", daemon=True)
        self.thread.start()

    def request(self, path: str) -> None:
        """Lint this file soon; saving it again before its turn does not queue it twice."""
        with self.condition:
            if path not in self.pending:
                self.pending.append(path)
            self.condition.notify()

    def _loop(self) -> None:
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
            if self.learned:  # installed packages the models imported: in the parent before the next lint
                preload(self.learned)
                self.learned = []

    def lint(self, path: str) -> set[str]:
        """Lint what `path` affects; the files whose problems changed."""
        from reslint.config import load_config
        from reslint.errors import TargetError
        from reslint.plan import plan_jobs
        from reslint.runner import run_jobs

        try:
            config = load_config(os.path.dirname(path))
        except TargetError as error:
            return self.results.replace(f"config:{path}", [Problem(path, 1, 0, 0, "error", str(error))], [])
        changed = self.results.replace(f"config:{path}", [], [])
        options = dict(config.options)
        select = tuple(config.select) if config.select else None
        ignore = tuple(config.ignore) if config.ignore else None
        try:
            jobs = plan_jobs([path], config, [], select, ignore, config.frontend or "auto", options)
        except TargetError as error:
            return changed | self.results.replace(f"plan:{path}", [Problem(path, 1, 0, 0, "error", str(error))], [])
        changed |= self.results.replace(f"plan:{path}", [], [])
        if not any(job.target == path for job in jobs):  # no longer a file with models: forget its old ones
            changed |= self.results.replace(path, [], [])
        if not jobs:
            return changed
        workers = max(1, min(len(jobs), self.jobs or config.jobs or 2))
        timeout = self.timeout or config.timeout or DEFAULT_TIMEOUT
        ran = run_jobs(jobs, workers, timeout)
        for job, results in zip(jobs, ran):
            if job.discovered:  # models found in the file, not asked for: what cannot be built stays quiet
                results = [r for r in results if not _could_not_load(r, job)]
            problems = [p for result in results for p in problems_of(result, path)]
            joins = [j for result in results for j in getattr(result, "join_sites", [])]
            changed |= self.results.replace(job.target, problems, joins)
        self.learned = learned_from(r for rs in ran for r in rs)
        return changed


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

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix, UNSAFE_KIND]))
    def code_action(params: types.CodeActionParams):
        path = path_of(params.text_document.uri)
        if path is None:
            return []
        first, last = params.range.start.line + 1, params.range.end.line + 1
        actions = []
        for problem in linter().results.problems(path):
            finding = problem.finding
            if finding is None or finding.fix is None or not first <= problem.line <= last:
                continue
            edits = fix_edits(finding)
            if not edits:
                continue
            safe = bool(getattr(finding.fix, "safe", False))
            changes: dict[str, list] = {}
            for edit in edits:
                end = types.Position(edit.end, 0)  # the line after the last replaced one, column 0
                changes.setdefault(from_fs_path(edit.path), []).append(
                    types.TextEdit(range=types.Range(types.Position(edit.start - 1, 0), end), new_text=edit.text))
            title = f"reslint: {finding.fix.description or finding.fix.kind} ({finding.code})" + ("" if safe else " (unsafe)")
            actions.append(types.CodeAction(
                title=title, kind=types.CodeActionKind.QuickFix if safe else UNSAFE_KIND,
                diagnostics=[to_diagnostic(problem)], edit=types.WorkspaceEdit(changes=changes), is_preferred=safe,
            ))
        return actions

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
    record_join_sites()
    build_server().start_io(protocol_in, protocol_out)

