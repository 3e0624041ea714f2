"""Example inputs: parsed from `--input [name=]1,3,224,224[:int64]`, asked of the model, and bound to its forward.

Inputs reach the frontends as one positional tuple in the forward's parameter order: a named input
(`--input time=2`) is put at its parameter's place, and an optional parameter skipped on the way
keeps its default value.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from reslint.errors import TargetError

DTYPES = {
    name: getattr(torch, name)
    for name in ("float32", "float16", "bfloat16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool")
}
DTYPES.update({"float": torch.float32, "half": torch.float16, "double": torch.float64, "long": torch.int64, "int": torch.int32})

GUESS_BATCH = 2  # a batch of one hides broadcasting bugs along the batch dimension
MAX_ELEMENTS = 2**63 - 1  # what a tensor's size (int64) can count


@dataclass
class Inputs:
    """What the model is called with, and how to say it."""

    values: tuple[Any, ...]  # positional, in the forward's parameter order (skipped optionals at their default)
    labels: list[str]  # as a user would type them: "2,3,32,32", "time=2"
    notes: list[str] = field(default_factory=list)  # assumptions made while binding (a guessed `time`)


# -- specs ------------------------------------------------------------------------------------------


def parse_input_spec(text: str) -> tuple[tuple[int, ...], torch.dtype]:
    """`1,3,224,224[:dtype]` -> (shape, dtype); any problem is one TargetError line."""
    shape_text, _, dtype_text = text.strip().partition(":")
    dtype = torch.float32
    dtype_text = dtype_text.strip()
    if dtype_text:
        if dtype_text not in DTYPES:
            raise TargetError(f"--input {text!r}: unknown dtype {dtype_text!r} (use one of {', '.join(sorted(DTYPES))})")
        dtype = DTYPES[dtype_text]
    try:
        shape = tuple(int(part) for part in shape_text.split(",") if part.strip())
    except ValueError:
        raise TargetError(f"--input {text!r}: expected comma-separated sizes like 1,3,224,224 (optionally :int64)") from None
    if not shape or any(size <= 0 for size in shape):
        raise TargetError(f"--input {text!r}: expected positive sizes like 1,3,224,224")
    if math.prod(shape) > MAX_ELEMENTS:
        raise TargetError(f"--input {text!r}: {math.prod(shape):.3g} elements is more than a tensor can hold (at most 2**63-1)")
    return shape, dtype


def split_name(text: str) -> tuple[str | None, str]:
    """`time=2` -> ("time", "2"); `2,3` -> (None, "2,3")."""
    name, sep, spec = text.partition("=")
    if not sep:
        return None, text
    name = name.strip()
    if not name.isidentifier():
        raise TargetError(f"--input {text!r}: {name!r} is not a forward argument name (expected name=1,3,224,224)")
    if not spec.strip():
        raise TargetError(f"--input {text!r}: no sizes after '{name}=' (expected {name}=1,3,224,224)")
    return name, spec.strip()


def meta_tensor(spec: str) -> torch.Tensor:
    shape, dtype = parse_input_spec(spec)
    return torch.empty(shape, dtype=dtype, device="meta")


def make_inputs(specs: list[str], model: nn.Module, fill: "Filler | None" = None) -> Inputs:
    """Tensors for `--input` specs, bound to the model's forward (positional specs in order, named ones by name)."""
    positional: list[tuple[str, torch.Tensor]] = []
    named: dict[str, tuple[str, torch.Tensor]] = {}
    for text in specs:
        name, spec = split_name(text)
        tensor = meta_tensor(spec)
        if name is None:
            positional.append((spec.strip(), tensor))
        elif name in named:
            raise TargetError(f"--input {text!r}: {name} is given twice")
        else:
            named[name] = (f"{name}={spec}", tensor)
    return bind(model, positional, named, fill)


# -- binding to the forward's signature ---------------------------------------------------------------

Filler = Callable[[str, int], "tuple[str, Any] | None"]
"""A guess for a required forward argument no input was given for: (name, batch) -> (label, value) or None."""


@dataclass
class ForwardSignature:
    """The parameters of a model's forward, as the inputs are bound to them."""

    owner: str  # "Net.forward", for messages
    positional: list[inspect.Parameter]
    keyword_only: list[inspect.Parameter]
    var_positional: bool
    var_keyword: bool

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.positional + self.keyword_only]

    def describe(self) -> str:
        names = self.names + (["*args"] if self.var_positional else []) + (["**kwargs"] if self.var_keyword else [])
        return ", ".join(names) or "no arguments"

    def required(self) -> list[str]:
        return [p.name for p in self.positional + self.keyword_only if p.default is inspect.Parameter.empty]


def forward_signature(model: nn.Module) -> ForwardSignature | None:
    try:
        signature = inspect.signature(model.forward)
    except (TypeError, ValueError):
        return None
    kinds = inspect.Parameter
    params = list(signature.parameters.values())
    return ForwardSignature(
        owner=f"{type(model).__name__}.forward",
        positional=[p for p in params if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)],
        keyword_only=[p for p in params if p.kind is kinds.KEYWORD_ONLY],
        var_positional=any(p.kind is kinds.VAR_POSITIONAL for p in params),
        var_keyword=any(p.kind is kinds.VAR_KEYWORD for p in params),
    )


