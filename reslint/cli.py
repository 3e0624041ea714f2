"""The command line: the only place that prints, reads argv or exits.

Importing this module must not import torch: `--version`, `--help` and `reslint rule CODE` stay fast.
"""

from __future__ import annotations

import os
import sys
from typing import List, Optional

import typer
from typer.core import TyperGroup

try:  # typer >= 0.20 carries its own click
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException, UsageError

import reslint.quiet_torch  # noqa: F401  (before anything imports torch)
from reslint.findings import VERSION, ExitCode, Report, TargetResult
from reslint.report import Format, render


class DefaultCommandGroup(TyperGroup):
    """`reslint TARGET` means `reslint check TARGET`, as `ruff FILE` once meant `ruff check FILE`."""

    def parse_args(self, ctx, args):
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h", "--version", "-V")):
            args = ["check", *args]
        return super().parse_args(ctx, args)

    def format_help(self, ctx, formatter):
        """`reslint --help` is how to lint (check's usage and options), then the other commands."""
        check_command = self.get_command(ctx, "check")
        with check_command.make_context(ctx.info_name, [], resilient_parsing=True) as check_ctx:
            check_command.format_help(check_ctx, formatter)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """A usage error (a bad flag value, an unknown option) is one line and exit 2, not a box."""
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except UsageError as error:
            _usage_line(error.format_message())
            code = int(ExitCode.ERROR)
        except ClickException as error:
            _usage_line(error.format_message())
            code = error.exit_code
        except typer.Abort:
            code = 130
        code = code if isinstance(code, int) else 0
        if not standalone_mode:
            return code
        sys.exit(code)


def _usage_line(message: str) -> None:
    text = " ".join(message.split())
    typer.echo(f"error: {text} (reslint --help)", err=True)


