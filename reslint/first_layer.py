"""Which layer the forward calls first on each of its arguments: what an input guess is read from.

The first *registered* layer is often not the first *called* one (a head defined before the stem, a
position embedding before the token embedding). In order of preference:

1. torch.fx follows each forward argument through the traced graph to the first layer that consumes
   it (Conv, Linear, Embedding, a norm, an RNN...); tracing stops as soon as every argument has one,
   so this costs a fraction of a trace. It also says whether the argument was transposed on the way.
2. When fx cannot trace the forward, the forward runs on meta tensors with a hook that stops it at
   the first leaf layer called, for a few probe inputs.
3. Failing both, the first registered layer.
"""

from __future__ import annotations

import dataclasses
import operator
from dataclasses import dataclass
from typing import Any, Iterable

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from reslint.inputs import call_arguments


@dataclass(frozen=True)
class Layer:
    """What an input guess needs to know about the layer an argument first meets."""

    name: str  # module path, or the parameter a functional call uses
    type: str  # class name, or F.conv2d ...
    kind: str  # conv | linear | embedding | norm | batchnorm1d | sequence
    features: int  # input channels / features
    rank: int = 0  # spatial dims of a conv (1, 2, 3)
    stride: int = 1  # a conv's stride, kernel: a patchify or ImageNet stem says the image size
    kernel: int = 1
    batch_first: bool = True  # RNN / attention layers
    shape: tuple[int, ...] = ()  # a LayerNorm's normalized shape
    dtype: torch.dtype = torch.float32
    transposed: bool = False  # the argument was permuted/transposed before reaching it

    def describe(self) -> str:
        return f"{self.name}: {self.type}" if self.name else self.type


class _Found(BaseException):
    """Stops a probe; a BaseException so the model's own `except Exception:` does not swallow it."""


# -- what a layer tells about its input ---------------------------------------------------------------


def read_layer(name: str, module: nn.Module) -> Layer | None:
    """The input a layer expects, or None for layers that accept anything (ReLU, Dropout, pooling)."""
    kind = type(module).__name__
    dtype = _dtype(getattr(module, "weight", None))
    if isinstance(module, nn.modules.conv._ConvNd):
        rank = len(module.kernel_size)
        return Layer(name, kind, "conv", module.in_channels, rank, _first(module.stride), _first(module.kernel_size), dtype=dtype)
    if isinstance(module, nn.Linear):
        return Layer(name, kind, "linear", module.in_features, dtype=dtype)
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        return Layer(name, kind, "embedding", module.num_embeddings, dtype=dtype)
    if isinstance(module, (nn.LayerNorm, getattr(nn, "RMSNorm", nn.LayerNorm))):
        shape = tuple(module.normalized_shape)
        return Layer(name, kind, "norm", shape[-1], shape=shape, dtype=dtype)
    if isinstance(module, nn.BatchNorm1d):
        return Layer(name, kind, "batchnorm1d", module.num_features, dtype=dtype)
    if isinstance(module, (nn.BatchNorm2d, nn.InstanceNorm2d)):
        return Layer(name, kind, "conv", module.num_features, 2, dtype=dtype)
    if isinstance(module, (nn.BatchNorm3d, nn.InstanceNorm3d)):
        return Layer(name, kind, "conv", module.num_features, 3, dtype=dtype)
    if isinstance(module, nn.GroupNorm):
        return Layer(name, kind, "conv", module.num_channels, 2, dtype=dtype)
    if isinstance(module, nn.RNNBase):
        return Layer(name, kind, "sequence", module.input_size, batch_first=module.batch_first, dtype=dtype)
    if isinstance(module, nn.MultiheadAttention):
        return Layer(name, kind, "sequence", module.embed_dim, batch_first=module.batch_first)
    if isinstance(module, (nn.TransformerEncoder, nn.TransformerDecoder)) and len(module.layers):
        return read_layer(name, module.layers[0])
    attention = getattr(module, "self_attn", None)  # nn.TransformerEncoderLayer / DecoderLayer
    if isinstance(attention, nn.MultiheadAttention):
        return Layer(name, kind, "sequence", attention.embed_dim, batch_first=attention.batch_first)
    return None


def _first(value: Any) -> int:
    return int(value[0]) if isinstance(value, (tuple, list)) else int(value)


def _dtype(weight: Any) -> torch.dtype:
    return weight.dtype if isinstance(weight, torch.Tensor) and weight.is_floating_point() else torch.float32


_FUNCTIONAL = {F.conv1d: 1, F.conv2d: 2, F.conv3d: 3}


