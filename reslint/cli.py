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
    targets: List[str] = typer.Argument(None, help="model.py:Net, package.module:Name, Net(depth=20), or a file/folder."),
    inputs: List[str] = typer.Option([], "--input", "-i", help="Input shape per forward argument, e.g. 1,3,224,224 or 2,128:int64."),
    output_format: Format = typer.Option(Format.full, "--format", "-f", help="Output format."),
    select: Optional[List[str]] = typer.Option(None, "--select", help="Rule codes (or prefixes) to run, e.g. RL001 or RL00."),
    ignore: Optional[List[str]] = typer.Option(None, "--ignore", help="Rule codes (or prefixes) to skip."),
    frontend: str = typer.Option("auto", "--frontend", help="auto (fx, else eager) | fx | eager"),
    exit_zero: bool = typer.Option(False, "--exit-zero", help="Exit 0 even when there are findings."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Lint targets in N worker processes."),
    timeout: Optional[float] = typer.Option(None, "--timeout", min=0.1, help="Seconds per target; a target that takes longer is an error."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    """Lint the skip connections of the given models."""
    from reslint.rules import unknown_codes

    if not targets:
        _usage_error("give a target to lint, e.g. reslint model.py:Net (see reslint --help)")
    unknown = unknown_codes([*(select or []), *(ignore or [])])
    if unknown:
        _usage_error(f"unknown rule code {', '.join(unknown)} (reslint rules lists them)")
    if frontend not in ("auto", "fx", "eager"):
        _usage_error(f"--frontend {frontend!r}: expected auto, fx or eager")
    select = _split_codes(select)
    ignore = _split_codes(ignore)

    from reslint.runner import Job, run_jobs

    work = [Job(t, tuple(inputs), _tuple(select), _tuple(ignore), frontend) for t in targets]
    report = Report([result for results in run_jobs(work, jobs, timeout) for result in results])
    if debug:
        for result in report.targets:
            if result.traceback:
                typer.echo(result.traceback, err=True)
    color = output_format is Format.full and sys.stdout.isatty()
    sys.stdout.write(render(report, output_format, color=color))
    if output_format is Format.json:  # the other formats show errors in their own output
        for target in report.targets:
            if target.status == "error":
                typer.echo(f"error: {target.error}", err=True)
    code = report.exit_code
    if exit_zero and code is ExitCode.FINDINGS:
        code = ExitCode.OK
    raise typer.Exit(int(code))


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
