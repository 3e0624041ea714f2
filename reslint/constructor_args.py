"""What each module was built with: its constructor's arguments and where in the user's code it was made.

A fix for a block class is written in the class's own parameters (`in_planes`, `planes`, `stride`), and a
fix for a layer in the expressions of the scope that made it (`padding=dilation`). Both need, per module
instance, the values those names had while the model was built. `recording()` wraps
`nn.Module.__init__` while a model is built: when a module's base `__init__` runs, the frames above it
are the module's own `__init__` chain (its arguments) and, above those, the code that called the
constructor (its site and the names it could read). Only plain values are kept (numbers, strings,
booleans, None, tuples of them): enough to solve for a number, and cheap to keep.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
from dataclasses import dataclass, field
from typing import Any, Iterator

from torch import nn


@dataclass
class Record:
    cls: type
    arguments: dict[str, Any]  # the most derived __init__'s parameters, as bound when it ran
    site_path: str = ""  # the file and line of the code that called the constructor
    site_line: int = 0
    site_names: dict[str, Any] = field(default_factory=dict)  # plain values the calling scope could read
    site_column: int = -1  # where on that line the call starts (several calls of one class on a line)
    site_owner: type | None = None  # the module class whose __init__ made the call (a layer's block), if any
    order: int = 0  # when it was made: instances made in a loop, in the loop's order


_ORDER = itertools.count()
_ATTRIBUTE = "_reslint_record"  # kept on the module itself: copies of it (reslint.check's meta twin) keep it


def record_of(module: nn.Module) -> Record | None:
    return module.__dict__.get(_ATTRIBUTE)


def plain(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    return isinstance(value, tuple) and len(value) <= 8 and all(plain(v) for v in value)


def _call_start(frame) -> tuple[int, int]:
    """(line, column) where the running call expression starts (Python >= 3.11 has instruction
    positions), else the frame's line and -1."""
    try:
        positions = next(itertools.islice(frame.f_code.co_positions(), frame.f_lasti // 2, None), None)  # not the whole list
        if positions[0] is not None and positions[2] is not None:
            return positions[0], positions[2]
    except (AttributeError, IndexError, TypeError):
        pass
    return frame.f_lineno, -1


def site_of(record: Record) -> tuple[str, int, int]:
    """The creating call: file, line, column."""
    return record.site_path, record.site_line, record.site_column


def _plain_locals(frame) -> dict[str, Any]:
    try:
        items = dict(frame.f_locals)
    except Exception:  # noqa: BLE001  an exotic frame: nothing to read
        return {}
    return {k: v for k, v in items.items() if k not in ("self", "__class__") and plain(v)}


@contextlib.contextmanager
def recording() -> Iterator[None]:
    """Record every module constructed inside the block (nested use is a no-op).

    reslint builds targets under it. From Python, build the model under it for fixes in the class's
    own terms: `with reslint.recording(): model = Net()`, then `reslint.check(model, x).apply_fixes()`.
    """
    original = nn.Module.__init__
    if getattr(original, "_reslint_recording", False):
        yield
        return

    def init(self, *args, **kwargs):
        try:
            _record(self, sys._getframe(1))
        except Exception:  # noqa: BLE001  recording is an aid: never break the user's constructor
            pass
        original(self, *args, **kwargs)

    init._reslint_recording = True  # type: ignore[attr-defined]
    nn.Module.__init__ = init  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.__init__ = original  # type: ignore[method-assign]


def _record(module: nn.Module, frame) -> None:
    if _ATTRIBUTE in module.__dict__:
        return
    outermost = None
    while frame is not None and frame.f_code.co_name == "__init__" and frame.f_locals.get("self") is module:
        outermost, frame = frame, frame.f_back
    arguments = _plain_locals(outermost) if outermost is not None else {}
    record = Record(type(module), arguments, order=next(_ORDER))
    if frame is not None:
        record.site_path, record.site_line = frame.f_code.co_filename, frame.f_lineno
        record.site_line, record.site_column = _call_start(frame)
        record.site_names = _plain_locals(frame)
        owner = frame.f_locals.get("self") if frame.f_code.co_name == "__init__" else None
        record.site_owner = type(owner) if isinstance(owner, nn.Module) else None
    module.__dict__[_ATTRIBUTE] = record
