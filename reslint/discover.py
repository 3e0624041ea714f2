"""Which nn.Module classes of a file can be linted without being named, and how to build each.

A class is built when its constructor needs no arguments, or when its only required parameter is a
config whose class is known: its annotation (`config: GPTConfig`), a transformers-style `config_class`,
or else, for a parameter named like a config (`config`, `cfg`, `args`, `params`, ...), the one
config-like class of the module (a class that is not an nn.Module and whose constructor needs no
arguments; with several, the one named like a config, `...Config`, `...Args`, `...Params`). Such a
model is built with the config's defaults, through the same target text a user would write
(`model.py:GPT(GPTConfig())`), and a note says so. Every other class is listed with the reason and the
target text that would lint it. Only signatures are read here; nothing is constructed.
"""

from __future__ import annotations

import enum
import inspect
import re
import types
import typing
from dataclasses import dataclass

from torch import nn

CONFIG_PARAMETER = re.compile(r"conf|cfg|args|param|opt|setting|hp|spec", re.IGNORECASE)
CONFIG_CLASS = re.compile(r"(config|configuration|cfg|args|arguments|params|parameters|hparams|options|settings)$", re.IGNORECASE)


@dataclass(frozen=True)
class Discovered:
    name: str  # the class name
    target: str | None = None  # target text that builds it; None when it cannot be built
    note: str | None = None  # said on the result: how it was built
    reason: str | None = None  # why it was not built, with the target text that would lint it


def discover(module: types.ModuleType, source: str, defined: list[str]) -> list[Discovered]:
    """How to build each nn.Module class in `defined` (classes the module defines), in order."""
    return [_plan(module, source, name, getattr(module, name)) for name in defined]


def _plan(module: types.ModuleType, source: str, name: str, cls: type) -> Discovered:
    if getattr(cls, "forward", None) is nn.Module.forward:
        return Discovered(name, reason=f"{name} defines no forward (a base class?)")
    required = required_parameters(cls)
    if required is None or not required:
        return Discovered(name, target=f"{source}:{name}")
    if len(required) == 1:
        config = _config_class(module, cls, required[0])
        if isinstance(config, tuple):
            expression, config_cls = config
            config_needs = required_parameters(config_cls) or []
            if not config_needs:
                call = f"{name}({_pass(required[0], expression + '()')})"
                return Discovered(name, target=f"{source}:{call}", note=f"built {call} with the config's defaults")
            inner = f"{expression}({_placeholders(config_needs)})"
            return Discovered(
                name,
                reason=f"{name} needs a {expression} ({required[0].name}), whose constructor needs arguments "
                f"({', '.join(p.name for p in config_needs)}): reslint '{source}:{name}({_pass(required[0], inner)})'",
            )
        if config:  # a reason why the config class is not known
            return Discovered(name, reason=f"{name} needs arguments ({required[0].name}; {config}): reslint '{source}:{name}({_placeholders(required)})'")
    names = ", ".join(p.name for p in required)
    return Discovered(name, reason=f"{name} needs arguments ({names}): reslint '{source}:{name}({_placeholders(required)})'")


def required_parameters(factory: typing.Any) -> list[inspect.Parameter] | None:
    """The parameters a call must supply (no default, not *args/**kwargs); None when unknown."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return None
    return [
        p for p in signature.parameters.values()
        if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def _config_class(module: types.ModuleType, cls: type, parameter: inspect.Parameter) -> tuple[str, type] | str | None:
    """(expression naming it in the module, class) for a known config; else a reason, or None for none."""
    known = _annotated_class(module, parameter.annotation)
    if known is None and inspect.isclass(getattr(cls, "config_class", None)):
        known = cls.config_class  # transformers' PreTrainedModel subclasses name their config
    if known is None:
        if parameter.annotation is not inspect.Parameter.empty or not CONFIG_PARAMETER.search(parameter.name):
            return None
        candidates = config_like_classes(module)
        named = [c for c in candidates if CONFIG_CLASS.search(c.__name__)]
        chosen = named if named else candidates
        if len(chosen) != 1:
            if len(chosen) > 1:
                return "several config classes could fit: " + ", ".join(c.__name__ for c in chosen)
            return None
        known = chosen[0]
    expression = name_in_module(module, known)
    if expression is None:
        return f"its config class {known.__name__} is not a name in the module"
    return expression, known


def _annotated_class(module: types.ModuleType, annotation: typing.Any) -> type | None:
    if annotation is inspect.Parameter.empty:
        return None
    if isinstance(annotation, str):  # `from __future__ import annotations`, or a quoted name
        annotation = _lookup_dotted(module, annotation.strip().strip("'\""))
    elif typing.get_origin(annotation) in (typing.Union, getattr(types, "UnionType", typing.Union)):
        classes = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = classes[0] if len(classes) == 1 else None
    return annotation if _is_config_like(annotation) else None


def _lookup_dotted(module: types.ModuleType, text: str) -> typing.Any:
    if text.startswith("Optional[") and text.endswith("]"):
        text = text[len("Optional["):-1]
    text = text.removesuffix(" | None").removesuffix("|None")
    obj: typing.Any = module
    for part in text.split("."):
        if not part.isidentifier():
            return None
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def config_like_classes(module: types.ModuleType) -> list[type]:
    """Classes the module defines that could be a model's config: not a module, buildable without arguments."""
    return [
        obj for obj in vars(module).values()
        if inspect.isclass(obj) and obj.__module__ == module.__name__ and _is_config_like(obj)
        and required_parameters(obj) == []
    ]


def _is_config_like(obj: typing.Any) -> bool:
    return (
        inspect.isclass(obj)
        and obj.__module__ not in ("builtins", "typing", "collections", "enum")
        and not issubclass(obj, (nn.Module, enum.Enum, BaseException))
    )


def name_in_module(module: types.ModuleType, obj: typing.Any) -> str | None:
    """How a target can name obj in the module: a global (`GPTConfig`) or an attribute of one (`configs.Small`)."""
    names = vars(module)
    for key, value in names.items():
        if value is obj and not key.startswith("__"):
            return key
    for key, value in names.items():
        if isinstance(value, types.ModuleType) and not key.startswith("__") and getattr(value, obj.__name__, None) is obj:
            return f"{key}.{obj.__name__}"
    return None


def _pass(parameter: inspect.Parameter, value: str) -> str:
    return f"{parameter.name}={value}" if parameter.kind is parameter.KEYWORD_ONLY else value


def _placeholders(parameters: list[inspect.Parameter]) -> str:
    return ", ".join("..." if p.kind is p.POSITIONAL_ONLY else f"{p.name}=..." for p in parameters)
