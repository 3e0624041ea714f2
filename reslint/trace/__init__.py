"""Frontends: a model and example inputs in, one IR out (an fx graph with shapes and locations).

`fx` is torch.fx's symbolic_trace; `eager` records the model's own run on meta tensors, for models
fx cannot trace. `auto` tries fx first. The analysis never knows which frontend ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch.fx as fx
from torch import nn

from reslint.errors import TargetError
from reslint.trace.data_dependent import merge_notes
from reslint.trace.eager import changed_choices, record_eager
from reslint.trace.fx_frontend import trace_fx
from reslint.trace.propagate import Propagation, first_line
from reslint.where import display_path, traceback_user_location

FRONTENDS = ("auto", "fx", "eager")


@dataclass
class Traced:
    propagation: Propagation
    frontend: str  # "fx" or "eager"
    fx_error: str | None = None  # why fx was not used, when auto fell back to eager

    @property
    def assumptions(self) -> list[str]:
        """What the analysis assumed where the model's run depends on values meta tensors do not have."""
        recorded = getattr(self.propagation.graph, "reslint_assumptions", [])
        return merge_notes(recorded, self.propagation.assumption_notes)


def retrace(model: nn.Module, traced: Traced, inputs: tuple[Any, ...]) -> Propagation:
    """Propagate other inputs: an fx graph is input-independent; an eager one is recorded again."""
    if traced.frontend == "fx":
        return Propagation(traced.propagation.root, traced.propagation.graph, inputs).run()
    branches = getattr(traced.propagation.graph, "reslint_branches", None)
    return Propagation(model, record_eager(model, inputs, branches=branches), inputs).run()


def rerecorded(model: nn.Module, traced: Traced, inputs: tuple[Any, ...]) -> Traced | None:
    """An eager recording redone with the substitutes settle chose, if they differ from those it ran on.

    The model's code after a failing op ran on the substitute the recorder handed it; when settle
    prefers another, the rest of the run (its control flow, its later failures) must be recorded again.
    """
    if traced.frontend != "eager":
        return None
    choices = changed_choices(traced.propagation.graph, traced.propagation.chosen, traced.propagation.failures)
    if choices is None:
        return None
    try:
        graph = record_eager(model, inputs, choices, getattr(traced.propagation.graph, "reslint_branches", None))
    except Exception:
        return None  # keep what the first recording found
    return Traced(_propagate(model, graph, inputs), "eager", traced.fx_error)


def trace(model: nn.Module, inputs: tuple[Any, ...], frontend: str = "auto") -> Traced:
    fx_error = None
    if frontend in ("auto", "fx"):
        try:
            graph = trace_fx(model, inputs)
            return Traced(_propagate(model, graph, inputs), "fx")
        except TargetError:
            raise
        except Exception as error:
            fx_error = f"{type(error).__name__}: {first_line(error)}{_where(error)}"
            if frontend == "fx":
                raise TargetError(f"torch.fx cannot trace {type(model).__name__}: {fx_error}; try --frontend eager") from None
    try:
        graph = record_eager(model, inputs)
    except Exception as error:
        raise TargetError(
            f"{type(model).__name__}: forward raised {type(error).__name__}: {first_line(error)}{_where(error)}"
        ) from None
    return Traced(_propagate(model, graph, inputs), "eager", fx_error)


def _propagate(model: nn.Module, graph: fx.Graph, inputs: tuple[Any, ...]) -> Propagation:
    try:
        return Propagation(model, graph, inputs).run()
    except TypeError as error:
        raise TargetError(f"{type(model).__name__}: {error}; give one --input per forward argument") from None


def _where(error: BaseException) -> str:
    where = traceback_user_location(error.__traceback__)
    return f" at {display_path(where.path)}:{where.line}" if where else ""
