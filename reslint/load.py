"""Turn a target into a module built on the meta device.

The user's code is imported as Python would (reslint/importer.py), the named class or factory is
called with the target's arguments (literals, and calls of what the module defines or imports,
evaluated by reslint/expression.py), with TorchScript left as Python (reslint/python_jit.py), and
the module is built without memory for its weights: under `torch.device("meta")`
first; if its constructor needs real tensors (`.item()`, copying into weights), with every parameter
moved to meta as it is registered; and as a last resort on the CPU, then moved to meta.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import sys
import types
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from reslint import importer
from reslint.constructor_args import recording
from reslint.discover import discover
from reslint.errors import TargetError
from reslint.expression import Evaluator, has_expressions
from reslint.python_jit import python_jit, scripted_submodules
from reslint.python_jit import note as python_jit_note
from reslint.no_downloads import weights_not_downloaded
from reslint.materialize import BuildMemoryError, bounded_cpu_build, build_budget, reading_weights
from reslint.target import TargetSpec
from reslint.where import display_path, traceback_user_location


@dataclass
class BuiltModel:
    module: nn.Module
    label: str  # "file.py:Name" as shown in reports
    notes: list[str]  # assumptions said out loud (CPU build, guessed inputs, ...)
    # Parts of the model that cannot be analyzed, each "where: why" (a TorchScript module made outside
    # reslint's build): they go into TargetResult.incomplete.
    opaque: list[str] = field(default_factory=list)


class NotBuildable(TargetError):
    """A class found in a file that discovery cannot build: a `skipped` result saying what it needs."""


def import_source(spec: TargetSpec, root: str | None = None) -> types.ModuleType:
    """The target's module; `root` (the configuring pyproject's folder) is searched for module targets."""
    if spec.is_file:
        return importer.import_file(spec.source, root)
    return importer.import_module(spec.source, root, hint_name=spec.name)


def resolve(module: types.ModuleType, name: str, label: str) -> Any:
    obj: Any = module
    for part in name.split("."):
        if not hasattr(obj, part):
            candidates = ", ".join(module_classes(module)) or "none"
            raise TargetError(f"{label}: {name!r} not found in {module.__name__} (nn.Module classes there: {candidates})")
        obj = getattr(obj, part)
    return obj


def module_classes(module: types.ModuleType) -> list[str]:
    """Names of the nn.Module subclasses defined (not imported) in a module."""
    return [
        name
        for name, obj in vars(module).items()
        if inspect.isclass(obj) and issubclass(obj, nn.Module) and obj.__module__ == module.__name__
    ]


def missing_arguments(factory: Callable[..., Any], args: tuple, kwargs: dict) -> list[str]:
    """Required constructor parameters that the target does not supply."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return []
    try:
        signature.bind(*args, **kwargs)
        return []
    except TypeError:
        pass
    positional = list(signature.parameters.values())[len(args) :]
    return [
        p.name
        for p in positional
        if p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        and p.name not in kwargs
    ]


def build(factory: Any, spec: TargetSpec, label: str, namespace: types.ModuleType | None = None) -> BuiltModel:
    """Call the class or factory on meta, falling back as the module docstring says.

    Arguments that call or name something are evaluated against `namespace` (the target's module;
    by default the module that defines the factory).
    """
    is_module_class = inspect.isclass(factory) and issubclass(factory, nn.Module)
    if isinstance(factory, nn.Module):
        return BuiltModel(_to_meta(factory).eval(), label, [])
    if not is_module_class and not callable(factory):
        raise TargetError(f"{label}: {spec.name} is a {type(factory).__name__}, not an nn.Module class or a function returning one")
    if inspect.isclass(factory) and not is_module_class:
        raise TargetError(f"{label}: {spec.name} is a class but not an nn.Module subclass")
    missing = missing_arguments(factory, spec.args, spec.kwargs)
    if missing:
        example = ", ".join(f"{name}=..." for name in missing)
        raise TargetError(
            f"{label}: {spec.name} needs arguments ({', '.join(missing)}); "
            f"pass them in the target: {spec.source}:{spec.name}({example})"
        )

    factory, spec = _with_arguments_evaluated(factory, spec, label, namespace)
    notes: list[str] = []
    attempts = (("meta", _on_meta_device), ("lazy", _reading_weights), ("cpu", _bounded_cpu_build))
    first_error: BaseException | None = None
    for how, context in attempts:
        try:
            with context() as state, recording(), weights_not_downloaded() as skipped:  # constructor arguments, for fixes in the class's terms
                model = factory(*spec.args, **spec.kwargs)
        except BuildMemoryError as error:  # another way to build would take at least as much
            raise TargetError(f"{label}: {error}") from None
        except Exception as error:  # the constructor's own failure; try the next way to build
            first_error = first_error or error
            if how == "cpu":
                raise _constructor_error(label, spec, error) from None
            continue
        if how == "cpu":
            notes.append(f"{spec.name} cannot be built on the meta device ({_one_line(first_error)}); built on CPU, then moved to meta")
        elif how == "lazy":
            read = ", ".join(state.made_real) or "none"
            notes.append(f"{spec.name} computes with tensor values while it is built ({_one_line(first_error)}); built on meta, making real on the CPU only what it read (weights: {read})")
        if skipped:
            notes.append(f"pretrained weights were not downloaded (reslint needs only shapes): {', '.join(dict.fromkeys(skipped))}")
        break
    if not isinstance(model, nn.Module):
        raise TargetError(f"{label}: {spec.name}(...) returned a {type(model).__name__}, not an nn.Module")
    return BuiltModel(_to_meta(model).eval(), label, notes)


