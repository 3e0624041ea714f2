"""The default, compiler-style format: location, code, message, the source line, shapes, the fix."""

from __future__ import annotations

import io
import linecache

from rich.console import Console
from rich.text import Text

from reslint.findings import Finding, Report, TargetResult
from reslint.report.concise import finding_line
from reslint.report.words import describe_consequences, describe_instances


def render_full(report: Report, color: bool = False) -> str:
    console = Console(file=io.StringIO(), force_terminal=color, no_color=not color, highlight=False, soft_wrap=True)
    for target in report.targets:
        _render_target(console, target)
    console.print(_summary(report))
    return console.file.getvalue()


def _render_target(console: Console, target: TargetResult) -> None:
    for note in target.notes:
        console.print(Text.assemble(("note", "cyan bold"), f": {target.target}: {note}"))
    if target.status == "error":
        console.print(Text.assemble(("error", "red bold"), f": {target.error}"))
        return
    if target.status == "skipped":
        console.print(Text.assemble(("skipped", "yellow bold"), f": {target.target}: {target.error}"))
        return
    for finding in target.findings:
        _render_finding(console, finding)
    for reason in target.incomplete:
        console.print(Text.assemble(("incomplete", "red bold"), f": {target.target}: {reason}"))


def _render_finding(console: Console, finding: Finding) -> None:
    style = "red bold" if finding.severity == "error" else "yellow bold"
    location, _, rest = finding_line(finding).partition(f": {finding.code} ")
    console.print(Text.assemble((location, "bold"), ": ", (finding.code, style), " ", rest))
    source = linecache.getline(finding.path, finding.line).rstrip() if finding.path else ""
    gutter = " " * len(str(finding.line))
    if source:
        console.print(Text(f" {gutter} |", style="blue"))
        console.print(Text.assemble((f" {finding.line} | ", "blue"), source))
        start = max(finding.column - 1, 0)
        end = finding.end_column - 1 if finding.end_column > finding.column else len(source)
        width = max(end - start, 1)
        console.print(Text.assemble((f" {gutter} | ", "blue"), " " * start, ("^" * width, style)))
    for role, shape in finding.shapes.items():
        if shape is not None:
            console.print(Text.assemble((f" {gutter} = ", "blue"), f"{role:<10} {shape}"))
    instances = describe_instances(finding)  # the shapes above are the first instance's
    if instances:
        console.print(Text.assemble((f" {gutter} = ", "blue"), instances))
    consequences = describe_consequences(finding)
    if consequences:
        console.print(Text.assemble((f" {gutter} = ", "blue"), ("note", "bold"), f": {consequences}"))
    fix = finding.fix
    if fix is not None:
        status = ("validated", "green") if fix.validated else ("not validated", "yellow")
        safety = (", ", ("safe", "green")) if fix.safe else (", ", ("unsafe", "yellow")) if fix.diff else ()
        console.print(Text.assemble((f" {gutter} = ", "blue"), ("fix", "bold"), f" ({fix.kind}, ", status, *safety, f"): {fix.description}"))
        for line in fix.code.splitlines():
            console.print(Text.assemble(f" {gutter}     ", (line, "green")))
        if fix.diff:  # written into the source by --fix (safe) or --fix --unsafe-fixes
            how = "reslint --fix applies it" if fix.safe else "reslint --fix --unsafe-fixes applies it"
            console.print(Text.assemble((f" {gutter} = ", "blue"), how, " (", ("--diff", "bold"), " shows the edit)"))
    console.print()


def _summary(report: Report) -> Text:
    """"All checked" only when every analyzed target was wholly analyzed and nothing was found."""
    findings = report.findings
    errors = sum(1 for t in report.targets if t.status == "error")
    skipped = sum(1 for t in report.targets if t.status == "skipped")
    incomplete = sum(1 for t in report.targets if t.incomplete and t.status not in ("error", "skipped"))
    analyzed = len(report.targets) - errors - skipped
    skipped_text = f" ({skipped} skipped)" if skipped else ""
    if not findings and not errors and not incomplete:
        return Text(f"All checked: {_count(analyzed, 'target')}{skipped_text}, no findings.", style="green")
    parts = [f"Found {_count(len(findings), 'finding')} in {_count(analyzed, 'target')}"]
    if any(f.fix for f in findings):
        parts.append(f"{sum(1 for f in findings if f.fix and f.fix.validated)} with a validated fix")
    if incomplete:
        allowed = " (allowed by --allow-incomplete)" if report.allow_incomplete else ""
        parts.append(f"{_count(incomplete, 'target')} not wholly analyzed{allowed}")
    if errors:
        parts.append(f"{_count(errors, 'target')} could not be analyzed")
    return Text(", ".join(parts) + skipped_text + ".", style="bold")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' * (number != 1)}"
