"""`[tool.reslint]` in pyproject.toml: rule selection, rule options and the targets to lint.

    [tool.reslint]
    select = ["RL00"]
    ignore = ["RL005"]
    rl005-depth = 24
    max-build-memory = "8GiB"       # or "50%" of the machine's RAM, or bytes

    [[tool.reslint.targets]]
    model = "models/unet.py:UNet(channels=16)"
    inputs = ["1,3,256,256"]        # or {time = "2", x = "2,3,32,32"} for named forward arguments

Paths in targets are relative to the pyproject.toml, and so are module targets (`pkg.models:Net`).
Command-line flags override the file. Every key is checked against the table below before anything is
linted: a wrong type, a value out of range or an unknown key is one line naming the key, the file and
what is expected. No torch here: the config is read before anything heavy is imported.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

from reslint.errors import TargetError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class _Invalid(Exception):
    """A value that does not fit its key; the message says what was wrong when "expected ..." is not enough."""


@dataclass
class ConfiguredTarget:
    model: str  # the target string, with a path made absolute
    inputs: list[str]
    file: str | None  # the model's file, for matching the paths pre-commit passes
    root: str | None = None  # the folder of the pyproject.toml that configures it: module targets resolve from it


@dataclass
class Config:
    path: str | None = None
    select: list[str] | None = None
    ignore: list[str] | None = None
    options: dict[str, Any] = field(default_factory=dict)  # rule options, by their key (rl005-depth)
    targets: list[ConfiguredTarget] = field(default_factory=list)
    frontend: str | None = None
    timeout: float | None = None
    jobs: int | None = None
    allow_incomplete: bool = False
    max_build_memory: int | None = None  # bytes

    @property
    def root(self) -> str | None:
        """The folder of the pyproject.toml: relative paths and module targets resolve from it."""
        return os.path.dirname(self.path) if self.path else None


# ---- checks: each returns the value as Config stores it, or raises _Invalid ----


def _int_at_least(low: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise _Invalid
        return value

    return check


def _positive_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise _Invalid
    return float(value)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid
    return value


def _one_of(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise _Invalid
        return value

    return check


def _rule_codes(value: Any) -> list[str]:
    from reslint.rules import unknown_codes  # torch-free

    codes = [value] if isinstance(value, str) else value
    if not isinstance(codes, list) or not all(isinstance(code, str) for code in codes):
        raise _Invalid
    unknown = unknown_codes(codes)
    if unknown:
        raise _Invalid(f"unknown rule code {', '.join(unknown)}")
    return codes


_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_memory(value: Any) -> int:
    """Bytes from 8589934592, "8GiB", "500MB", "1.5 GB" or "50%" (of the machine's RAM)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise _Invalid
        return value
    if not isinstance(value, str):
        raise _Invalid
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*|%)\s*", value)
    if not match:
        raise _Invalid
    number, unit = float(match.group(1)), match.group(2).lower()
    if unit == "%":
        if not 0 < number <= 100:
            raise _Invalid("a percentage must be in (0, 100]")
        return int(machine_memory() * number / 100)
    if unit not in _UNITS or number <= 0:
        raise _Invalid
    return int(number * _UNITS[unit])


