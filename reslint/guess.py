"""Inputs for a model that declares none: candidates read from the first layer its forward calls.

A guess is only a guess, so there are several, best first; the analysis keeps the first under which
nothing fails outside a skip join (see analyze.analyze_built). The order is chosen so that the
first candidate usually works and gives the verdict the model's author would expect:

- images: a size the model declares (`img_size`, `image_size`, a ViT's position table), else 32 px
  first (CIFAR nets have a classifier sized for it; ResNets and U-Nets work at any power of two),
  224 first for a patchify or 7x7 ImageNet stem, 28 first for a one-channel (MNIST) net, and for
  a U-Net only powers of two (224 = 7·32 leaves odd sizes after five halvings: false RL003);
- tokens: `[B, T]` int64 with T within the positions the model declares;
- features: `[B, T, D]` first for sequence models (attention, position tables, a LayerNorm first),
  `[B, D]` first for plain MLPs.

A required forward argument beyond the first gets a guess only when its name says what it is
(`time`, `sigma`, `class_labels`, ...).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from reslint.errors import TargetError
from reslint.first_layer import Layer, first_layer_eager, first_layers_fx, registered_layers
from reslint.inputs import GUESS_BATCH, Inputs, bind, describe, forward_signature

TOKENS = 16  # sequence length of a guess: small, since some forwards loop over it in Python
TIME_NAMES = {"t", "time", "times", "timestep", "timesteps", "sigma", "sigmas", "noise_level", "noise_levels", "noise_labels", "c_noise"}
LABEL_NAMES = {"label", "labels", "class_label", "class_labels", "class_idx", "classes"}
IMAGE_SIZE_ATTRS = ("img_size", "image_size", "input_resolution")
POSITION_ATTRS = ("block_size", "max_seq_len", "max_seq_length", "max_position_embeddings", "n_positions", "n_ctx",
                  "context_length", "max_len", "seq_len")
CONFIG_ATTRS = ("config", "cfg", "args", "params", "hparams")
SEQUENCE_WORDS = ("attention", "attn", "transformer", "mamba", "ssm", "gpt", "bert", "llama", "mixer", "rwkv")
MAX_PROBES = 6


@dataclass
class InputPlan:
    """Inputs to try, in order; one when the user gave them or the model declares them."""

    candidates: list[Inputs]
    guessed: bool = False
    source: str = ""  # where the guess was read from, for the note
    hint: str = ""  # an --input the user could adapt, for the error when every guess fails
    notes: list[str] = field(default_factory=list)


def guess_plan(model: nn.Module, label: str) -> InputPlan:
    signature = forward_signature(model)
    if signature is not None and not signature.names and not signature.var_positional:
        return InputPlan([Inputs((), [])], guessed=True, source="a forward without arguments")
    first = (signature.names[0] if signature and signature.names else None)
    wanted = set(signature.required()) if signature else set()
    if first:
        wanted.add(first)
    found = first_layers_fx(model, wanted) or {}
    fill = ArgumentFiller(model, found)
    layer, source = found.get(first) if first else None, "the first layer the forward calls"
    if layer is None:
        layer = first_layer_eager(model, _probes(model, fill))
    if layer is None:
        registered = registered_layers(model) or _weight_matrices(model)
        if not registered:
            raise TargetError(
                f"{label}: no --input given and none can be guessed (no Conv, Linear, Embedding or norm layer); "
                "give one, e.g. --input 2,3,224,224"
            )
        layer, source = registered[0], "the first registered layer (the forward could not be followed to its first layer)"
    tensors = primary_candidates(layer, model)
    candidates = [bind(model, [(describe((t,))[0], t)], {}, fill) for t in tensors]
    return InputPlan(candidates, guessed=True, source=f"{layer.describe()}, {source}", hint=pattern(layer, tensors[0]))


def _weight_matrices(model: nn.Module) -> list[Layer]:
    """For a model of bare parameters (`x @ self.w_gate`, einsums): its first weight matrix, read as a
    linear layer whose input width is the matrix's first dim."""
    for name, param in model.named_parameters():
        if param.dim() >= 2:
            return [Layer(name=name, type="Parameter", kind="linear", features=int(param.shape[-2] if param.dim() > 2 else param.shape[0]))]
    return []


def _probes(model: nn.Module, fill: "ArgumentFiller") -> list[tuple[Any, ...]]:
    """A few inputs for the eager probe, from the first registered layers (it stops at the first called one)."""
    probes, seen = [], set()
    for layer in registered_layers(model)[:3]:
        for tensor in primary_candidates(layer, model)[:2]:
            key = (tuple(tensor.shape), tensor.dtype)
            if key in seen:
                continue
            seen.add(key)
            try:
                probes.append(bind(model, [("", tensor)], {}, fill).values)
            except TargetError:
                return probes  # a required argument that cannot be guessed: the probe cannot call forward
    return probes[:MAX_PROBES]


