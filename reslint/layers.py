"""Layers a fix proposes, as specs that both build a module (to validate) and print as code (to paste)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class LayerSpec:
    name: str  # class name in torch.nn
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    children: tuple["LayerSpec", ...] = ()  # for Sequential

    def build(self) -> nn.Module:
        with torch.device("meta"):
            if self.name == "Sequential":
                return nn.Sequential(*(child.build() for child in self.children))
            return getattr(nn, self.name)(*self.args, **self.kwargs)

    def code(self) -> str:
        if self.name == "Sequential":
            return f"nn.Sequential({', '.join(child.code() for child in self.children)})"
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"nn.{self.name}({', '.join(parts)})"


def sequential(*specs: LayerSpec) -> LayerSpec:
    return specs[0] if len(specs) == 1 else LayerSpec("Sequential", children=specs)


def _scalar(value: tuple[int, ...] | int) -> Any:
    if isinstance(value, tuple) and len(set(value)) == 1:
        return value[0]
    return value


def conv_spec(conv: nn.modules.conv._ConvNd, out_channels: int, stride: tuple[int, ...]) -> LayerSpec:
    """The spec of `conv` with a new width and stride, other settings as they were."""
    kwargs: dict[str, Any] = {"kernel_size": _scalar(conv.kernel_size)}
    if any(s != 1 for s in stride):
        kwargs["stride"] = _scalar(tuple(stride))
    defaults = {"padding": 0, "dilation": 1, "groups": 1}
    for name, default in defaults.items():
        value = _scalar(getattr(conv, name))
        if value != default and value != (default,) * len(conv.kernel_size):
            kwargs[name] = value
    if conv.bias is None:
        kwargs["bias"] = False
    return LayerSpec(type(conv).__name__, (conv.in_channels, out_channels), kwargs)


def linear_spec(linear: nn.Linear, out_features: int) -> LayerSpec:
    kwargs = {} if linear.bias is not None else {"bias": False}
    return LayerSpec("Linear", (linear.in_features, out_features), kwargs)


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def stride_for(conv: nn.modules.conv._ConvNd, in_spatial: tuple[int, ...], out_spatial: tuple[int, ...]) -> tuple[int, ...] | None:
    """The stride per dim that makes `conv` map in_spatial to out_spatial, if any does."""
    padding = conv.padding if isinstance(conv.padding, tuple) else None
    if padding is None:  # padding="same"/"valid": the stride cannot be solved for in general
        return tuple(conv.stride) if tuple(in_spatial) == tuple(out_spatial) else None
    strides = []
    for size, want, k, p, d in zip(in_spatial, out_spatial, conv.kernel_size, padding, conv.dilation):
        options = [s for s in range(1, 17) if conv_output_size(size, k, s, p, d) == want]
        if not options:
            return None
        strides.append(options[0])
    return tuple(strides)


def norm_spec(norm: nn.Module, channels: int) -> LayerSpec | None:
    """A norm like `norm` for a different number of channels."""
    if isinstance(norm, nn.modules.batchnorm._BatchNorm):
        name = type(norm).__name__ if type(norm).__module__.startswith("torch.nn") else _batchnorm_name(norm)
        return LayerSpec(name, (channels,))
    if isinstance(norm, nn.GroupNorm) and channels % norm.num_groups == 0:
        return LayerSpec("GroupNorm", (norm.num_groups, channels))
    if isinstance(norm, nn.LayerNorm) and len(norm.normalized_shape) == 1:
        return LayerSpec("LayerNorm", (channels,))
    return None


def _batchnorm_name(norm: nn.Module) -> str:
    # Subclasses from model libraries (timm's BatchNormAct2d) are proposed as the plain torch norm.
    for dims in (1, 2, 3):
        if isinstance(norm, getattr(nn, f"BatchNorm{dims}d")):
            return f"BatchNorm{dims}d"
    return "BatchNorm2d"


def norm_width(module: nn.Module) -> int | None:
    """The channel count a norm layer is built for, if it is one."""
    if isinstance(module, nn.modules.batchnorm._NormBase):
        return module.num_features
    if isinstance(module, nn.GroupNorm):
        return module.num_channels
    if isinstance(module, nn.LayerNorm) and len(module.normalized_shape) == 1:
        return module.normalized_shape[0]
    return None