def _with_arguments_evaluated(factory: Any, spec: TargetSpec, label: str, namespace: types.ModuleType | None) -> tuple[Any, TargetSpec]:
    """A factory that evaluates the target's argument expressions on each call, and a spec without them.

    Each build attempt then gets fresh config objects (a constructor may change the one it is given),
    and a module passed as an argument is built the same way as the model. Unknown names are errors
    now, before any attempt.
    """
    if not has_expressions(spec.args, spec.kwargs):
        return factory, spec
    module = namespace or sys.modules.get(getattr(factory, "__module__", "") or "")

    def lookup(name: str) -> Any:
        if module is None or name.startswith("__") or not hasattr(module, name):
            raise KeyError(name)
        return getattr(module, name)

    where = getattr(module, "__name__", "the target's module")
    evaluator = Evaluator(lookup, where, label)
    for argument in (*spec.args, *spec.kwargs.values()):
        evaluator.resolve_names(argument)

    def construct() -> Any:
        args = [evaluator.value(a) for a in spec.args]
        kwargs = {key: evaluator.value(v) for key, v in spec.kwargs.items()}
        return factory(*args, **kwargs)

    return construct, dataclasses.replace(spec, args=(), kwargs={})


def _constructor_error(label: str, spec: TargetSpec, error: BaseException) -> TargetError:
    where = traceback_user_location(error.__traceback__)
    at = f" at {display_path(where.path)}:{where.line}" if where else ""
    return TargetError(f"{label}: constructing {spec.name} raised {type(error).__name__}: {_one_line(error)}{at}")


def _one_line(error: BaseException | None) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _on_meta_device() -> contextlib.AbstractContextManager:
    return torch.device("meta")


def _reading_weights() -> contextlib.AbstractContextManager:
    return reading_weights(build_budget())


def _bounded_cpu_build() -> contextlib.AbstractContextManager:
    return bounded_cpu_build(build_budget())


def _to_meta(model: nn.Module) -> nn.Module:
    if not any(t.device.type != "meta" for t in [*model.parameters(), *model.buffers()]):
        return model
    if not any(isinstance(m, torch.jit.ScriptModule) for m in model.modules()):
        return model.to("meta")
    # Compiled TorchScript modules cannot move: they stay as they are (opaque; see scripted_submodules).
    def move(module: nn.Module) -> None:
        if isinstance(module, torch.jit.ScriptModule):
            return
        for name, param in module._parameters.items():
            if param is not None and param.device.type != "meta":
                module._parameters[name] = meta_version(param)
        for name, buffer in module._buffers.items():
            if buffer is not None:
                module._buffers[name] = meta_version(buffer)
        for child in module.children():
            move(child)

    move(model)
    return model