# -- candidates for the first argument ------------------------------------------------------------------


def primary_candidates(layer: Layer, model: nn.Module) -> list[torch.Tensor]:
    shapes, dtype = _shapes(layer, model), layer.dtype
    if layer.kind == "embedding":
        dtype = torch.int64
    unique = list(dict.fromkeys(tuple(s) for s in shapes))
    return [torch.empty(shape, dtype=dtype, device="meta") for shape in unique]


def _shapes(layer: Layer, model: nn.Module) -> list[tuple[int, ...]]:
    b, c = GUESS_BATCH, layer.features
    if layer.kind == "conv":
        sides = _sides(layer, model)
        first = [(b, c, *side) for side in sides]
        last = [(b, *side, c) for side in sides]  # channels last, permuted before the conv
        return last + first if layer.transposed else first + last[:1]
    tokens = min(TOKENS, declared_positions(model) or TOKENS)
    table = position_table_length(model)
    lengths = [tokens] + ([table] if table and table != tokens and table <= 4096 else [])
    if layer.kind == "embedding":
        return [(b, t) for t in lengths]
    if layer.kind == "batchnorm1d":
        return [(b, c), (b, c, 64)]
    if layer.kind == "sequence":
        return [(b, t, c) if layer.batch_first else (t, b, c) for t in lengths]
    sequence = [(b, t, c) for t in lengths]
    if layer.kind == "norm" and len(layer.shape) > 1:
        return [(b, *layer.shape), *sequence]
    # Last, images: a forward may patchify its input before its first layer (einops' Rearrange, a
    # reshape), so that layer's width says nothing about the input (ViTs written without a conv stem).
    images = [(b, 3, side, side) for side in (32, 64, 224)]
    if layer.kind == "norm" or looks_sequential(model):
        return [*sequence, (b, c), *images]
    return [(b, c), *sequence, *images]


def _sides(layer: Layer, model: nn.Module) -> list[tuple[int, ...]]:
    """Spatial sizes to try for a conv's input, best first (see the module docstring)."""
    rank = layer.rank
    if rank == 1:
        return [(64,), (256,), (1024,)]
    if rank == 3:
        return [(32, 32, 32), (16, 112, 112), (64, 64, 64)]
    sizes: list[int | tuple[int, int]] = []
    declared = declared_image_size(model) or image_size_from_positions(layer, model)
    if declared:
        sizes.append(declared)
    patchify = layer.stride >= 4 or layer.kernel >= 7
    if looks_like_unet(model):
        sizes += [32, 64, 256]
    elif patchify:
        sizes += [224, 32, 64]
    elif layer.features == 1:
        sizes += [28, 32, 64, 224]
    else:
        sizes += [32, 64, 224]
    sides = [size if isinstance(size, tuple) else (size, size) for size in sizes]
    return list(dict.fromkeys(sides))[:4]


def pattern(layer: Layer, first: torch.Tensor) -> str:
    """The --input a user would adapt, with letters for the sizes a guess cannot know."""
    c = layer.features
    if first.dim() == 2 and layer.kind in ("linear", "norm"):
        return f"{GUESS_BATCH},{c}"
    if layer.kind == "conv":
        dims = {1: "L", 2: "H,W", 3: "D,H,W"}[layer.rank]
        return f"{GUESS_BATCH},{c},{dims}"
    if layer.kind == "embedding":
        return f"{GUESS_BATCH},T:int64"
    if layer.kind == "batchnorm1d":
        return f"{GUESS_BATCH},{c}"
    return f"{GUESS_BATCH},T,{c}"


# -- what the model declares about its inputs -------------------------------------------------------------


def _declared(model: nn.Module, names: tuple[str, ...]) -> Any:
    """The first of `names` set on the model, on a config object it holds, or on a submodule."""
    holders: list[Any] = [model] + [getattr(model, a) for a in CONFIG_ATTRS if hasattr(model, a) and not isinstance(getattr(model, a), nn.Module)]
    for holder in holders:
        for name in names:
            value = holder.get(name) if isinstance(holder, dict) else getattr(holder, name, None)
            if value is not None and not isinstance(value, (nn.Module, torch.Tensor)):
                return value
    return None


