"""TorchScript left as Python while reslint imports and builds a model, so its blocks can be analyzed.

A block wrapped in `torch.jit.script` (or traced with `torch.jit.trace`) is compiled: neither torch.fx
nor the eager recorder can see inside it, and its joins would go unchecked. reslint builds the model
itself, so while the target's module is imported and the model is built, `torch.jit.script`,
`torch.jit.trace`, `torch.jit.trace_module`, `torch.jit.script_method` and `torch.compile` return what
they were given (and `torch.set_default_device` does nothing: the run stays on meta);
the names of what was left as Python are said in a note. A scripted module that still ends up in the
model (made before reslint started, or by a library that compiled it some other way) is named by
`scripted_submodules`, so the result can say that it was not looked into.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
from torch import nn

_PATCHED = ("script", "trace", "trace_module", "script_method")


@contextlib.contextmanager
def python_jit(left_as_python: list[str]) -> Iterator[list[str]]:
    """Within: torch.jit.script/trace/trace_module/script_method return their argument unchanged.

    The name of each object that would have been compiled is appended to `left_as_python`.
    """
    jit = torch.jit
    saved = {name: getattr(jit, name) for name in _PATCHED}

    def keep(obj: Any = None, *args: Any, **kwargs: Any) -> Any:
        if obj is not None:
            _remember(left_as_python, obj)
        return obj

    def keep_method(fn: Any) -> Any:
        return fn

    def keep_compiled(model: Any = None, **kwargs: Any) -> Any:
        if model is None:  # `@torch.compile(mode=...)`: a decorator that keeps the function
            return lambda fn: keep_compiled(fn)
        _remember(left_as_python, model)
        return model

    def default_device(device: Any) -> None:
        """A model's `torch.set_default_device("cuda")` would move reslint's own meta run off meta."""

    for name in ("script", "trace", "trace_module"):
        setattr(jit, name, keep)
    jit.script_method = keep_method
    compile_, set_default_device = torch.compile, torch.set_default_device
    torch.compile, torch.set_default_device = keep_compiled, default_device
    try:
        yield left_as_python
    finally:
        for name, original in saved.items():
            setattr(jit, name, original)
        torch.compile, torch.set_default_device = compile_, set_default_device


def note(left_as_python: list[str]) -> str | None:
    """`torch.jit.script was left as Python so its blocks could be analyzed: Block, fused_add`."""
    if not left_as_python:
        return None
    names = list(dict.fromkeys(left_as_python))
    shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    return f"torch.jit.script/torch.compile was left as Python so its blocks could be analyzed: {shown}"


def scripted_submodules(model: nn.Module) -> list[str]:
    """Parts of the model that are compiled TorchScript modules, each "where: why" (outermost only)."""
    found: list[str] = []
    outer: list[str] = []  # module paths already reported: their submodules are inside them
    for path, module in model.named_modules():
        if not isinstance(module, torch.jit.ScriptModule):
            continue
        if any(p == "" or path.startswith(p + ".") for p in outer):
            continue
        outer.append(path)
        kind = getattr(module, "original_name", None) or type(module).__name__
        found.append(
            f"{path or 'the model'} ({kind}): a TorchScript module made outside reslint's build; "
            "reslint cannot look inside it, so its joins were not checked"
        )
    return found


def _remember(names: list[str], obj: Any) -> None:
    if isinstance(obj, nn.Module):
        names.append(type(obj).__name__)
    else:
        names.append(getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or type(obj).__name__)
