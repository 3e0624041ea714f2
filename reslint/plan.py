"""From what the user typed (or what pre-commit passed) and the config, to the jobs to run.

No torch here: planning happens before anything heavy is imported.
"""

from __future__ import annotations

import os

from reslint.config import Config
from reslint.errors import TargetError
from reslint.runner import Job

SKIP_DIRS = {".git", ".venv", "venv", "__pycache__", "node_modules", "build", "dist", ".tox", ".mypy_cache"}


def plan_jobs(targets: list[str], config: Config, inputs: list[str], select, ignore, frontend: str, options: dict) -> list[Job]:
    common = dict(select=select, ignore=ignore, frontend=frontend, options=tuple(sorted(options.items())))
    configured_by_model = {t.model: t for t in config.targets}
    if not targets:
        if not config.targets:
            where = config.path or "pyproject.toml"
            raise TargetError(
                "nothing to lint: give a target (reslint model.py:Net) or configure targets in "
                f'{where}:\n  [[tool.reslint.targets]]\n  model = "model.py:Net"\n  inputs = ["1,3,224,224"]'
            )
        return [Job(t.model, tuple(inputs or t.inputs), **common) for t in config.targets]
    jobs = []
    for text in targets:
        if _is_path(text):
            for path in _python_files(text):
                mine = [t for t in config.targets if t.file == os.path.abspath(path)]
                jobs += [Job(t.model, tuple(inputs or t.inputs), **common) for t in mine]
                if _may_define_models(path):
                    excluded = tuple(t.model.rpartition(":")[2].split("(")[0] for t in mine)
                    jobs.append(Job(path, tuple(inputs), discovered=True, exclude=excluded, **common))
        else:
            match = configured_by_model.get(text)
            jobs.append(Job(text, tuple(inputs or (match.inputs if match else ())), **common))
    return jobs


def _is_path(text: str) -> bool:
    """A bare file or folder (no `:Name`), as pre-commit passes them."""
    if os.path.isdir(text):
        return True
    head = text[2:] if len(text) > 1 and text[1] == ":" else text  # a Windows drive letter
    return text.endswith(".py") and ":" not in head


def _python_files(path: str) -> list[str]:
    if not os.path.isdir(path):
        return [path]
    found = []
    for folder, subfolders, files in os.walk(path):
        subfolders[:] = sorted(d for d in subfolders if d not in SKIP_DIRS and not d.startswith("."))
        found += [os.path.join(folder, f) for f in sorted(files) if f.endswith(".py")]
    return found


def _may_define_models(path: str) -> bool:
    """Import only files that could define an nn.Module: a changed script is not run for nothing."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return "Module" in handle.read()
    except OSError:
        return True  # let the loader report the missing file
