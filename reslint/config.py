"""`[tool.reslint]` in pyproject.toml: rule selection, rule options and the targets to lint.

    [tool.reslint]
    select = ["RL00"]
    ignore = ["RL005"]
    rl005-depth = 24

    [[tool.reslint.targets]]
    model = "models/unet.py:UNet(channels=16)"
    inputs = ["1,3,256,256"]

Paths in targets are relative to the pyproject.toml. Command-line flags override the file.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

from reslint.errors import TargetError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

RULE_OPTIONS = {"rl005-depth": int}
KNOWN_KEYS = {"select", "ignore", "targets", "frontend", "timeout", "jobs", *RULE_OPTIONS}


@dataclass
class ConfiguredTarget:
    model: str  # the target string, with a path made absolute
    inputs: list[str]
    file: str | None  # the model's file, for matching the paths pre-commit passes


@dataclass
class Config:
    path: str | None = None
    select: list[str] | None = None
    ignore: list[str] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    targets: list[ConfiguredTarget] = field(default_factory=list)
    frontend: str | None = None
    timeout: float | None = None
    jobs: int | None = None


def find_pyproject(start: str) -> str | None:
    folder = os.path.abspath(start)
    while True:
        candidate = os.path.join(folder, "pyproject.toml")
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def load_config(start: str = ".") -> Config:
    path = find_pyproject(start)
    if path is None:
        return Config()
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise TargetError(f"{path}: invalid TOML: {error}") from None
    section = data.get("tool", {}).get("reslint")
    if section is None:
        return Config(path=path)
    unknown = set(section) - KNOWN_KEYS
    if unknown:
        raise TargetError(f"{path}: unknown [tool.reslint] key {', '.join(sorted(unknown))} (known: {', '.join(sorted(KNOWN_KEYS))})")
    root = os.path.dirname(path)
    config = Config(
        path=path,
        select=_codes(section.get("select"), path, "select"),
        ignore=_codes(section.get("ignore"), path, "ignore"),
        frontend=section.get("frontend"),
        timeout=section.get("timeout"),
        jobs=section.get("jobs"),
    )
    for key, kind in RULE_OPTIONS.items():
        if key in section:
            if not isinstance(section[key], kind):
                raise TargetError(f"{path}: {key} must be a {kind.__name__}")
            config.options[key] = section[key]
    for entry in section.get("targets", []):
        if not isinstance(entry, dict) or not isinstance(entry.get("model"), str):
            raise TargetError(f'{path}: each [[tool.reslint.targets]] needs model = "file.py:Name"')
        inputs = entry.get("inputs", [])
        if isinstance(inputs, str):
            inputs = [inputs]
        config.targets.append(_target(root, entry["model"], [str(i) for i in inputs]))
    return config


def _codes(value: Any, path: str, key: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TargetError(f"{path}: {key} must be a list of rule codes")
    return value


def _target(root: str, model: str, inputs: list[str]) -> ConfiguredTarget:
    from reslint.target import parse_target

    spec = parse_target(model)
    if not spec.is_file:
        return ConfiguredTarget(model, inputs, _module_file(spec.source))
    absolute = os.path.normpath(os.path.join(root, spec.source))
    return ConfiguredTarget(absolute + model[len(spec.source):], inputs, absolute)


def _module_file(module: str) -> str | None:
    import importlib.util

    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return os.path.abspath(found.origin) if found and found.origin else None
