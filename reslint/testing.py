"""Helpers for a model repository's own tests.

    from reslint.testing import assert_skips_ok

    def test_unet_skips():
        assert_skips_ok(UNet(), torch.empty(1, 3, 256, 256))
"""

from __future__ import annotations

from typing import Any

from reslint import check
from reslint.report.concise import concise_line


def assert_skips_ok(model: Any, *example_inputs: Any, select: list[str] | None = None, ignore: list[str] | None = None) -> None:
    """Fail the test with reslint's findings (and fixes) if any skip connection is wrong."""
    report = check(model, *example_inputs, select=select, ignore=ignore)
    if report.ok:
        return
    lines = []
    for target in report.targets:
        if target.status == "error":
            lines.append(f"error: {target.error}")
    for finding in report.findings:
        lines.append(concise_line(finding))  # with its other instances
        if finding.fix is not None:
            lines.append(f"    fix ({finding.fix.kind}{', validated' if finding.fix.validated else ''}): {finding.fix.code}")
    raise AssertionError("reslint found problems with the skip connections:\n" + "\n".join(lines))
