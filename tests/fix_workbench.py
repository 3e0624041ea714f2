"""Helpers the --fix safety tests share: write a model file, lint it in-process, load a class of it fresh."""

from __future__ import annotations

import importlib.util
import os
import sys
import textwrap

import torch

from reslint.findings import Report
from reslint.runner import Job, lint_target


def forget(path: str) -> None:
    """Drop the cached import of the file at path (it was edited: the next lint imports it again)."""
    for key, module in list(sys.modules.items()):
        if os.path.abspath(getattr(module, "__file__", None) or "") == os.path.abspath(path):
            del sys.modules[key]


def load(path: str, name: str, *args, seed: int = 0) -> torch.nn.Module:
    """`name(*args)` from the file as it is now (a module name per content), seeded, in eval mode."""
    spec = importlib.util.spec_from_file_location(f"m{abs(hash((path, open(path).read())))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(seed)
    return getattr(module, name)(*args).eval()


def lint(path, shape: tuple[int, ...], name: str = "Net") -> Report:
    forget(str(path))
    return Report(lint_target(Job(f"{path}:{name}", inputs=[",".join(map(str, shape))])))


def write_model(tmp_path, source: str, shape: tuple[int, ...]):
    """tmp_path/model.py with source, and its lint report (which must find the bug)."""
    path = tmp_path / "model.py"
    path.write_text(textwrap.dedent(source))
    report = lint(path, shape)
    assert report.findings, "the bug is found"
    return path, report


def write_safe_fixes(tmp_path, path, report: Report) -> None:
    """Every finding has a safe fix, and `reslint --fix` (safe only) edits exactly the model's file."""
    from reslint.apply import plan_fixes, write

    assert all(f.fix is not None and f.fix.safe for f in report.findings), [f.fix for f in report.findings]
    assert write(plan_fixes(report, root=str(tmp_path))) == [str(path)]
