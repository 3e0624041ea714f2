"""Turn a target into a module built on the meta device.

The user's code is imported, the named class or factory is called (with the target's literal
arguments), and the module is built without memory for its weights: under `torch.device("meta")`
first; if its constructor needs real tensors (`.item()`, copying into weights), with every parameter
moved to meta as it is registered; and as a last resort on the CPU, then moved to meta.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import os
import sys
import types
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
from torch import nn

from reslint.errors import TargetError
from reslint.materialize import BuildMemoryError, bounded_cpu_build, build_budget, reading_weights
from reslint.target import TargetSpec
from reslint.where import display_path, traceback_user_location


@dataclass
class BuiltModel:
    module: nn.Module
    label: str  # "file.py:Name" as shown in reports
    notes: list[str]  # assumptions said out loud (CPU build, guessed inputs, ...)


def import_source(spec: TargetSpec) -> types.ModuleType:
    if spec.is_file:
        return _import_file(spec.source)
    try:
        return importlib.import_module(spec.source)
    except ModuleNotFoundError as error:
        if error.name and spec.source.startswith(error.name):
            raise TargetError(
                f"module {spec.source!r} not found; give a file path (model.py:Net) "
                "or an importable module (package.models:Net)"
            ) from None
        raise _import_error(spec.source, error) from None
    except Exception as error:
        raise _import_error(spec.source, error) from None


def _import_file(path: str) -> types.ModuleType:
    if not os.path.exists(path):
        raise TargetError(f"{path}: file not found")
    if os.path.isdir(path):
        raise TargetError(f"{path}: is a folder; name a file, or lint the folder without ':Name'")
    path = os.path.abspath(path)
    name = os.path.splitext(os.path.basename(path))[0]
    existing = sys.modules.get(name)
    if existing is not None:
        if os.path.abspath(getattr(existing, "__file__", "") or "") == path:
            return existing
        name = f"reslint_target_{abs(hash(path))}_{name}"
    # Sibling imports (`from blocks import Block`) work as they do when the file is run as a script.
    folder = os.path.dirname(path)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    module_spec = importlib.util.spec_from_file_location(name, path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except SyntaxError as error:
        del sys.modules[name]
        raise TargetError(f"{display_path(path)}:{error.lineno}: syntax error: {error.msg}") from None
    except Exception as error:
        del sys.modules[name]
        raise _import_error(display_path(path), error) from None
    return module


def _import_error(source: str, error: BaseException) -> TargetError:
    where = traceback_user_location(error.__traceback__)
    at = f" at {where.path and display_path(where.path)}:{where.line}" if where else ""
    return TargetError(f"importing {source} raised {type(error).__name__}: {error}{at}")


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


def build(factory: Any, spec: TargetSpec, label: str) -> BuiltModel:
    """Call the class or factory on meta, falling back as the module docstring says."""
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

    notes: list[str] = []
    attempts = (("meta", _on_meta_device), ("lazy", _reading_weights), ("cpu", _bounded_cpu_build))
    first_error: BaseException | None = None
    for how, context in attempts:
        try:
            with context() as state:
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
        break
    if not isinstance(model, nn.Module):
        raise TargetError(f"{label}: {spec.name}(...) returned a {type(model).__name__}, not an nn.Module")
    return BuiltModel(_to_meta(model).eval(), label, notes)


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
    if any(t.device.type != "meta" for t in [*model.parameters(), *model.buffers()]):
        model = model.to("meta")
    return model


def load_targets(spec: TargetSpec) -> list[tuple[str, Callable[[], BuiltModel]]]:
    """Targets named by a spec, each with a thunk that builds it (so one failure does not stop others).

    A spec with a name gives one target; a bare file gives the nn.Module classes defined in it.
    """
    module = import_source(spec)
    if spec.name is not None:
        label = spec.text
        return [(label, lambda: build(resolve(module, spec.name, label), spec, label))]
    found = []
    for name in module_classes(module):
        cls = getattr(module, name)
        if missing_arguments(cls, (), {}):
            continue
        sub = TargetSpec(source=spec.source, name=name, text=f"{spec.source}:{name}")
        found.append((sub.text, lambda cls=cls, sub=sub: build(cls, sub, sub.text)))
    return found


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
            empty = torch.empty_like(tensor, device="meta")
            twins[id(tensor)] = nn.Parameter(empty, requires_grad=tensor.requires_grad) if isinstance(tensor, nn.Parameter) else empty
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
