"""Dimension roles: what each dim of each tensor in a propagated graph is.

A shape says `[2, 64, 56, 56]`; a role says `[batch, channels, spatial, spatial]`. Messages need it
("sequence 101→96", not "channels 101→96") and so do fixes (a projection only on a channel or
feature dim; a size fix for a spatial or sequence dim).

Roles are facts stated by layers, carried along the graph in both directions:

* **facts**: a layer says what its input and output dims are. Conv/pool/BatchNorm/GroupNorm:
  `[batch, channels, spatial...]` (`Conv1d`: `[batch, channels, sequence]`); Linear and LayerNorm:
  features on their last dims; Embedding: `[batch, sequence] -> [batch, sequence, features]`;
  attention (`nn.MultiheadAttention`, `F.scaled_dot_product_attention`):
  `[batch, (heads,) sequence, features]`.
* **links** say which dims of one tensor are which dims of another: elementwise ops and cat keep them
  (aligned from the right when broadcasting), permute/transpose move them, reshape/view/flatten
  split and merge them (features -> heads x features, spatial x spatial -> sequence, as in a ViT
  patch embed's `flatten(2).transpose(1, 2)`), reductions drop them.

Facts win; links only fill dims still unknown, forward and backward until nothing changes; then a
few defaults (an input's dim 0 is the batch; `[batch, ?, features]` is a token sequence) and the
links run again. Public API: `roles_of(propagation, node)`, cached on the propagation.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Any, Iterable

import torch
import torch.fx as fx
from torch import nn

from reslint.trace.ops import is_cat, method_name

BATCH, CHANNELS, SPATIAL, SEQUENCE, FEATURES, HEADS, UNKNOWN = (
    "batch", "channels", "spatial", "sequence", "features", "heads", "unknown",
)
ROLES = (BATCH, CHANNELS, SPATIAL, SEQUENCE, FEATURES, HEADS, UNKNOWN)

Key = tuple  # (node, item): item is None for a tensor value, an index into a tuple-valued node
Roles = list  # one role per dim

_CACHE_ATTRIBUTE = "_reslint_roles"


def roles_of(propagation, node: fx.Node) -> tuple[str, ...] | None:
    """The roles of a node's tensor value, one per dim (`"unknown"` where nothing says), or None when
    the value is not a tensor. Computed for the whole graph once and cached on the propagation; a
    node whose rank changed since (a committed fix) makes it recompute."""
    value = propagation.values.get(node)
    if not isinstance(value, torch.Tensor):
        return None
    cached = getattr(propagation, _CACHE_ATTRIBUTE, None)
    roles = cached.get((node, None)) if cached is not None else None
    if roles is None or len(roles) != value.dim():
        cached = infer_roles(propagation)
        setattr(propagation, _CACHE_ATTRIBUTE, cached)
        roles = cached.get((node, None))
    if roles is None or len(roles) != value.dim():
        return (UNKNOWN,) * value.dim()
    return tuple(roles)


def forget_roles(propagation) -> None:
    """Drop the cached roles (after the propagation's values changed in a way ranks do not show)."""
    if hasattr(propagation, _CACHE_ATTRIBUTE):
        delattr(propagation, _CACHE_ATTRIBUTE)


# -- inference ------------------------------------------------------------------------------------


@dataclass
class Link:
    """Dims of `source` that are dims of `target`: pairs of (source dims, target dims).

    A 1-1 pair copies a role; a 1-n pair splits a dim (reshape), an n-1 pair merges dims."""

    source: Key
    target: Key
    pairs: list[tuple[tuple[int, ...], tuple[int, ...]]]


class _Inference:
    def __init__(self, propagation):
        self.prop = propagation
        self.values = propagation.values
        self.roles: dict[Key, Roles] = {}
        self.links: list[Link] = []

    # -- values ---------------------------------------------------------------------------------

    def shape(self, key: Key) -> tuple[int, ...] | None:
        node, item = key
        value = self.values.get(node)
        if item is not None:
            value = value[item] if isinstance(value, (tuple, list)) and -len(value) <= item < len(value) else None
        return tuple(value.shape) if isinstance(value, torch.Tensor) else None

    def slot(self, key: Key) -> Roles | None:
        if key not in self.roles:
            shape = self.shape(key)
            if shape is None:
                return None
            self.roles[key] = [UNKNOWN] * len(shape)
        return self.roles[key]

    def state(self, key: Key, roles: Iterable[str | None], at: Iterable[int] | None = None) -> None:
        """A fact: these dims (default: all, or the last ones when fewer roles) have these roles."""
        slot = self.slot(key)
        if slot is None:
            return
        roles = list(roles)
        dims = list(at) if at is not None else list(range(len(slot) - len(roles), len(slot)))
        for dim, role in zip(dims, roles):
            if role is not None and -len(slot) <= dim < len(slot) and slot[dim] == UNKNOWN:
                slot[dim] = role

    def link(self, source: Key, target: Key, pairs) -> None:
        if self.shape(source) is not None and self.shape(target) is not None and pairs:
            self.links.append(Link(source, target, pairs))

    def identity(self, source: Key, target: Key) -> None:
        """Same dims, in the same order (elementwise ops, activations, norms, resizes)."""
        a, b = self.shape(source), self.shape(target)
        if a is not None and b is not None and len(a) == len(b):
            self.link(source, target, [((d,), (d,)) for d in range(len(a))])

    def broadcast(self, source: Key, target: Key) -> None:
        """Dims aligned from the right; a size-1 dim broadcast to a larger size is still linked (the
        role of a pooled [B, C, 1, 1] gate is the feature map's)."""
        a, b = self.shape(source), self.shape(target)
        if a is None or b is None or len(a) > len(b):
            return
        offset = len(b) - len(a)
        self.link(source, target, [((d,), (d + offset,)) for d in range(len(a)) if a[d] in (1, b[d + offset])])

    # -- running --------------------------------------------------------------------------------

    def run(self) -> dict[Key, Roles]:
        for node in self.prop.nodes:
            try:
                self.describe(node)
            except Exception:  # an op reslint does not understand says nothing about roles
                continue
        self.settle()
        for node in self.prop.nodes:  # an input's first dim is its batch
            if node.op == "placeholder":
                shape = self.shape((node, None))
                if shape is not None and len(shape) >= 2:
                    self.state((node, None), [BATCH], at=[0])
        self.settle()
        for key, roles in self.roles.items():
            self.default(roles)
        self.settle()
        return self.roles

    def settle(self, passes: int = 8) -> None:
        for _ in range(passes):
            changed = False
            for link in self.links:
                changed |= self.carry(link, forward=True)
            for link in reversed(self.links):
                changed |= self.carry(link, forward=False)
            if not changed:
                return

    def carry(self, link: Link, forward: bool) -> bool:
        source, target = (link.source, link.target) if forward else (link.target, link.source)
        have, want = self.slot(source), self.slot(target)
        if have is None or want is None:
            return False
        changed = False
        for pair in link.pairs:
            from_dims, to_dims = pair if forward else pair[::-1]
            if any(not -len(want) <= d < len(want) for d in to_dims) or any(not -len(have) <= d < len(have) for d in from_dims):
                continue
            if all(want[d] != UNKNOWN for d in to_dims):
                continue
            sizes_from = [self.shape(source)[d] for d in from_dims]
            sizes_to = [self.shape(target)[d] for d in to_dims]
            new = regroup([have[d] for d in from_dims], sizes_from, sizes_to)
            for d, role in zip(to_dims, new):
                if want[d] == UNKNOWN and role != UNKNOWN:
                    want[d] = role
                    changed = True
        return changed

    @staticmethod
    def default(roles: Roles) -> None:
        """Guesses once facts ran out: after the batch, `[?, features]` is a token sequence, and
        `[channels, ?...]` is a feature map (spatial, or a sequence when there is one dim)."""
        if len(roles) == 3 and roles[0] == BATCH and roles[1] == UNKNOWN and roles[2] == FEATURES:
            roles[1] = SEQUENCE
        if len(roles) >= 3 and roles[0] == BATCH and roles[1] == CHANNELS:
            fill = SEQUENCE if len(roles) == 3 else SPATIAL
            for d in range(2, len(roles)):
                if roles[d] == UNKNOWN:
                    roles[d] = fill

    # -- what each node says ---------------------------------------------------------------------

    def describe(self, node: fx.Node) -> None:
        if node.op == "output":
            if node.args and isinstance(node.args[0], fx.Node):
                self.identity((node.args[0], None), (node, None))
            return
        if node.op in ("placeholder", "get_attr"):
            return
        out = (node, None)
        if node.op == "call_module":
            self.describe_module(node, self.prop.module(node), out)
            return
        name = _op_name(node)
        args = list(node.args)
        first = (args[0], None) if args and isinstance(args[0], fx.Node) else None
        handler = getattr(self, f"op_{name.strip('_')}", None)
        if handler is not None and handler(node, args, first, out) is not False:
            return
        self.generic(node, first, out)

    def generic(self, node: fx.Node, first: Key | None, out: Key) -> None:
        """An op reslint has no rule for: the first tensor keeps its dims if the rank is kept (an
        activation, a resize, a pad), the others broadcast onto the result."""
        tensors = [(n, None) for n in node.all_input_nodes if self.shape((n, None)) is not None]
        if self.shape(out) is None:
            return
        for key in tensors:
            if key == first or (first is None and key == tensors[0]):
                self.identity(key, out)
            else:
                self.broadcast(key, out)

    def describe_module(self, node: fx.Node, module: nn.Module, out: Key) -> None:
        args = list(node.args)
        x = (args[0], None) if args and isinstance(args[0], fx.Node) else None
        if x is None:
            return
        rank = len(self.shape(x) or ())
        if isinstance(module, (nn.modules.conv._ConvNd, nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
                               nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd,
                               nn.modules.pooling._LPPoolNd, nn.modules.instancenorm._InstanceNorm,
                               nn.modules.batchnorm._BatchNorm, nn.GroupNorm)):
            self.feature_map(module, x, out, rank)
        elif isinstance(module, (nn.Linear, nn.Bilinear, nn.LazyLinear)):
            self.identity(x, out)
            self.state(x, [FEATURES])
            self.state(out, [FEATURES])
        elif isinstance(module, (nn.LayerNorm, nn.RMSNorm)):
            self.identity(x, out)
            width = len(module.normalized_shape)
            self.state(x, [FEATURES] * width)
            self.state(out, [FEATURES] * width)
        elif isinstance(module, nn.Embedding):
            self.embedding(x, out)
        elif isinstance(module, nn.MultiheadAttention):
            self.multihead_attention(node, module, args)
        elif isinstance(module, nn.modules.rnn.RNNBase):
            order = [BATCH, SEQUENCE, FEATURES] if module.batch_first else [SEQUENCE, BATCH, FEATURES]
            self.state(x, order[-rank:])
            self.state((node, 0), order[-rank:])
            self.link(x, (node, 0), [((d,), (d,)) for d in range(rank)])
        elif isinstance(module, (nn.PixelShuffle, nn.PixelUnshuffle)):
            for key in (x, out):
                self.state(key, [BATCH, CHANNELS, SPATIAL, SPATIAL][-rank:])
        elif isinstance(module, (nn.Flatten, nn.Unflatten)):
            self.reshape(x, out)
        else:
            self.generic(node, x, out)

    def feature_map(self, module_or_digits: Any, x: Key, out: Key, rank: int) -> None:
        """[batch, channels, spatial...] for a conv, pool or norm of N spatial dims (N=1: a sequence)."""
        spatial = module_or_digits if isinstance(module_or_digits, int) else _spatial_dims(module_or_digits, rank)
        self.identity(x, out)
        if spatial is None or rank < spatial + 1:
            return
        inner = [SEQUENCE] if spatial == 1 else [SPATIAL] * spatial
        roles = ([BATCH] if rank == spatial + 2 else []) + [CHANNELS] + inner
        if spatial == 0:  # BatchNorm1d on [B, C]: a vector of features
            roles = [BATCH, FEATURES] if rank == 2 else [FEATURES]
        for key in (x, out):
            if len(self.shape(key) or ()) == len(roles):
                self.state(key, roles)

    def embedding(self, x: Key, out: Key) -> None:
        rank = len(self.shape(x) or ())
        tokens = [BATCH, SEQUENCE][-rank:] if rank <= 2 else [BATCH] + [UNKNOWN] * (rank - 2) + [SEQUENCE]
        self.state(x, tokens)
        self.link(x, out, [((d,), (d,)) for d in range(rank)])
        self.state(out, [FEATURES])

    def multihead_attention(self, node: fx.Node, module: nn.MultiheadAttention, args: list) -> None:
        order = [BATCH, SEQUENCE, FEATURES] if module.batch_first else [SEQUENCE, BATCH, FEATURES]
        for arg in args[:3]:
            if isinstance(arg, fx.Node):
                rank = len(self.shape((arg, None)) or ())
                self.state((arg, None), order[-rank:])
        query = (args[0], None)
        rank = len(self.shape(query) or ())
        self.state((node, 0), order[-rank:])
        self.link(query, (node, 0), [((d,), (d,)) for d in range(rank)])
        weights = len(self.shape((node, 1)) or ())  # averaged [B, T, S], or per head [B, heads, T, S]
        self.state((node, 1), ([BATCH] if rank == 3 else []) + [HEADS] * (weights - rank) + [SEQUENCE, SEQUENCE])

    def reshape(self, source: Key, target: Key) -> None:
        a, b = self.shape(source), self.shape(target)
        if a is not None and b is not None:
            self.link(source, target, reshape_pairs(a, b))

    # -- ops, by name (op_<name>); return False to fall back to the generic rule ---------------

    def op_getitem(self, node, args, first, out):
        source = args[0]
        if not isinstance(source, fx.Node):
            return False
        value = self.values.get(source)
        if isinstance(value, (tuple, list)):
            if isinstance(args[1], int):
                self.identity((source, args[1]), out)
            return None
        if not isinstance(value, torch.Tensor):
            return None
        pairs = index_pairs(args[1], value.dim())
        if pairs is None:
            return False
        self.link(first, out, pairs)
        return None

    def op_permute(self, node, args, first, out):
        dims = _int_args(args[1:], node.kwargs.get("dims"))
        rank = len(self.shape(first) or ())
        if dims is None or len(dims) != rank:
            return False
        self.link(first, out, [((dims[d] % rank,), (d,)) for d in range(rank)])

    def op_transpose(self, node, args, first, out):
        rank = len(self.shape(first) or ())
        dims = _int_args(args[1:3], None) or [node.kwargs.get("dim0"), node.kwargs.get("dim1")]
        if rank == 0 or len(dims) != 2 or not all(isinstance(d, int) for d in dims):
            return False
        a, b = dims[0] % rank, dims[1] % rank
        order = list(range(rank))
        order[a], order[b] = order[b], order[a]
        self.link(first, out, [((order[d],), (d,)) for d in range(rank)])

    op_swapaxes = op_swapdims = op_transpose

    def op_movedim(self, node, args, first, out):
        rank = len(self.shape(first) or ())
        if len(args) < 3 or not isinstance(args[1], int) or not isinstance(args[2], int) or not rank:
            return False
        order = list(range(rank))
        order.insert(args[2] % rank, order.pop(args[1] % rank))
        self.link(first, out, [((order[d],), (d,)) for d in range(rank)])

    def op_view(self, node, args, first, out):
        if first is None or self.shape(first) is None:
            return False
        self.reshape(first, out)

    op_reshape = op_flatten = op_unflatten = op_view_as = op_reshape_as = op_view

    def op_squeeze(self, node, args, first, out):
        a, b = self.shape(first), self.shape(out)
        if a is None or b is None:
            return False
        dims = _int_args(args[1:], node.kwargs.get("dim"))
        kept = [d for d in range(len(a)) if not (a[d] == 1 and (dims is None or d in [x % len(a) for x in dims]))]
        if len(kept) != len(b):
            return False
        self.link(first, out, [((d,), (i,)) for i, d in enumerate(kept)])

    def op_unsqueeze(self, node, args, first, out):
        b = self.shape(out)
        dim = args[1] if len(args) > 1 else node.kwargs.get("dim")
        if b is None or not isinstance(dim, int):
            return False
        new = dim % len(b)
        self.link(first, out, [((d,), (d if d < new else d + 1,)) for d in range(len(b) - 1)])

    def op_cat(self, node, args, first, out):
        tensors = args[0] if args else node.kwargs.get("tensors", ())
        for t in tensors if isinstance(tensors, (list, tuple)) else ():
            if isinstance(t, fx.Node):
                self.identity((t, None), out)

    op_concat = op_concatenate = op_cat

    def op_stack(self, node, args, first, out):
        tensors = args[0] if args else node.kwargs.get("tensors", ())
        dim = args[1] if len(args) > 1 else node.kwargs.get("dim", 0)
        b = self.shape(out)
        if b is None or not isinstance(dim, int):
            return False
        new = dim % len(b)
        for t in tensors if isinstance(tensors, (list, tuple)) else ():
            if isinstance(t, fx.Node):
                self.link((t, None), out, [((d,), (d if d < new else d + 1,)) for d in range(len(b) - 1)])

    def op_chunk(self, node, args, first, out):
        value = self.values.get(node)
        for item in range(len(value) if isinstance(value, (tuple, list)) else 0):
            self.identity(first, (node, item))

    op_split = op_tensor_split = op_split_with_sizes = op_chunk

    def op_unbind(self, node, args, first, out):
        value = self.values.get(node)
        a = self.shape(first)
        dim = args[1] if len(args) > 1 else node.kwargs.get("dim", 0)
        if a is None or not isinstance(dim, int):
            return False
        kept = [d for d in range(len(a)) if d != dim % len(a)]
        for item in range(len(value) if isinstance(value, (tuple, list)) else 0):
            self.link(first, (node, item), [((d,), (i,)) for i, d in enumerate(kept)])

    def op_matmul(self, node, args, first, out):
        a, b = (args[0], None), (args[1], None) if len(args) > 1 and isinstance(args[1], fx.Node) else None
        sa, sb, so = self.shape(a), self.shape(b) if b else None, self.shape(out)
        if sa is None or sb is None or so is None or len(sa) < 2 or len(sb) < 1:
            return False
        pairs = [((d,), (d + len(so) - len(sa),)) for d in range(len(sa) - 2) if d + len(so) - len(sa) >= 0]
        pairs.append(((len(sa) - 2,), (len(so) - (2 if len(sb) >= 2 else 1),)))
        self.link(a, out, pairs)
        if len(sb) >= 2:
            self.link(b, out, [((len(sb) - 1,), (len(so) - 1,))])
            if args[1].op == "get_attr":  # x @ W: a weight maps features to features
                self.state(a, [FEATURES])
                self.state(out, [FEATURES])

    op_bmm = op_mm = op_matmul

    def op_scaled_dot_product_attention(self, node, args, first, out):
        for arg in args[:3]:
            if isinstance(arg, fx.Node):
                rank = len(self.shape((arg, None)) or ())
                roles = [BATCH] + [HEADS] * (rank == 4) + [SEQUENCE, FEATURES] if rank >= 3 else [SEQUENCE, FEATURES]
                if rank > 4:
                    roles = [UNKNOWN] * (rank - 4) + [BATCH, HEADS, SEQUENCE, FEATURES]
                self.state((arg, None), roles)
        self.identity(first, out)

    def op_linear(self, node, args, first, out):
        self.identity(first, out)
        self.state(first, [FEATURES])
        self.state(out, [FEATURES])

    def op_layer_norm(self, node, args, first, out):
        normalized = args[1] if len(args) > 1 else node.kwargs.get("normalized_shape", ())
        width = len(normalized) if isinstance(normalized, (list, tuple)) else 1
        self.identity(first, out)
        self.state(first, [FEATURES] * width)
        self.state(out, [FEATURES] * width)

    op_rms_norm = op_layer_norm

    def op_embedding(self, node, args, first, out):
        self.embedding(first, out)

    def op_batch_norm(self, node, args, first, out):
        rank = len(self.shape(first) or ())
        self.feature_map(max(rank - 2, 0), first, out, rank)

    op_instance_norm = op_group_norm = op_batch_norm

    def op_mean(self, node, args, first, out):
        a, b = self.shape(first), self.shape(out)
        if a is None or b is None:
            return False
        if len(a) == len(b):
            self.identity(first, out)
            return None
        dims = _int_args(args[1:2], node.kwargs.get("dim"))
        if dims is None:
            return None  # reduced to a scalar
        dropped = {d % len(a) for d in dims}
        kept = [d for d in range(len(a)) if d not in dropped]
        if len(kept) == len(b):
            self.link(first, out, [((d,), (i,)) for i, d in enumerate(kept)])

    op_sum = op_amax = op_amin = op_std = op_var = op_logsumexp = op_prod = op_norm = op_mean

    def op_max(self, node, args, first, out):
        if isinstance(self.values.get(node), torch.Tensor):
            return self.op_mean(node, args, first, out)
        return self.op_chunk_reduction(node, args, first)

    op_min = op_median = op_max

    def op_chunk_reduction(self, node, args, first):
        """x.max(dim) returns (values, indices): both shaped like the reduced tensor."""
        a = self.shape(first)
        value = self.values.get(node)
        dim = args[1] if len(args) > 1 else node.kwargs.get("dim")
        if a is None or not isinstance(dim, int) or not isinstance(value, (tuple, list)):
            return None
        for item in range(len(value)):
            b = self.shape((node, item))
            if b is not None and len(b) == len(a):
                self.identity(first, (node, item))
            else:
                kept = [d for d in range(len(a)) if d != dim % len(a)]
                self.link(first, (node, item), [((d,), (i,)) for i, d in enumerate(kept)])
        return None

    def op_expand(self, node, args, first, out):
        self.broadcast(first, out)

    op_expand_as = op_broadcast_to = op_expand


# -- reshape and indexing: which dims are which ---------------------------------------------------


def reshape_pairs(a: tuple[int, ...], b: tuple[int, ...]) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Groups of dims of `a` and `b` with equal products, left to right: a view's correspondence.

    Size-1 dims are set aside (they say nothing of a split or merge) and matched to each other in
    order when both sides have as many.
    """
    ia = [d for d in range(len(a)) if a[d] != 1]
    ib = [d for d in range(len(b)) if b[d] != 1]
    pairs = []
    i = j = 0
    while i < len(ia) and j < len(ib):
        ga, gb = [ia[i]], [ib[j]]
        pa, pb = a[ia[i]], b[ib[j]]
        i, j = i + 1, j + 1
        while pa != pb:
            if pa < pb and i < len(ia):
                ga.append(ia[i]); pa *= a[ia[i]]; i += 1  # noqa: E702
            elif pb < pa and j < len(ib):
                gb.append(ib[j]); pb *= b[ib[j]]; j += 1  # noqa: E702
            else:
                return pairs
        pairs.append((tuple(ga), tuple(gb)))
    ones_a = [d for d in range(len(a)) if a[d] == 1]
    ones_b = [d for d in range(len(b)) if b[d] == 1]
    if len(ones_a) == len(ones_b):
        pairs.extend(((x,), (y,)) for x, y in zip(ones_a, ones_b))
    return pairs


def regroup(roles: list[str], sizes_from: list[int], sizes_to: list[int]) -> list[str]:
    """The roles of dims made by splitting or merging dims of known roles (either direction)."""
    if len(roles) == 1 and len(sizes_to) == 1:
        return roles
    if len(sizes_to) == 1:  # a merge
        return [merged(roles)]
    if len(roles) == 1:  # a split
        return split(roles[0], len(sizes_to))
    known = set(roles) - {UNKNOWN}
    return [roles[0]] * len(sizes_to) if len(known) == 1 and UNKNOWN not in roles else [UNKNOWN] * len(sizes_to)


def merged(roles: list[str]) -> str:
    """The role of one dim made of several: batch x windows is a batch, a spatial grid flattened is
    a sequence of tokens, heads x head_dim are features, channels x spatial are features."""
    kinds = set(roles)
    if BATCH in kinds:  # whatever was folded into it (windows, time steps), it is indexed like a batch
        return BATCH
    if UNKNOWN in kinds:
        return UNKNOWN
    if kinds <= {SPATIAL, SEQUENCE}:
        return SEQUENCE
    if kinds == {CHANNELS}:
        return CHANNELS
    if kinds & {FEATURES, CHANNELS, HEADS}:
        return FEATURES
    return UNKNOWN


def split(role: str, parts: int) -> list[str]:
    """The roles of dims made by splitting one: features into heads x head_dim (or 3 x heads x
    head_dim for a fused qkv), a token sequence back into a spatial grid, a batch into batch x windows."""
    if role == FEATURES:
        return [UNKNOWN] * (parts - 2) + [HEADS, FEATURES]
    if role in (SEQUENCE, SPATIAL):
        return [SPATIAL] * parts
    if role == CHANNELS:
        return [CHANNELS] * parts
    if role == BATCH:
        return [BATCH] + ([SPATIAL] * (parts - 1) if parts > 2 else [UNKNOWN])
    if role == HEADS:
        return [HEADS] * parts
    return [UNKNOWN] * parts


def index_pairs(index: Any, rank: int) -> list | None:
    """Which dims of x are which dims of x[index]: slices keep a dim, ints drop it, None adds one."""
    items = list(index) if isinstance(index, tuple) else [index]
    if sum(1 for i in items if i is Ellipsis) > 1:
        return None
    consumed = sum(1 for i in items if i is not None and i is not Ellipsis)
    if any(isinstance(i, (fx.Node, list, torch.Tensor)) for i in items):
        return None  # advanced indexing moves dims around
    expanded = []
    for item in items:
        if item is Ellipsis:
            expanded.extend([slice(None)] * (rank - consumed))
        else:
            expanded.append(item)
    expanded.extend([slice(None)] * (rank - sum(1 for i in expanded if i is not None)))
    pairs = []
    source = target = 0
    for item in expanded:
        if item is None:
            target += 1
        elif isinstance(item, slice):
            pairs.append(((source,), (target,)))
            source, target = source + 1, target + 1
        elif isinstance(item, int):
            source += 1
        else:
            return None
    return pairs


# -- helpers --------------------------------------------------------------------------------------


def _op_name(node: fx.Node) -> str:
    name = method_name(node)
    if name is None and node.op == "call_function":
        target = node.target
        if target is operator.getitem:
            return "getitem"
        if target is operator.matmul:
            return "matmul"
        if is_cat(node):
            return "cat"
        name = getattr(target, "__name__", "")
    return (name or "").rstrip("_") if name and not name.startswith("__") else (name or "")


def _spatial_dims(module: nn.Module, rank: int) -> int | None:
    """How many spatial dims a conv/pool/norm layer works on (BatchNorm1d: 0 on [B, C], 1 on [B, C, L])."""
    kernel = getattr(module, "kernel_size", None)
    if isinstance(module, nn.modules.conv._ConvNd):
        return len(kernel)
    if isinstance(module, nn.GroupNorm):
        return max(rank - 2, 0)
    found = re.search(r"(\d)d$", type(module).__name__) or next(
        (re.search(r"(\d)d$", base.__name__) for base in type(module).__mro__ if re.search(r"(\d)d$", base.__name__)), None
    )
    if found is None:
        return None
    dims = int(found.group(1))
    if dims == 1 and isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)) and rank == 2:
        return 0
    return dims


def _int_args(args: Iterable[Any], keyword: Any) -> list[int] | None:
    args = list(args)
    if len(args) == 1 and isinstance(args[0], (list, tuple)):
        args = list(args[0])
    if not args and keyword is not None:
        args = list(keyword) if isinstance(keyword, (list, tuple)) else [keyword]
    if not args or not all(isinstance(a, int) for a in args):
        return None
    return args


def infer_roles(propagation) -> dict[Key, Roles]:
    """Roles of every tensor of the graph (keyed by (node, item))."""
    return _Inference(propagation).run()

