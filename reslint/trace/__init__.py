"""Frontends: a model and example inputs in, one IR out (an fx graph with shapes and locations)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch.fx as fx
from torch import nn

from reslint.errors import TargetError
from reslint.trace.fx_frontend import trace_fx
from reslint.trace.propagate import Propagation
from reslint.where import display_path, traceback_user_location


@dataclass
class Traced:
    gm: fx.GraphModule
    propagation: Propagation
    frontend: str  # "fx" or "eager"


def trace(model: nn.Module, inputs: tuple[Any, ...], frontend: str = "auto") -> Traced:
    try:
        gm = trace_fx(model)
    except Exception as error:
        where = traceback_user_location(error.__traceback__)
        at = f" at {display_path(where.path)}:{where.line}" if where else ""
        raise TargetError(f"torch.fx cannot trace {type(model).__name__}: {type(error).__name__}: {_first_line(error)}{at}") from None
    try:
        propagation = Propagation(gm, inputs).run()
    except TypeError as error:
        raise TargetError(f"{type(model).__name__}: {error}; give one --input per forward argument") from None
    return Traced(gm, propagation, "fx")


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""