def machine_memory() -> int:
    """The machine's RAM in bytes (16 GiB when the platform does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX
        return 16 << 30


# ---- the schema: key -> (check, what is expected) ----

SCHEMA: dict[str, tuple[Callable[[Any], Any], str]] = {
    "select": (_rule_codes, 'a rule code or prefix, or a list of them (select = ["RL001", "RL00"])'),
    "ignore": (_rule_codes, 'a rule code or prefix, or a list of them (ignore = ["RL005"])'),
    "rl005-depth": (_int_at_least(2), "an integer >= 2"),
    "frontend": (_one_of("auto", "fx", "eager"), '"auto", "fx" or "eager"'),
    "timeout": (_positive_number, "a number of seconds > 0 (timeout = 120)"),
    "jobs": (_int_at_least(1), "an integer >= 1"),
    "allow-incomplete": (_boolean, "true or false"),
    "max-build-memory": (parse_memory, 'a size like "8GiB" or "500MB", a share of RAM like "50%", or bytes'),
    "targets": (lambda value: value, "an array of tables: [[tool.reslint.targets]]"),  # checked by _targets
}
RULE_OPTIONS = ("rl005-depth",)  # keys that go to Config.options, for the rules
TARGET_KEYS = ("model", "inputs")
KNOWN_KEYS = set(SCHEMA)


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
    """The config of the nearest pyproject.toml at or above start; TargetError (one line) when it is wrong."""
    path = find_pyproject(start)
    if path is None:
        return Config()
    shown = _display(path)
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise TargetError(f"{shown}: invalid TOML: {error}; fix the file (reslint reads [tool.reslint])") from None
    except (OSError, UnicodeDecodeError) as error:
        raise TargetError(f"{shown}: cannot read it: {error}") from None
    tool = data.get("tool", {})
    if not isinstance(tool, dict):
        raise TargetError(f"{shown}: tool = {_toml(tool)}: expected a table ([tool.reslint])")
    section = tool.get("reslint")
    if section is None:
        return Config(path=path)
    if not isinstance(section, dict):
        raise TargetError(f"{shown}: [tool] reslint = {_toml(section)}: expected a table: [tool.reslint] with keys {_known(SCHEMA)}")
    _reject_unknown(section, SCHEMA, "[tool.reslint]", shown)
    values = {}
    for key, value in section.items():
        check, expected = SCHEMA[key]
        try:
            values[key] = check(value)
        except _Invalid as problem:
            why = f"{problem}; " if str(problem) else ""
            raise TargetError(f"{shown}: [tool.reslint] {key} = {_toml(value)}: {why}expected {expected}") from None
    config = Config(
        path=path,
        select=values.get("select"),
        ignore=values.get("ignore"),
        options={key: values[key] for key in RULE_OPTIONS if key in values},
        frontend=values.get("frontend"),
        timeout=values.get("timeout"),
        jobs=values.get("jobs"),
        allow_incomplete=values.get("allow-incomplete"),
        max_build_memory=values.get("max-build-memory"),
    )
    config.targets = _targets(section.get("targets", []), os.path.dirname(path), shown)
    return config


def _targets(entries: Any, root: str, shown: str) -> list[ConfiguredTarget]:
    if isinstance(entries, dict):
        entries = [entries]  # [tool.reslint.targets] written as one table: take it as one entry
    if not isinstance(entries, list):
        raise TargetError(f"{shown}: [tool.reslint] targets = {_toml(entries)}: expected {SCHEMA['targets'][1]}")
    targets = []
    for number, entry in enumerate(entries, 1):
        where = f"[[tool.reslint.targets]] #{number}"
        if not isinstance(entry, dict):
            raise TargetError(f"{shown}: {where} = {_toml(entry)}: expected a table with model = \"file.py:Name\"")
        _reject_unknown(entry, TARGET_KEYS, where, shown)
        model = entry.get("model")
        if not isinstance(model, str) or not model.strip():
            got = "missing" if model is None else f"= {_toml(model)}"
            raise TargetError(f'{shown}: {where} model {got}: expected a target string, model = "models/net.py:Net"')
        inputs = _inputs(entry.get("inputs", []))
        if inputs is None:
            raise TargetError(
                f"{shown}: {where} inputs = {_toml(entry['inputs'])}: expected a spec string, a list of them "
                '(inputs = ["2,3,32,32"]) or a table of named arguments (inputs = {time = "2", x = "2,3,32,32"})'
            )
        try:
            targets.append(_target(root, model.strip(), inputs))
        except TargetError as error:
            raise TargetError(f"{shown}: {where}: {error}") from None
    return targets


def _inputs(value: Any) -> list[str] | None:
    """Input specs as strings ("2,3,32,32", "time=2"), or None when the value has the wrong shape."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(spec, str) for spec in value):
        return list(value)
    if isinstance(value, dict) and all(isinstance(spec, str) and name.isidentifier() for name, spec in value.items()):
        return [f"{name}={spec}" for name, spec in value.items()]
    return None


def _target(root: str, model: str, inputs: list[str]) -> ConfiguredTarget:
    from reslint.imports import module_file
    from reslint.target import parse_target

    spec = parse_target(model)
    if not spec.is_file:
        return ConfiguredTarget(model, inputs, module_file(spec.source, _module_search(root)), root)
    absolute = os.path.normpath(os.path.join(root, spec.source))
    return ConfiguredTarget(absolute + model[len(spec.source):], inputs, absolute, root)


def _module_search(root: str) -> list[str]:
    """Where a module target's file is looked for, without importing anything: the project, then sys.path."""
    src = os.path.join(root, "src")
    return [root, *([src] if os.path.isdir(src) else []), *(p or os.getcwd() for p in sys.path)]


def _reject_unknown(table: dict, known, where: str, shown: str) -> None:
    for key in table:
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1)
            hint = f'did you mean "{close[0]}"? ' if close else ""
            raise TargetError(f"{shown}: unknown key {_toml(key)} in {where}; {hint}known keys: {_known(known)}")


def _known(keys) -> str:
    return ", ".join(keys)


def _toml(value: Any) -> str:
    """A value as it reads in the file, kept short for a one-line message."""
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _display(path: str) -> str:
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path
    return path if relative.startswith("..") else relative