def load_targets(
    spec: TargetSpec, root: str | None = None, discovered: bool = False
) -> list[tuple[str, Callable[[], BuiltModel]]]:
    """Targets named by a spec, each with a thunk that builds it (so one failure does not stop others).

    A spec with a name gives one target. A bare file gives the nn.Module classes defined in it that
    can be built (reslint/discover.py); each of the others is a target whose thunk raises
    NotBuildable, saying what it needs (a `skipped` result). When nothing at all can be built from a
    file the user named, that is an error; in pre-commit file mode (`discovered`) a file without
    models passes. `root` is the configuring pyproject's folder, searched for module targets.
    """
    left_as_python: list[str] = []
    with python_jit(left_as_python):
        module = import_source(spec, root)
    _LEFT_AS_PYTHON_AT_IMPORT.setdefault(module, []).extend(left_as_python)
    if spec.name is not None:
        label = spec.text
        return [(label, _with_python_jit(module, lambda: build(resolve(module, spec.name, label), spec, label, module)))]
    classes = module_classes(module)
    if not classes:
        if discovered:
            return []
        raise TargetError(_no_classes(spec.source, module))
    found: list[tuple[str, Callable[[], BuiltModel]]] = []
    reasons = []
    for plan in discover(module, spec.source, classes):
        if plan.target is None:
            reasons.append(plan.reason)
            found.append((f"{spec.source}:{plan.name}", _raises(NotBuildable(plan.reason))))
            continue
        sub = parse_target_text(plan.target, spec.source)
        make = (lambda sub=sub, plan=plan: _discovered_build(module, sub, plan.note))
        found.append((plan.target, _with_python_jit(module, make)))
    if not discovered and len(reasons) == len(found):
        raise TargetError(f"{spec.source}: no nn.Module class could be built: {'; '.join(reasons)}")
    return found


# Names torch.jit.script/trace was asked to compile while a module was imported (by module object).
_LEFT_AS_PYTHON_AT_IMPORT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _with_python_jit(module: types.ModuleType, make: Callable[[], BuiltModel]) -> Callable[[], BuiltModel]:
    """A build thunk that keeps TorchScript as Python and reports what it left or could not see."""

    def thunk() -> BuiltModel:
        left_as_python = list(_LEFT_AS_PYTHON_AT_IMPORT.get(module, []))
        with python_jit(left_as_python):
            built = make()
        said = python_jit_note(left_as_python)
        if said:
            built.notes.append(said)
        built.opaque.extend(scripted_submodules(built.module))
        return built

    return thunk


def _discovered_build(module: types.ModuleType, spec: TargetSpec, note: str | None) -> BuiltModel:
    built = build(resolve(module, spec.name, spec.text), spec, spec.text, module)
    if note:
        built.notes.insert(0, note)
    return built


def parse_target_text(text: str, source: str) -> TargetSpec:
    """A target discovery wrote (its source kept exactly as the user gave it)."""
    from reslint.target import parse_target

    return dataclasses.replace(parse_target(text), source=source)


def _raises(error: TargetError) -> Callable[[], BuiltModel]:
    def thunk() -> BuiltModel:
        raise error

    return thunk


def _no_classes(source: str, module: types.ModuleType) -> str:
    imported = [
        name for name, obj in vars(module).items()
        if inspect.isclass(obj) and issubclass(obj, nn.Module) and not name.startswith("_")
        and obj.__module__ != module.__name__ and not obj.__module__.startswith("torch.")
    ]
    also = f" (it imports {', '.join(imported[:5])}: name one, e.g. {source}:{imported[0]})" if imported else ""
    return f"{source}: defines no nn.Module class to lint{also}; name the class or a function that returns the model: {source}:Name"


def meta_version(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor's shape and dtype on meta, with no data; a parameter stays a parameter."""
    empty = torch.empty_like(tensor, device="meta")
    return nn.Parameter(empty, requires_grad=tensor.requires_grad) if isinstance(tensor, nn.Parameter) else empty


def meta_copy(model: nn.Module) -> nn.Module:
    """A twin of a user's model on meta, leaving theirs untouched and copying no weight data.

    Each module is copied shallowly (its attributes are shared, so locks, file handles and other
    objects that cannot be deep-copied or pickled do not matter), with its own parameter, buffer and
    submodule tables, whose tensors are meta tensors of the same shapes. Tied weights stay tied.
    """
    import copy

    twins: dict[int, Any] = {}

    def meta_tensor(tensor: torch.Tensor | None) -> torch.Tensor | None:
        if tensor is None:
            return None
        if id(tensor) not in twins:
            twins[id(tensor)] = meta_version(tensor)
        return twins[id(tensor)]

    def twin(module: nn.Module | None) -> nn.Module | None:
        if module is None:
            return None
        if id(module) not in twins:
            clone = copy.copy(module)
            twins[id(module)] = clone
            clone._parameters = {name: meta_tensor(p) for name, p in module._parameters.items()}
            clone._buffers = {name: meta_tensor(b) for name, b in module._buffers.items()}
            clone._modules = {name: twin(m) for name, m in module._modules.items()}
        return twins[id(module)]

    return twin(model).eval()
