"""`# noqa` and `# noqa: RL001, RL002` on a finding's source line silence it, as in ruff and flake8."""

from __future__ import annotations

import linecache
import re

from reslint.findings import Finding

NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)


def is_suppressed(finding: Finding) -> bool:
    if not finding.path or not finding.line:
        return False
    match = NOQA.search(linecache.getline(finding.path, finding.line))
    if match is None:
        return False
    codes = match.group("codes")
    return codes is None or finding.code in {c.upper() for c in re.split(r"[,\s]+", codes)}
