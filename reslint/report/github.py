"""`--format github`: GitHub Actions workflow commands, shown as annotations on the pull request."""

from __future__ import annotations

from reslint.findings import Report
from reslint.report.words import describe_consequences, describe_instances


def _escape(text: str, property_value: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def render_github(report: Report) -> str:
    lines = []
    incomplete_level = "warning" if report.allow_incomplete else "error"
    for target in report.targets:
        if target.status == "error":
            lines.append(f"::error title=reslint::{_escape(target.error or '')}")
        elif target.status == "skipped":
            lines.append(f"::notice title=reslint skipped::{_escape(f'{target.target}: {target.error}')}")
        for reason in target.incomplete:
            lines.append(f"::{incomplete_level} title=reslint incomplete::{_escape(f'{target.target}: not wholly analyzed: {reason}')}")
    for finding in report.findings:
        level = "error" if finding.severity == "error" else "warning"
        message = finding.message
        for extra in (describe_instances(finding), describe_consequences(finding)):
            message += f"\n{extra}" if extra else ""
        if finding.fix is not None:
            message += f"\nfix ({finding.fix.kind}{', validated' if finding.fix.validated else ''}): {finding.fix.code}"
        where = ""
        if finding.path:
            where = f"file={_escape(finding.path, True)},line={finding.line},col={finding.column},"
        lines.append(f"::{level} {where}title={finding.code}::{_escape(message)}")
    return "\n".join(lines) + ("\n" if lines else "")
