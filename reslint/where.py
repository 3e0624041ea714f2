"""Which frames of a stack are the user's model code, as opposed to torch, reslint or the stdlib.

Locations are the user's: a finding points at the line of their model (or torchvision's own files),
never at torch internals.
"""

from __future__ import annotations

import itertools
import os
import sys
import sysconfig
import types
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class SourceLocation:
    path: str
    line: int
    column: int  # 1-based; 0 when unknown
    end_column: int = 0  # 1-based, exclusive; 0 when unknown or on another line

    def __str__(self) -> str:
        return f"{display_path(self.path)}:{self.line}:{self.column}"


@lru_cache(maxsize=1)
def _library_roots() -> tuple[str, ...]:
    roots = [os.path.dirname(os.path.abspath(__file__)), sysconfig.get_paths()["stdlib"]]
    torch = sys.modules.get("torch")
    if torch is not None:
        roots.append(os.path.dirname(os.path.abspath(torch.__file__)))
    for name in ("typer", "click", "rich"):
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__file__", None):
            roots.append(os.path.dirname(os.path.abspath(module.__file__)))
    return tuple(root + os.sep for root in roots)


@lru_cache(maxsize=4096)
def is_user_file(filename: str) -> bool:
    if filename.startswith("<"):  # <string>, <eval_with_key>: generated code
        return False
    return not os.path.abspath(filename).startswith(_library_roots())


def frame_location(frame: types.FrameType) -> SourceLocation:
    """The location of the instruction a frame is executing, with its column (Python 3.11+)."""
    code = frame.f_code
    lasti = frame.f_lasti
    if lasti >= 0 and hasattr(code, "co_positions"):
        return _instruction_location(code, code.co_filename, lasti, frame.f_lineno)
    return SourceLocation(code.co_filename, frame.f_lineno, 0, 0)


@lru_cache(maxsize=65536)
def _instruction_location(code: types.CodeType, filename: str, lasti: int, lineno: int) -> SourceLocation:
    """One instruction's location: cached, as every op of a model's loop runs the same few lines
    (and finding a position walks co_positions from the start). Keyed by the filename too: equal
    code objects in two files compare equal."""
    line, column, end_column = lineno, 0, 0
    position = next(itertools.islice(code.co_positions(), lasti // 2, None), None)
    if position is not None:
        line = position[0] or line
        column = position[2] + 1 if position[2] is not None else 0
        if position[1] == line and position[3] is not None:
            end_column = position[3] + 1
    return SourceLocation(filename, line, column, end_column)


def innermost_user_frame(frame: types.FrameType | None) -> types.FrameType | None:
    """Walk outwards from `frame` to the first frame in user code."""
    while frame is not None and not is_user_file(frame.f_code.co_filename):
        frame = frame.f_back
    return frame


def traceback_user_location(tb: types.TracebackType | None) -> SourceLocation | None:
    """The innermost user-code location in a traceback (where an exception was raised)."""
    found = None
    while tb is not None:
        if is_user_file(tb.tb_frame.f_code.co_filename):
            found = SourceLocation(tb.tb_frame.f_code.co_filename, tb.tb_lineno, 0)
        tb = tb.tb_next
    return found


def display_path(path: str) -> str:
    """A path relative to the working directory when it lies below it, else as given."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative
