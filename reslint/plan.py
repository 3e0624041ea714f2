"""From what the user typed (or what pre-commit passed) and the config, to the jobs to run.

Pre-commit passes the files that changed as bare paths. For those, a configured target is linted when
its own file or any project file it imports (transitively, found statically by reslint.imports) is
among them; the nn.Module classes defined in the changed files are discovered and linted too (a file
without models passes).

No torch here: planning happens before anything heavy is imported.
"""

from __future__ import annotations

import os

from reslint.config import Config, ConfiguredTarget
from reslint.errors import TargetError
from reslint.imports import ImportGraph, package_base
from reslint.runner import Job

SKIP_DIRS = {".git", ".venv", "venv", "__pycache__", "node_modules", "build", "dist", ".tox", ".mypy_cache"}


def plan_jobs(targets: list[str], config: Config, inputs: list[str], select, ignore, frontend: str, options: dict) -> list[Job]:
    common = dict(select=select, ignore=ignore, frontend=frontend, options=tuple(sorted(options.items())))

    def configured(target: ConfiguredTarget) -> Job:
        return Job(target.model, tuple(inputs or target.inputs), root=target.root, **common)

    configured_by_model = {t.model: t for t in config.targets}
    if not targets:
        if not config.targets:
            where = config.path or "pyproject.toml"
            raise TargetError(
                "nothing to lint: give a target (reslint model.py:Net) or configure targets in "
                f'{where}:\n  [[tool.reslint.targets]]\n  model = "model.py:Net"\n  inputs = ["1,3,224,224"]'
            )
        return [configured(t) for t in config.targets]
    jobs = []
    affected = _AffectedTargets(config)
    for text in targets:
        if _is_path(text):
            for path in _python_files(text):
                jobs += [configured(t) for t in affected.by(path)]
                if _may_define_models(path):
                    mine = [t for t in config.targets if t.file and _same_file(t.file, path)]
                    excluded = tuple(t.model.rpartition(":")[2].split("(")[0] for t in mine)
                    # A file the user named must define a model; pre-commit's changed files and the
                    # files of a folder need not (the CLI still fails a run that linted nothing).
                    lenient = precommit_mode() or os.path.isdir(text)
                    jobs.append(Job(path, tuple(inputs), discovered=True, lenient=lenient, exclude=excluded, **common))
        else:
            match = configured_by_model.get(text)
            if match:
                jobs.append(configured(match))
            else:
                jobs.append(Job(text, tuple(inputs), root=config.root, **common))
    return jobs


def nothing_linted(targets: list[str], results: list) -> str | None:
    """The error for a run of named files or folders in which no model at all was analyzed.

    A gate that exits 0 must have checked something: `reslint model.py` whose every class needs
    arguments (or whose guesses all failed), an empty file or a folder without models lints nothing,
    and says so with exit 2. pre-commit's changed files are exempt: a commit that touches no model passes.
    """
    paths = [text for text in targets if _is_path(text)]
    if precommit_mode() or not paths:
        return None
    if any(result.status in ("ok", "findings", "incomplete", "error") for result in results):
        return None  # something was checked, or an error already fails the run
    skipped = sum(1 for result in results if result.status == "skipped")
    why = f"all {skipped} nn.Module classes found were skipped (each says why above)" if skipped else "no nn.Module class was found"
    return f"nothing was linted in {', '.join(paths)}: {why}; name a model with its arguments, e.g. model.py:Net(depth=2), with --input if needed"


def precommit_mode() -> bool:
    """pre-commit runs hooks with PRE_COMMIT=1: the paths are changed files, not models the user named."""
    return os.environ.get("PRE_COMMIT") == "1"


class _AffectedTargets:
    """Which configured targets a changed file concerns: each target once, on the first file that does."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.graph = ImportGraph()
        self.dependencies: dict[int, set[str]] = {}  # by index in config.targets, computed when first needed
        self.planned: set[int] = set()

    def by(self, path: str) -> list[ConfiguredTarget]:
        changed = _real(path)
        found = []
        for index, target in enumerate(self.config.targets):
            if index in self.planned or not target.file:
                continue
            if changed in self._dependencies(index, target):
                self.planned.add(index)
                found.append(target)
        return found

    def _dependencies(self, index: int, target: ConfiguredTarget) -> set[str]:
        if index not in self.dependencies:
            file = target.file
            if _installed(file, target.root):  # an installed model (torchvision.models:resnet50)
                self.dependencies[index] = {_real(file)}
                return self.dependencies[index]
            # Where its imports resolve: the project, the file's folder (script-style sibling imports)
            # and the folder its package is imported from.
            search = [f for f in (target.root, os.path.join(target.root or "", "src")) if f and os.path.isdir(f)]
            search += [os.path.dirname(os.path.abspath(file)), package_base(file)]
            self.dependencies[index] = {_real(p) for p in self.graph.dependencies(file, search)}
        return self.dependencies[index]


def _installed(file: str, root: str | None) -> bool:
    """In site-packages, or in an environment or build folder inside the project: not the user's code."""
    installed = {"site-packages", "dist-packages"}
    path = _real(file)
    base = _real(root) if root else None
    if base and path.startswith(base + os.sep):
        return any(p in SKIP_DIRS or p in installed for p in path[len(base) + 1 :].split(os.sep))
    return any(p in installed for p in path.split(os.sep))


def _real(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


def _same_file(a: str, b: str) -> bool:
    return _real(a) == _real(b)


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