def bind(
    model: nn.Module,
    positional: list[tuple[str, Any]],
    named: dict[str, tuple[str, Any]],
    fill: Filler | None = None,
) -> Inputs:
    """Put each input at its forward parameter; guess (via `fill`) or name the required ones left out."""
    signature = forward_signature(model)
    if signature is None:  # a forward inspect cannot read: pass the inputs on as given
        return Inputs(tuple(v for _, v in positional) + tuple(v for _, v in named.values()),
                      [label for label, _ in positional] + [label for label, _ in named.values()])
    params = signature.positional + signature.keyword_only
    if len(positional) > len(signature.positional) and not signature.var_positional:
        raise TargetError(
            f"{len(positional) + len(named)} inputs given, but {signature.owner} takes {len(params)} "
            f"({signature.describe()}); give one --input per forward argument"
        )
    if len(positional) > len(signature.positional):  # the rest go to *args
        if named:
            raise TargetError(f"--input: named inputs cannot follow inputs that go to *args of {signature.owner}")
        return Inputs(tuple(v for _, v in positional), [label for label, _ in positional])
    bound: dict[str, tuple[str, Any]] = {}
    for param, item in zip(signature.positional, positional):
        bound[param.name] = item
    for name, item in named.items():
        if name not in signature.names:
            raise TargetError(f"--input {item[0]}: {signature.owner} has no argument {name!r} (its arguments: {signature.describe()})")
        if name in bound:
            raise TargetError(f"--input {item[0]}: {name} is already given by a positional --input")
        bound[name] = item
    notes, missing = [], []
    batch = _batch(bound)
    for name in signature.required():
        if name in bound:
            continue
        guess = fill(name, batch) if fill else None
        if guess is None:
            missing.append(name)
        else:
            bound[name] = guess
            notes.append(f"no --input for {name}; guessed {guess[0]} from its name")
    if missing:
        raise TargetError(f"{signature.owner} needs {' and '.join(missing)} too: {_example(signature, bound, missing)}")
    # Positional order up to the last bound parameter; optionals skipped on the way keep their default.
    last = max((i for i, p in enumerate(params) if p.name in bound), default=-1)
    values, labels = [], []
    for index, param in enumerate(params[: last + 1]):
        if param.name in bound:
            label, value = bound[param.name]
            values.append(value)
            by_position = index < len(positional)
            labels.append(label if by_position or label.startswith(f"{param.name}=") else f"{param.name}={label}")
        else:
            values.append(param.default)
    return Inputs(tuple(values), labels, notes)


def call_arguments(model: nn.Module, values: tuple[Any, ...]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Inputs in forward order as a call: those past the positional parameters go to the keyword-only ones.

    torch.fx makes a placeholder of every parameter, keyword-only ones included, so a graph takes
    `values` as they are; calling the forward itself (an eager run) needs them split like this.
    """
    signature = forward_signature(model)
    if signature is None or signature.var_positional or len(values) <= len(signature.positional):
        return tuple(values), {}
    count = len(signature.positional)
    return tuple(values[:count]), {p.name: v for p, v in zip(signature.keyword_only, values[count:])}


def _batch(bound: dict[str, tuple[str, Any]]) -> int:
    for _, value in bound.values():
        if isinstance(value, torch.Tensor) and value.dim():
            return int(value.shape[0])
    return GUESS_BATCH


def _example(signature: ForwardSignature, bound: dict[str, tuple[str, Any]], missing: list[str]) -> str:
    """The flags that would give every required argument: `--input x=2,3,32,32 --input time=2`."""
    flags = []
    for name in signature.names:
        if name in bound:
            label = bound[name][0]
            flags.append(f"--input {label if label.startswith(name + '=') else f'{name}={label}'}")
        elif name in missing:
            flags.append(f"--input {name}=SIZES")
    return " ".join(flags)


# -- what the model says about itself, and how to say what was used ---------------------------------------


def describe(inputs: tuple[Any, ...]) -> list[str]:
    """Inputs as the spec strings a user would type to reproduce them."""
    described = []
    for value in inputs:
        if isinstance(value, torch.Tensor):
            text = ",".join(str(size) for size in value.shape)
            if value.dtype != torch.float32:
                text += ":" + str(value.dtype).removeprefix("torch.")
            described.append(text)
        else:
            described.append(type(value).__name__)
    return described


def model_inputs(model: nn.Module) -> tuple[Any, ...] | None:
    """The inputs a model declares itself (Lightning's `example_input_array`, or `example_inputs()`)."""
    example = getattr(model, "example_input_array", None)
    if example is None and callable(getattr(model, "example_inputs", None)):
        example = model.example_inputs()
    if example is None:
        return None
    if not isinstance(example, (tuple, list)):
        example = (example,)
    return tuple(_to_meta(value) for value in example)


def _to_meta(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return torch.empty(value.shape, dtype=value.dtype, device="meta")
    return value