app = typer.Typer(
    cls=DefaultCommandGroup,
    add_completion=False,
    no_args_is_help=False,
    help="Static linter for the skip connections of PyTorch models.\n\nreslint model.py:Net lints a model; reslint rule RL001 explains a rule.",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"reslint {VERSION}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    pass


@app.command(epilog=(
    "Other commands: reslint rules (list the rules) · reslint rule CODE (explain one) · reslint --version. "
    "reslint imports and runs your model code, each target in its own process; exit codes: 0 nothing found, "
    "1 findings, 2 a target could not be (wholly) analyzed or a usage error."
))
def check(
    targets: List[str] = typer.Argument(None, help="model.py:Net, package.module:Name, Net(depth=20), files or folders. None: the targets in pyproject.toml."),
    inputs: List[str] = typer.Option([], "--input", "-i", help="Input shape per forward argument, e.g. 1,3,224,224 or 2,128:int64."),
    output_format: Format = typer.Option(Format.full, "--format", "-f", help="Output format."),
    output_file: Optional[str] = typer.Option(None, "--output-file", "-o", help="Write the report to this file instead of stdout."),
    select: Optional[List[str]] = typer.Option(None, "--select", help="Rule codes (or prefixes) to run, e.g. RL001 or RL00."),
    ignore: Optional[List[str]] = typer.Option(None, "--ignore", help="Rule codes (or prefixes) to skip."),
    rl005_depth: Optional[int] = typer.Option(None, "--rl005-depth", min=2, help="RL005: weighted layers in a row that count as a deep plain stack (20)."),
    frontend: Optional[str] = typer.Option(None, "--frontend", help="auto (fx, else eager) | fx | eager"),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, help="Lint N targets at once (each in its own process)."),
    timeout: Optional[float] = typer.Option(None, "--timeout", min=0.1, help="Seconds per target (600); a target that takes longer is an error."),
    max_build_memory: Optional[str] = typer.Option(None, "--max-build-memory", help="Most memory a model that must be built on the CPU may take: 8GiB, 500MB, 50% (of RAM); default half the RAM."),
    shard: Optional[str] = typer.Option(None, "--shard", help="Lint only part K of N of the targets (1/4 ... 4/4), for a CI matrix."),
    shard_timings: Optional[str] = typer.Option(None, "--shard-timings", help="A previous --format json report: balance the shards by its timings."),
    allow_incomplete: bool = typer.Option(False, "--allow-incomplete", help="Exit 0 for targets that were only partly analyzed (they are still reported)."),
    exit_zero: bool = typer.Option(False, "--exit-zero", help="Exit 0 even when there are findings."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show what model code printed (on stderr)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    show_diff: bool = typer.Option(False, "--diff", help="Print the fixes as a unified diff of your files; change nothing."),
    fix: bool = typer.Option(False, "--fix", help="Write the safe fixes into your files, then lint again and report what is left."),
    unsafe_fixes: bool = typer.Option(False, "--unsafe-fixes", help="With --fix or --diff, also the fixes that are not safe (reslint rule CODE says when)."),
) -> None:
    """Lint the skip connections of the given models.

    reslint model.py:Net · reslint pkg.models:resnet18 · reslint "model.py:Net(depth=20)" --input 2,3,224,224 ·
    reslint model.py (every model in the file) · reslint (the targets in pyproject.toml)
    """
    if output_file is not None:
        problem = _unwritable(output_file)
        if problem:
            _usage_error(f"--output-file {output_file}: {problem}")

    import reslint.config
    from reslint.config import load_config
    from reslint.errors import TargetError
    from reslint.plan import nothing_linted, plan_jobs
    from reslint.rules import unknown_codes

    build_limit = _memory_limit(max_build_memory, getattr(reslint.config, "parse_memory", None))

    try:
        config = load_config(".")
    except TargetError as error:
        _usage_error(str(error))
    select = _split_codes(select) or config.select
    ignore = _split_codes(ignore) or config.ignore
    unknown = unknown_codes([*(select or []), *(ignore or [])])
    if unknown:
        _usage_error(f"unknown rule code {', '.join(unknown)} (reslint rules lists them)")
    frontend = frontend or config.frontend or "auto"
    if frontend not in ("auto", "fx", "eager"):
        _usage_error(f"--frontend {frontend!r}: expected auto, fx or eager")
    options = dict(config.options)
    if rl005_depth is not None:
        options["rl005-depth"] = rl005_depth
    try:
        work = plan_jobs(list(targets or []), config, list(inputs), _tuple(select), _tuple(ignore), frontend, options)
    except TargetError as error:
        _usage_error(str(error))
    if shard or shard_timings:
        from reslint.shard import shard_jobs

        try:
            work = shard_jobs(work, shard or "1/1", shard_timings)
        except TargetError as error:
            _usage_error(str(error))

    from reslint.runner import DEFAULT_TIMEOUT

    build_limit = build_limit or getattr(config, "max_build_memory", None)
    if build_limit:
        from reslint.materialize import set_build_budget  # before the fork: every child inherits it

        set_build_budget(build_limit)

    workers = jobs or config.jobs or 1
    limit = timeout or config.timeout or DEFAULT_TIMEOUT
    allowed = allow_incomplete or bool(getattr(config, "allow_incomplete", False))
    report = Report(_run(work, workers, limit, show_progress=not output_format.for_machines), allow_incomplete=allowed)
    empty = nothing_linted(list(targets or []), report.targets)
    if empty:
        report.targets.append(TargetResult(target=", ".join(list(targets or [])), status="error", error=empty))
    if show_diff or fix:
        report = _fixes(report, show_diff, unsafe_fixes, lambda: Report(_run(work, workers, limit, False), allow_incomplete=allowed))
        if show_diff:
            raise typer.Exit(int(ExitCode.OK if exit_zero else report.exit_code))
    color = output_format is Format.full and output_file is None and sys.stdout.isatty()
    text = render(report, output_format, color=color)
    if output_file:
        with open(output_file, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    # stderr: what the report on stdout cannot carry (the other formats show errors in their own output)
    for target in report.targets:
        if output_format.for_machines or output_file:
            if target.status == "error":
                typer.echo(f"error: {target.error}", err=True)
            for reason in target.incomplete:
                typer.echo(f"incomplete: {target.target}: {reason}", err=True)
        if target.output and (verbose or target.status == "error"):
            _show_output(target.target, target.output)
        if debug and target.traceback:
            typer.echo(target.traceback, err=True)
    code = report.exit_code
    if exit_zero and code is ExitCode.FINDINGS:
        code = ExitCode.OK
    raise typer.Exit(int(code))


def _fixes(report: Report, show_diff: bool, unsafe: bool, rerun) -> Report:
    """--diff prints the fixes' diff (the report stays as is); --fix writes them and lints again."""
    from reslint.apply import plan_fixes, write

    plan = plan_fixes(report, unsafe=unsafe)
    for note in plan.notes:
        typer.echo(f"not fixed: {note}", err=True)
    if show_diff:
        sys.stdout.write(plan.diff)
        sys.stdout.flush()
        return report
    changed = write(plan)
    if not changed:
        return report
    typer.echo(f"fixed {len(plan.fixed)} finding{'s' * (len(plan.fixed) != 1)} in {', '.join(map(_shown, changed))}; linting again", err=True)
    _forget_modules(changed)
    return rerun()


def _shown(path: str) -> str:
    from reslint.where import display_path

    return display_path(path)


def _forget_modules(paths: list[str]) -> None:
    """Edited files are imported afresh by the re-run (when it runs in this process, RESLINT_NO_FORK=1)."""
    edited = {os.path.abspath(p) for p in paths}
    for name, module in list(sys.modules.items()):
        if os.path.abspath(getattr(module, "__file__", None) or "") in edited:
            del sys.modules[name]


def _run(work, workers: int, timeout: float | None, show_progress: bool):
    """Every target in a child process; RESLINT_NO_FORK=1 runs them in this one (to debug model code
    with pdb, or to measure what isolation costs), without timeout or protection."""
    from functools import partial

    from reslint.runner import run_jobs

    run_jobs = partial(run_jobs, isolate=os.environ.get("RESLINT_NO_FORK") != "1")
    if not show_progress or len(work) < 2 or not sys.stderr.isatty():
        return [r for results in run_jobs(work, workers, timeout) for r in results]
    from rich.progress import Progress

    # No refresh thread: workers are forked, and a fork must not copy a thread that holds a lock.
    with Progress(transient=True, console=_stderr_console(), auto_refresh=False) as progress:
        task = progress.add_task("linting", total=len(work))
        results = run_jobs(work, workers, timeout, on_done=lambda job: progress.update(task, advance=1, description=job.target, refresh=True))
    return [r for rs in results for r in rs]


def _memory_limit(text: str | None, parse) -> int | None:
    if text is None or parse is None:
        return None
    try:
        return parse(int(text) if text.isdigit() else text)
    except Exception:  # noqa: BLE001  whatever the parser rejects it with
        _usage_error(f"--max-build-memory {text!r}: expected a size like 8GiB or 500MB, a share of RAM like 50%, or bytes")


def _show_output(target: str, output: str) -> None:
    """What a target's model code printed, on stderr, indented under its name."""
    lines = output.rstrip("\n").splitlines()
    typer.echo(f"output of {target} ({len(lines)} line{'s' * (len(lines) != 1)}):", err=True)
    typer.echo("\n".join(f"    {line}" for line in lines), err=True)


def _unwritable(path: str) -> str | None:
    """Why the report could not be written there, checked before any linting; None when it can."""
    if os.path.isdir(path):
        return "is a folder; give a file name"
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        return f"folder {os.path.dirname(path) or folder} does not exist; create it first"
    if os.path.exists(path) and not os.access(path, os.W_OK):
        return "is not writable"
    if not os.path.exists(path) and not os.access(folder, os.W_OK | os.X_OK):
        return f"cannot create a file in {os.path.dirname(path) or folder} (not writable)"
    return None


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def _tuple(values: list[str] | None) -> tuple[str, ...] | None:
    return tuple(values) if values else None


def _split_codes(codes: list[str] | None) -> list[str] | None:
    if not codes:
        return None
    return [c.strip() for text in codes for c in text.split(",") if c.strip()]


def _usage_error(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(int(ExitCode.ERROR))


@app.command()
def rule(code: str = typer.Argument(..., help="A rule code, e.g. RL001.")) -> None:
    """Explain a rule."""
    from reslint.rules import rule_doc

    doc = rule_doc(code)
    if doc is None:
        _usage_error(f"unknown rule {code!r} (reslint rules lists them)")
    typer.echo(doc)


@app.command("rules")
def list_rules() -> None:
    """List the rules."""
    from reslint.rules import RULES, rule_doc

    for info in RULES.values():
        summary = (rule_doc(info.code) or "").splitlines()[0]
        default = "" if info.default else "  (not selected by default)"
        typer.echo(f"{info.code}  {info.severity:<7}  {summary.partition(': ')[2]}{default}")


@app.command()
def server() -> None:
    """Run the language server (LSP over stdio) for editors: diagnostics on open and save, fixes, hover."""
    from reslint.server import serve

    serve()


@app.command()
def daemon(action: str = typer.Argument(..., help="start | stop | status")) -> None:
    """A warm reslint for this project: while it runs, reslint commands here use it (as mypy's dmypy)."""
    from reslint import daemon as warm

    if action not in ("start", "stop", "status"):
        _usage_error(f"reslint daemon {action}: expected start, stop or status")
    code, message = getattr(warm, action)(warm.project_root())
    typer.echo(message, err=code != 0)
    raise typer.Exit(code)


def main() -> None:
    from reslint.daemon import forward  # a running daemon of this project answers instead (no torch here)

    code = forward(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    app()
