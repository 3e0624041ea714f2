"""Example inputs: parsed from `--input 1,3,224,224[:int64]`, asked of the model, or guessed."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from reslint.errors import TargetError

DTYPES = {
    name: getattr(torch, name)
    for name in ("float32", "float16", "bfloat16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool")
}
DTYPES.update({"float": torch.float32, "half": torch.float16, "double": torch.float64, "long": torch.int64, "int": torch.int32})

GUESS_BATCH = 2  # a batch of one hides broadcasting bugs along the batch dimension


def parse_input_spec(text: str) -> tuple[tuple[int, ...], torch.dtype]:
    shape_text, _, dtype_text = text.strip().partition(":")
    dtype = torch.float32
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
    return shape, dtype


def make_inputs(specs: list[str]) -> tuple[torch.Tensor, ...]:
    return tuple(torch.empty(shape, dtype=dtype, device="meta") for shape, dtype in map(parse_input_spec, specs))


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


def guess_inputs(model: nn.Module) -> tuple[tuple[torch.Tensor, ...], str] | None:
    """An input from the model's first layer, and a sentence that says what was assumed."""
    for name, layer in model.named_modules():
        shape: tuple[int, ...] | None = None
        dtype = torch.float32
        if isinstance(layer, nn.Conv1d):
            shape = (GUESS_BATCH, layer.in_channels, 224)
        elif isinstance(layer, nn.Conv2d):
            shape = (GUESS_BATCH, layer.in_channels, 224, 224)
        elif isinstance(layer, nn.Conv3d):
            shape = (GUESS_BATCH, layer.in_channels, 16, 112, 112)
        elif isinstance(layer, nn.Linear):
            shape = (GUESS_BATCH, layer.in_features)
        elif isinstance(layer, nn.Embedding):
            shape, dtype = (GUESS_BATCH, 16), torch.int64
        if shape is not None:
            tensor = torch.empty(shape, dtype=dtype, device="meta")
            spec = describe((tensor,))[0]
            kind = type(layer).__name__
            return (tensor,), f"no --input given; guessed {spec} from the first layer ({name or 'model'}: {kind})"
    return None
