"""`--format json`: the contract in design.md."""

from __future__ import annotations

import json

from reslint.findings import Report


def render_json(report: Report) -> str:
    return json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n"
