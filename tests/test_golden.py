"""Golden tests, as ruff and TorchFix write them: a fixture model per case, its expected output beside it.

Each `tests/fixtures/<code>/<name>.py` is a small model that starts with the command line to lint it:

    # reslint: Net --input 2,3,32,32

Next to it, `<name>.out` is the full report (no colour, paths relative to the repository) and, when
reslint can write a fix into the source, `<name>.diff` is what `reslint --diff --unsafe-fixes` prints.
Both are compared byte for byte. After an intended change, regenerate them and review the diff:

    pytest tests/test_golden.py --update-golden      (or RESLINT_UPDATE_GOLDEN=1)

All fixtures are linted in this process, in one batch, through reslint's runner and reporter (what the
CLI prints, without a process per target), so the file stays fast.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from reslint.findings import Report
from reslint.report import Format, render
from reslint.runner import Job, run_jobs

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
HEADER = "# reslint:"

CASES = sorted(FIXTURES.glob("rl*/*.py"))


def job_for(path: Path) -> Job:
    """The Job its header line asks for: `# reslint: TARGET [--input SIZES]... [--select CODES]...`."""
    first = path.read_text().splitlines()[0]
    assert first.startswith(HEADER), f"{path}: the first line must be '{HEADER} Name --input ...'"
    name, *words = shlex.split(first[len(HEADER):])
    inputs, select, options = [], [], []
    flags = iter(words)
    for flag in flags:
        value = next(flags)
        if flag in ("--input", "-i"):
            inputs.append(value)
        elif flag == "--select":
            select.extend(value.split(","))
        elif flag == "--rl005-depth":
            options.append(("rl005-depth", int(value)))
        else:
            raise AssertionError(f"{path}: {flag} is not an option the golden tests know")
    target = f"{path.relative_to(ROOT).as_posix()}:{name}"
    return Job(target, tuple(inputs), tuple(select) or None, options=tuple(options))


def full_report(results) -> str:
    return render(Report(list(results)), Format.full)


def diff_of(results) -> str:
    try:
        from reslint.apply import plan_fixes
    except ImportError:  # before --diff existed
        return ""
    return plan_fixes(Report(list(results)), unsafe=True, root=str(ROOT)).diff


@pytest.fixture(scope="module")
def outputs():
    """(full report, diff) per fixture, all linted in one batch from the repository root."""
    before = os.getcwd()
    os.chdir(ROOT)  # paths in the reports are shown relative to it
    try:
        results = run_jobs([job_for(path) for path in CASES], isolate=False)
        return {path: (full_report(r), diff_of(r)) for path, r in zip(CASES, results)}
    finally:
        os.chdir(before)


def updating(config) -> bool:
    return bool(config.getoption("--update-golden", False)) or os.environ.get("RESLINT_UPDATE_GOLDEN") == "1"


def check_golden(expected: Path, actual: str, update: bool) -> None:
    """The file holds exactly `actual`; an empty `actual` means the file must not exist."""
    if update:
        if actual:
            expected.write_text(actual)
        elif expected.exists():
            expected.unlink()
        return
    if not actual:
        assert not expected.exists(), f"{expected.name} expects output, got none (--update-golden if intended)"
        return
    assert expected.exists(), f"{expected.name} is missing: run pytest tests/test_golden.py --update-golden"
    assert actual == expected.read_text(), f"{expected.name} differs (--update-golden if intended)"


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_golden(path, outputs, request):
    report, diff = outputs[path]
    update = updating(request.config)
    check_golden(path.with_suffix(".out"), report, update)
    check_golden(path.with_suffix(".diff"), diff, update)


def test_every_rule_fix_kind_and_family_has_a_fixture(outputs):
    """The golden set covers what the issue asks: each default rule, each fix kind, each seed family."""
    reports = "".join(report for report, _ in outputs.values())
    for code in ("RL000", "RL001", "RL002", "RL003", "RL005", "RL006"):
        assert f": {code} " in reports, code
    kinds = (
        "project-skip", "restride-skip", "resize-transform", "resize-to-skip", "remove-reduction",
        "add-residuals", "ceil-mode-pool", "repad-conv", "repad-pool", "fix-pad", "permute-back", "crop",
    )
    for kind in kinds:
        assert f"fix ({kind}," in reports, kind
    names = " ".join(path.stem for path in outputs)
    for family in ("resnet", "transformer", "densenet", "unet", "mamba"):
        assert family in names, family