def read_functional(root: nn.Module, target: Any, args: tuple, kwargs: dict) -> Layer | None:
    """`F.conv2d(x, self.weight)`, `F.linear`, `F.embedding`, `F.layer_norm` on a parameter of the model."""
    if target in _FUNCTIONAL or target is F.linear or target is F.embedding:
        weight = _attr(root, args[1] if len(args) > 1 else kwargs.get("weight"))
        if weight is None or weight.dim() < 2:
            return None
        label = f"F.{target.__name__}"
        if target is F.embedding:
            return Layer(weight.name, label, "embedding", weight.shape[0], dtype=_dtype(weight.value))
        if target is F.linear:
            return Layer(weight.name, label, "linear", weight.shape[-1], dtype=_dtype(weight.value))
        groups = args[6] if len(args) > 6 else kwargs.get("groups", 1)
        stride = args[3] if len(args) > 3 else kwargs.get("stride", 1)
        return Layer(weight.name, label, "conv", weight.shape[1] * int(groups), _FUNCTIONAL[target], _first(stride),
                     weight.shape[-1], dtype=_dtype(weight.value))
    if target is F.layer_norm:
        shape = args[1] if len(args) > 1 else kwargs.get("normalized_shape")
        if isinstance(shape, int):
            shape = (shape,)
        if isinstance(shape, (tuple, list)) and shape and all(isinstance(s, int) for s in shape):
            return Layer("", "F.layer_norm", "norm", shape[-1], shape=tuple(shape))
    return None


@dataclass
class _Attr:
    name: str
    value: torch.Tensor

    @property
    def shape(self):
        return self.value.shape

    def dim(self):
        return self.value.dim()


def _attr(root: nn.Module, node: Any) -> _Attr | None:
    if not isinstance(node, fx.Node) or node.op != "get_attr":
        return None
    try:
        value = operator.attrgetter(node.target)(root)
    except AttributeError:
        return None
    return _Attr(node.target, value) if isinstance(value, torch.Tensor) else None


# -- 1. torch.fx: follow each argument to the first layer that consumes it -------------------------------

_TRANSPOSING = {"permute", "transpose", "movedim", "swapaxes", "swapdims", "mT"}


class _FirstUseTracer(fx.Tracer):
    def __init__(self, wanted: set[str]):
        super().__init__()
        self.wanted = wanted
        self.found: dict[str, Layer] = {}
        self._sources: dict[fx.Node, frozenset[str]] = {}  # which forward arguments a node derives from
        self._transposed: set[fx.Node] = set()

    def create_node(self, kind, target, args, kwargs, name=None, type_expr=None):
        node = super().create_node(kind, target, args, kwargs, name, type_expr)
        if kind == "placeholder":
            self._sources[node] = frozenset([str(target).lstrip("*")])
            return node
        operands: list[fx.Node] = []
        fx.node.map_arg((args, kwargs), operands.append)
        sources = frozenset().union(*(self._sources.get(n, frozenset()) for n in operands))
        if not sources:
            return node
        self._sources[node] = sources
        transposed = any(n in self._transposed for n in operands) or _transposes(kind, target, args)
        if transposed:
            self._transposed.add(node)
        layer = None
        if kind == "call_module":
            layer = read_layer(target, self.root.get_submodule(target))
        elif kind == "call_function":
            layer = read_functional(self.root, target, args, kwargs)
        if layer is not None:
            if transposed:
                layer = dataclasses.replace(layer, transposed=True)
            for source in sources:
                self.found.setdefault(source, layer)
            if self.wanted <= self.found.keys():
                raise _Found
        return node


def _transposes(kind: str, target: Any, args: tuple) -> bool:
    if kind == "call_method":
        return target in _TRANSPOSING
    if kind == "call_function" and target is getattr:  # x.mT
        return len(args) > 1 and args[1] in _TRANSPOSING
    return kind == "call_function" and getattr(target, "__name__", "") in _TRANSPOSING


def first_layers_fx(model: nn.Module, wanted: Iterable[str]) -> dict[str, Layer] | None:
    """Per forward argument, the first layer consuming it; None when fx cannot trace to the first one."""
    tracer = _FirstUseTracer(set(wanted))
    try:
        tracer.trace(model)
    except _Found:
        pass
    except Exception:
        return tracer.found or None
    return tracer.found


# -- 2. an eager run on meta tensors, stopped at the first leaf layer ------------------------------------


def first_layer_eager(model: nn.Module, probes: Iterable[tuple[Any, ...]]) -> Layer | None:
    """Run the forward on each probe input until it calls a layer that says what input it expects.

    Not only torch.nn's leaves: a user's subclass of nn.Linear is as telling, and the functional
    call inside it is not seen by the hook.
    """
    names = {id(m): n for n, m in model.named_modules()}
    found: list[Layer] = []

    def hook(module, args):
        if id(module) in names:
            layer = read_layer(names[id(module)], module)
            if layer is not None:
                found.append(layer)
                raise _Found

    handle = nn.modules.module.register_module_forward_pre_hook(hook)
    try:
        for inputs in probes:
            try:
                args, kwargs = call_arguments(model, inputs)
                with torch.no_grad(), torch.device("meta"):
                    model(*args, **kwargs)
            except _Found:
                return found[0]
            except Exception:
                continue
    finally:
        handle.remove()
    return None


# -- 3. registration order --------------------------------------------------------------------------------


def registered_layers(model: nn.Module) -> list[Layer]:
    """Layers that say what input they expect, in registration order."""
    layers = (read_layer(name, module) for name, module in model.named_modules())
    return [layer for layer in layers if layer is not None]
