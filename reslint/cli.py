"""The command line: the only place that prints, reads argv or exits.

Importing this module must not import torch: `--version`, `--help` and `reslint rule CODE` stay fast.
"""

from __future__ import annotations

import sys
from typing import List, Optional

import typer
from typer.core import TyperGroup

from reslint.findings import VERSION, ExitCode, Report
from reslint.report import Format, render


class DefaultCommandGroup(TyperGroup):
    """`reslint TARGET` means `reslint check TARGET`, as `ruff FILE` once meant `ruff check FILE`."""

    def parse_args(self, ctx, args):
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h", "--version", "-V")):
            args = ["check", *args]
        return super().parse_args(ctx, args)


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


@app.command()
def check(
    targets: List[str] = typer.Argument(None, help="model.py:Net, package.module:Name, Net(depth=20), files or folders. None: the targets in pyproject.toml."),
    inputs: List[str] = typer.Option([], "--input", "-i", help="Input shape per forward argument, e.g. 1,3,224,224 or 2,128:int64."),
    output_format: Format = typer.Option(Format.full, "--format", "-f", help="Output format."),
    output_file: Optional[str] = typer.Option(None, "--output-file", "-o", help="Write the report to this file instead of stdout."),
    select: Optional[List[str]] = typer.Option(None, "--select", help="Rule codes (or prefixes) to run, e.g. RL001 or RL00."),
    ignore: Optional[List[str]] = typer.Option(None, "--ignore", help="Rule codes (or prefixes) to skip."),
    rl005_depth: Optional[int] = typer.Option(None, "--rl005-depth", min=2, help="RL005: weighted layers in a row that count as a deep plain stack (20)."),
    frontend: Optional[str] = typer.Option(None, "--frontend", help="auto (fx, else eager) | fx | eager"),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, help="Lint targets in N worker processes."),
    timeout: Optional[float] = typer.Option(None, "--timeout", min=0.1, help="Seconds per target; a target that takes longer is an error."),
    exit_zero: bool = typer.Option(False, "--exit-zero", help="Exit 0 even when there are findings."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    """Lint the skip connections of the given models."""
    from reslint.config import load_config
    from reslint.errors import TargetError
    from reslint.plan import plan_jobs
    from reslint.rules import unknown_codes

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

    report = Report(_run(work, jobs or config.jobs or 1, timeout or config.timeout, show_progress=not output_format.for_machines))
    if debug:
        for result in report.targets:
            if result.traceback:
                typer.echo(result.traceback, err=True)
    color = output_format is Format.full and output_file is None and sys.stdout.isatty()
    text = render(report, output_format, color=color)
    if output_file:
        with open(output_file, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    if output_format.for_machines or output_file:  # the other formats show errors in their own output
        for target in report.targets:
            if target.status == "error":
                typer.echo(f"error: {target.error}", err=True)
    code = report.exit_code
    if exit_zero and code is ExitCode.FINDINGS:
        code = ExitCode.OK
    raise typer.Exit(int(code))


def _run(work, workers: int, timeout: float | None, show_progress: bool):
    from reslint.runner import run_jobs

    if not show_progress or len(work) < 2 or not sys.stderr.isatty():
        return [r for results in run_jobs(work, workers, timeout) for r in results]
    from rich.progress import Progress

    with Progress(transient=True, console=_stderr_console()) as progress:
        task = progress.add_task("linting", total=len(work))
        results = run_jobs(work, workers, timeout, on_done=lambda job: progress.update(task, advance=1, description=job.target))
    return [r for rs in results for r in rs]


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


def main() -> None:
    app()
