"""Reporters: a Report in, one string out per format. Formatters never print."""

from __future__ import annotations

from enum import Enum

from reslint.findings import Report


class Format(str, Enum):
    full = "full"
    concise = "concise"
    json = "json"
    sarif = "sarif"
    github = "github"

    @property
    def for_machines(self) -> bool:
        return self in (Format.json, Format.sarif, Format.github)


def render(report: Report, fmt: Format, color: bool = False) -> str:
    if fmt is Format.json:
        from reslint.report.json_format import render_json

        return render_json(report)
    if fmt is Format.sarif:
        from reslint.report.sarif import render_sarif

        return render_sarif(report)
    if fmt is Format.github:
        from reslint.report.github import render_github

        return render_github(report)
    if fmt is Format.concise:
        from reslint.report.concise import render_concise

        return render_concise(report)
    from reslint.report.full import render_full

    return render_full(report, color=color)
