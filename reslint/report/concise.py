"""`--format concise`: one line per finding (and per target that could not be analyzed)."""

from __future__ import annotations

from reslint.findings import Finding, Report
from reslint.report.words import consequences_count, describe_instances


def finding_line(finding: Finding) -> str:
    location = f"{finding.path}:{finding.line}:{finding.column}" if finding.path else finding.target
    return f"{location}: {finding.code} {finding.message}"


def concise_line(finding: Finding) -> str:
    """The finding's line, then its other instances and how many later failures follow from it."""
    extras = [text for text in (describe_instances(finding), consequences_count(finding)) if text]
    return finding_line(finding) + (f" ({'; '.join(extras)})" if extras else "")


def render_concise(report: Report) -> str:
    lines = []
    for target in report.targets:
        if target.status == "error":
            lines.append(f"error: {target.error}")
        elif target.status == "skipped":
            lines.append(f"skipped: {target.target}: {target.error}")
        lines.extend(concise_line(f) for f in target.findings)
        lines.extend(f"incomplete: {target.target}: {reason}" for reason in target.incomplete)
    return "\n".join(lines) + ("\n" if lines else "")