def declared_image_size(model: nn.Module) -> int | tuple[int, int] | None:
    value = _declared(model, IMAGE_SIZE_ATTRS)
    if value is None:  # timm keeps it on the patch embedding
        for _, module in model.named_modules():
            value = getattr(module, "img_size", None)
            if value is not None:
                break
    if value is None:  # timm's (3, 224, 224); a bare int `input_size` is usually an RNN's or MLP's features
        cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None)
        value = cfg.get("input_size") if isinstance(cfg, dict) else _declared(model, ("input_size",))
        value = value if isinstance(value, (tuple, list)) else None
    return _side(value)


def _side(value: Any) -> int | tuple[int, int] | None:
    if isinstance(value, int) and 4 <= value <= 4096:
        return value
    if isinstance(value, (tuple, list)) and value and all(isinstance(v, int) for v in value):
        side = tuple(value[-2:]) if len(value) >= 2 else (value[0], value[0])
        return side if all(4 <= v <= 4096 for v in side) else None
    return None


def declared_positions(model: nn.Module) -> int | None:
    value = _declared(model, POSITION_ATTRS)
    if isinstance(value, int) and value > 0:
        return value
    for name, module in model.named_modules():
        if isinstance(module, nn.Embedding) and _is_position_name(name):
            return module.num_embeddings  # meta tensors hold no values: an index past it would go unnoticed
    return None


def position_table_length(model: nn.Module) -> int | None:
    """The token count of a learned position table (`pos_embed` of shape [1, N, D])."""
    for name, param in model.named_parameters():
        # [1, N, D]: not a relative position bias table, and not an nn.Embedding's weight
        if param.dim() == 3 and param.shape[0] == 1 and _is_position_name(name) and "relative" not in name:
            return int(param.shape[-2])
    return None


def _is_position_name(name: str) -> bool:
    """`pos_embed`, `position_embeddings`, nanoGPT's `wpe`: a table indexed by position."""
    parts = name.lower().split(".")
    last = parts[-2] if parts[-1] == "weight" and len(parts) > 1 else parts[-1]
    return "pos" in last or last == "wpe"


def image_size_from_positions(layer: Layer, model: nn.Module) -> int | None:
    """A ViT's image side from its position table and patch size: N = (side / patch)^2 (+ class tokens)."""
    if layer.stride < 2 or layer.stride != layer.kernel:
        return None
    tokens = position_table_length(model)
    if not tokens:
        return None
    for extra in (0, 1, 2):
        grid = math.isqrt(max(tokens - extra, 0))
        if grid > 1 and grid * grid == tokens - extra:
            return grid * layer.stride
    return None


def looks_sequential(model: nn.Module) -> bool:
    """Attention, an RNN, a position table, or a class name that says it: a model of sequences."""
    if position_table_length(model) or declared_positions(model):
        return True
    for module in model.modules():
        if isinstance(module, (nn.MultiheadAttention, nn.RNNBase)):
            return True
        if any(word in type(module).__name__.lower() for word in SEQUENCE_WORDS):
            return True
    return False


def looks_like_unet(model: nn.Module) -> bool:
    """Upsampling layers, or a name that says U-Net: its skips need sizes that halve evenly."""
    for module in model.modules():
        if isinstance(module, (nn.ConvTranspose2d, nn.Upsample, nn.UpsamplingNearest2d, nn.UpsamplingBilinear2d, nn.PixelShuffle)):
            return True
        if "unet" in type(module).__name__.lower():
            return True
    return False


# -- required arguments beyond the first ---------------------------------------------------------------------


class ArgumentFiller:
    """Guesses a required forward argument from its name: `time` -> [B] float, `class_labels` -> [B] int64.

    What the fx probe saw settles the dtype: a timestep that goes into an nn.Embedding is an index.
    `y` is guessed only when it goes into an Embedding (class labels); elsewhere it could be anything.
    """

    def __init__(self, model: nn.Module, first_layers: dict[str, Layer] | None = None):
        self.model = model
        self.first_layers = first_layers

    def __call__(self, name: str, batch: int) -> tuple[str, torch.Tensor] | None:
        lowered = name.lower()
        if lowered not in TIME_NAMES and lowered not in LABEL_NAMES and lowered != "y":
            return None
        consumer = self._first_layers().get(name)
        into_embedding = consumer is not None and consumer.kind == "embedding"
        if lowered == "y" and not into_embedding:
            return None
        dtype = torch.int64 if into_embedding or lowered in LABEL_NAMES or lowered == "y" else torch.float32
        tensor = torch.empty((batch,), dtype=dtype, device="meta")
        return f"{name}={describe((tensor,))[0]}", tensor

    def _first_layers(self) -> dict[str, Layer]:
        if self.first_layers is None:  # only traced when a guess needs it
            signature = forward_signature(self.model)
            self.first_layers = first_layers_fx(self.model, signature.required() if signature else ()) or {}
        return self.first_layers
