"""Reporters: a Report in, one string out per format. Formatters never print."""

from __future__ import annotations

from enum import Enum

from reslint.findings import Report


class Format(str, Enum):
    full = "full"
    concise = "concise"
    json = "json"


def render(report: Report, fmt: Format, color: bool = False) -> str:
    if fmt is Format.json:
        from reslint.report.json_format import render_json

        return render_json(report)
    if fmt is Format.concise:
        from reslint.report.concise import render_concise

        return render_concise(report)
    from reslint.report.full import render_full

    return render_full(report, color=color)
