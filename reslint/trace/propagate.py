"""Shape propagation on meta tensors that never stops at the first error.

`Propagation` runs every node of a graph once, keeps each node's value (a meta tensor, or whatever
the op returned), and when an op raises, records the error and substitutes a value so that the rest
of the model can still be checked: one run reports every broken join, like a compiler.

`recompute` re-runs only what lies downstream of a change (a fix, or a different substitute) and
stops where shapes converge back to what they were, so fix validation costs the changed region.
"""

from __future__ import annotations

import functools
import heapq
from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Iterable

import torch
import torch.fx as fx
from torch import nn
from torch.utils._pytree import tree_flatten

from reslint.trace.data_dependent import Assumptions, is_data_limitation
from reslint.trace.meta_checks import check_call
from reslint.trace.meta_memo import MemoizedCalls, MetaMemo
from reslint.trace.ops import cat_tensors_and_dim, is_cat, is_elementwise

UNKNOWN = type("Unknown", (), {"__repr__": lambda self: "UNKNOWN"})()
"""The value of a node that could not be computed (an input of it failed beyond recovery)."""

Override = Callable[[tuple, dict], Any]
"""Computes a node's value from its (already evaluated) args and kwargs, in place of the node's op."""

@dataclass
class Failure:
    message: str
    candidates: list[Any]  # substitutes that let propagation go on; chosen[node] picks one
    limitation: bool = False  # the op cannot run on meta at all; the model itself may be fine
    local: int | None = None  # how many candidates the op itself offers; those after are expected shapes


@dataclass
class Delta:
    """What a recomputation changed: new values and failures of the nodes it re-ran."""

    values: dict[fx.Node, Any] = field(default_factory=dict)
    failures: dict[fx.Node, Failure] = field(default_factory=dict)


def on_meta(method):
    """Run without autograd, with tensors the model makes in forward (`torch.zeros(n)`) on meta too."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with torch.no_grad(), torch.device("meta"):
            return method(*args, **kwargs)

    return wrapper


class Propagation:
    """Values of a graph's nodes; `root` owns the modules and parameters the graph refers to."""

    def __init__(self, root: nn.Module, graph: fx.Graph, inputs: tuple[Any, ...]):
        self.root = root
        self.graph = graph
        self.nodes = list(graph.nodes)
        self.index = {node: i for i, node in enumerate(self.nodes)}
        self.inputs = inputs
        self.values: dict[fx.Node, Any] = {}
        self.failures: dict[fx.Node, Failure] = {}
        self.chosen: dict[fx.Node, int] = {}  # which candidate substitutes each failing node
        # Shapes the rest of the model expects at a node, offered as further substitutes (set by settle).
        self.expected: Callable[[fx.Node], list[tuple[int, ...]]] = lambda node: []
        self._interpreter = fx.Interpreter(root, garbage_collect_values=False, graph=graph)
        self.memo: MetaMemo = getattr(graph, "reslint_memo", None) or MetaMemo()  # identical layers' ops run once
        self._placeholder_values = self._bind_placeholders(inputs)
        # Data-dependent ops (nonzero, x[mask], .item()) run on representative values; see data_dependent.
        self._source = None  # the source location of the node being run, for the assumptions' notes
        self.assumptions = Assumptions(where=lambda: self._source)
        self.assumption_notes: list[str] = []  # what the first run assumed (fix validations add nothing)

    # -- running ----------------------------------------------------------------------------------

    @on_meta
    def run(self) -> "Propagation":
        # An eager recording comes with what each op returned (graph.reslint_recorded). A node whose
        # inputs are all the very values the recorder passed it returns what it returned then: the
        # same op on the same meta tensors. Once, since later runs (other inputs) must compute.
        recorded = self.graph.__dict__.pop("reslint_recorded", None) or {}
        matched: set[fx.Node] = set()  # nodes whose value is the recorder's
        for node in self.nodes:
            known = recorded.get(node, _NOT_RECORDED)
            if known is not _NOT_RECORDED and node.op not in ("placeholder", "get_attr") and all(n in matched for n in node.all_input_nodes):
                self.values[node] = known
                matched.add(node)
                continue
            value, failure = self._evaluate(node, self.values, None)
            self.values[node] = value
            if failure is not None:
                self.failures[node] = failure
            elif known is not _NOT_RECORDED and (value is known or (node.op == "placeholder" and _same_input(value, known))):
                matched.add(node)
        self.assumption_notes = self.assumptions.notes_list()
        return self

    @on_meta
    def recompute(
        self, overrides: dict[fx.Node, Override], chosen: dict[fx.Node, int] | None = None, firewall: Collection[fx.Node] = (),
    ) -> Delta:
        """Values after replacing some nodes' computations; only nodes downstream of a change re-run.

        `chosen` picks, for failing nodes, which substitute to use (default: the settled choice).
        A `firewall` node (another broken join) that now succeeds keeps its value: lining up by chance,
        it passes nothing on, and what comes after it is not recomputed (this keeps a change to one of
        many broken blocks local). If it still fails, its settled substitute goes on as usual.
        """
        delta = Delta()
        if not overrides and not chosen:
            return delta
        forced = {*overrides, *(chosen or {})}
        # Nodes to re-run, in graph order: the forced ones, then the users of whatever changed value.
        queue = [self.index[node] for node in forced]
        heapq.heapify(queue)
        queued = set(queue)
        env = _Layered(delta.values, self.values)
        while queue:
            node = self.nodes[heapq.heappop(queue)]
            value, failure = self._evaluate(node, env, overrides.get(node), chosen)
            if failure is None and node in firewall and node not in forced:
                value = self.values[node]
            delta.values[node] = value
            if failure is not None:
                delta.failures[node] = failure
            if same_value(value, self.values[node]):
                continue
            for user in node.users:
                position = self.index[user]
                if position not in queued:
                    queued.add(position)
                    heapq.heappush(queue, position)
        return delta

    def failing_after(self, delta: Delta) -> set[fx.Node]:
        """The failing nodes of the graph once `delta` is applied."""
        kept = {node for node in self.failures if node not in delta.values}
        return kept | set(delta.failures)

    def commit(self, delta: Delta, chosen: dict[fx.Node, int] | None = None) -> None:
        for node, value in delta.values.items():
            self.values[node] = value
            self.failures.pop(node, None)
        self.failures.update(delta.failures)
        self.chosen.update(chosen or {})

    # -- one node ---------------------------------------------------------------------------------

    def _evaluate(self, node: fx.Node, env, override: Override | None, chosen: dict | None = None):
        if node.op == "placeholder":
            return self._placeholder_values[node], None
        if node.op == "output":
            return fx.node.map_arg(node.args[0], lambda n: env[n]), None
        args = fx.node.map_arg(node.args, lambda n: env[n])
        kwargs = fx.node.map_arg(node.kwargs, lambda n: env[n])
        if _contains_unknown(args) or _contains_unknown(kwargs):
            return UNKNOWN, None
        try:
            if override is not None:
                return override(args, kwargs), None
            return self._run_op(node, args, kwargs), None
        except Exception as error:  # the model's own error: record it, substitute, go on
            failure = self._failure(node, args, kwargs, error)
            pick = (chosen or {}).get(node, self.chosen.get(node, 0))
            value = failure.candidates[pick] if pick < len(failure.candidates) else UNKNOWN
            return value, failure

    def _run_op(self, node: fx.Node, args: tuple, kwargs: dict) -> Any:
        check_call(self.module(node) if node.op == "call_module" else node.target, args, kwargs)
        function = node.target if node.op == "call_function" else getattr(torch.Tensor, node.target, None) if node.op == "call_method" else None
        if function is None:
            if node.op == "call_module":
                with MemoizedCalls(self.memo):
                    return self._interpreter.call_module(node.target, args, kwargs)
            return getattr(self._interpreter, node.op)(node.target, args, kwargs)
        if node.op == "call_function" or (args and type(args[0]) is torch.Tensor):
            run = lambda: self.memo.call(function, args, kwargs)  # noqa: E731  (what the interpreter would call)
        else:
            run = lambda: getattr(self._interpreter, node.op)(node.target, args, kwargs)  # noqa: E731
        self._source = node.meta.get("source")
        return self.assumptions.run(function, run, args, kwargs)

    def _failure(self, node: fx.Node, args: tuple, kwargs: dict, error: Exception) -> Failure:
        if is_meta_limitation(error):
            return Failure(first_line(error), [], limitation=True)
        candidates = stand_ins(node, args, kwargs, self.module(node), lambda adapted: self._run_op(node, adapted, kwargs))
        local = len(candidates)
        # Then the shapes the rest of the model expects here (see settle.ExpectedShapes), if not among them.
        for shape in self.expected(node):
            if isinstance(shape, tuple) and not any(isinstance(c, torch.Tensor) and tuple(c.shape) == shape for c in candidates):
                like = next((c for c in candidates if isinstance(c, torch.Tensor)), None)
                dtype = like.dtype if like is not None else torch.float32
                candidates.append(torch.empty(shape, dtype=dtype, device="meta"))
        return Failure(first_line(error), candidates, local=local)

    def _bind_placeholders(self, inputs: tuple[Any, ...]) -> dict[fx.Node, Any]:
        bound = {}
        remaining = list(inputs)
        for node in self.nodes:
            if node.op != "placeholder":
                continue
            if remaining:
                bound[node] = remaining.pop(0)
            elif node.args:  # a parameter with a default value
                bound[node] = node.args[0]
            else:
                raise TypeError(f"forward() is missing a value for its argument {node.target!r}")
        return bound

    # -- helpers for analysis ------------------------------------------------------------------------

    def module(self, node: fx.Node) -> nn.Module | None:
        return self.root.get_submodule(node.target) if node.op == "call_module" else None

    def annotate(self) -> None:
        """Write the results into node.meta, where later passes read them."""
        for node in self.nodes:
            value = self.values.get(node)
            node.meta["shape"] = tuple(value.shape) if isinstance(value, torch.Tensor) else None
            failure = self.failures.get(node)
            if failure is not None:
                node.meta["error"] = failure.message
            else:
                node.meta.pop("error", None)


_NOT_RECORDED = object()


def _same_input(value: Any, recorded: Any) -> bool:
    """An input and the recorder's copy of it are interchangeable: plain tensors of one layout, no representative value."""
    if type(value) is not torch.Tensor or type(recorded) is not torch.Tensor:
        return False
    return (
        value.shape == recorded.shape and value.stride() == recorded.stride() and value.dtype == recorded.dtype
        and value.device == recorded.device and not value.__dict__ and not recorded.__dict__
    )


def substitutes(node: fx.Node, args: tuple, kwargs: dict) -> Iterable[Any]:
    """Values a failing op could have had, had its operands agreed; the first is the default.

    For an elementwise op, one per tensor operand: the result shaped like that operand; but if the
    operands broadcast (an in-place `out += x` cannot grow `out`), only the broadcast shape, which is
    what the written add computes. For cat, one per operand, keeping each one's size along the
    concatenated dim.
    """
    if is_cat(node):
        tensors, dim = cat_tensors_and_dim(args, kwargs)
        if not isinstance(tensors, (list, tuple)):
            return
        for reference in tensors:
            if isinstance(reference, torch.Tensor):
                yield torch.cat([_conform(t, reference, keep_dim=dim) for t in tensors], dim=dim)
    elif is_elementwise(node):
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        try:
            broadcast = torch.broadcast_shapes(*(t.shape for t in tensors))
        except RuntimeError:
            broadcast = None
        if broadcast is not None and tensors:
            yield torch.empty(broadcast, dtype=tensors[0].dtype, device=tensors[0].device)
            return
        for reference in tensors:
            yield torch.empty_like(reference)


def _conform(tensor: Any, reference: torch.Tensor, keep_dim: int) -> Any:
    if not isinstance(tensor, torch.Tensor) or tensor.dim() != reference.dim():
        return torch.empty_like(reference)
    shape = list(reference.shape)
    shape[keep_dim] = tensor.shape[keep_dim]
    return torch.empty(shape, dtype=reference.dtype, device=reference.device)


def stand_ins(node: fx.Node, args: tuple, kwargs: dict, module: nn.Module | None, run: Callable[[tuple], Any]) -> list[Any]:
    """What a failing op's result could be: its substitutes; for a layer (a module, or its functional
    form), `run` on an input resized to what the layer expects."""
    candidates = list(substitutes(node, args, kwargs))
    if candidates:
        return candidates
    if node.op == "call_module":
        adapted = adapt_input(module, args)
    elif node.op == "call_function":
        adapted = adapt_function_input(node.target, args, kwargs)
    else:
        adapted = None
    if adapted is None:
        return []
    results = []
    # A layer given the other layout (a missing permute) gets its input with the dim moved first:
    # what the code meant; the resized input is the fallback.
    for attempt in (moved_input(args, adapted), adapted):
        if attempt is None:
            continue
        try:
            results.append(run(attempt))
        except Exception:
            pass
    return results


def moved_input(args: tuple, adapted: tuple) -> tuple | None:
    """args with the first tensor permuted so the one dim `adapted` resized gets the size it wanted,
    when exactly one other (non-batch) dim has that size: a channels-last tensor given to a conv, a
    channels-first one to a Linear or LayerNorm."""
    x, want = args[0], adapted[0]
    if not isinstance(x, torch.Tensor) or not isinstance(want, torch.Tensor) or x.dim() != want.dim() or x.dim() < 3:
        return None
    changed = [d for d in range(x.dim()) if x.shape[d] != want.shape[d]]
    if len(changed) != 1:
        return None
    target = changed[0]
    holders = [d for d in range(1, x.dim()) if d != target and x.shape[d] == want.shape[target]]
    if len(holders) != 1:
        return None
    order = [d for d in range(x.dim()) if d != holders[0]]
    order.insert(target, holders[0])
    return (x.permute(order), *args[1:])


def adapt_input(module: nn.Module | None, args: tuple) -> tuple | None:
    """The call's args with the first tensor resized to what the layer expects, if it says."""
    if isinstance(module, (torch.nn.modules.conv._ConvNd, torch.nn.modules.batchnorm._NormBase)):
        return _resized_first(args, {1: getattr(module, "in_channels", None) or module.num_features})
    if isinstance(module, torch.nn.GroupNorm):
        return _resized_first(args, {1: module.num_channels})
    if isinstance(module, torch.nn.Linear):
        return _resized_first(args, {-1: module.in_features})
    if isinstance(module, torch.nn.LayerNorm):
        return _resized_first(args, _trailing(module.normalized_shape))
    if isinstance(module, torch.nn.MultiheadAttention):
        widths = (module.embed_dim, module.kdim, module.vdim)
        resized = [_resized_first((a,), {-1: w})[0] if isinstance(a, torch.Tensor) and a.dim() else a for a, w in zip(args, widths)]
        return (*resized, *args[3:])
    return None


def adapt_function_input(function: Any, args: tuple, kwargs: dict) -> tuple | None:
    """As adapt_input, for the functional form of a layer (F.linear, F.conv2d, F.layer_norm, ...)."""
    name = getattr(function, "__name__", "")
    weight = args[1] if len(args) > 1 else kwargs.get("weight")
    if name == "group_norm":  # group_norm(input, num_groups, weight, ...)
        weight = args[2] if len(args) > 2 else kwargs.get("weight")
        return _resized_first(args, {1: weight.shape[0]}) if isinstance(weight, torch.Tensor) else None
    if name == "layer_norm":
        normalized = args[1] if len(args) > 1 else kwargs.get("normalized_shape")
        return _resized_first(args, _trailing(normalized or ()))
    if not isinstance(weight, torch.Tensor):
        return None
    if name == "linear":
        return _resized_first(args, {-1: weight.shape[-1]})
    if name in ("conv1d", "conv2d", "conv3d"):
        groups = args[6] if len(args) > 6 else kwargs.get("groups", 1)
        return _resized_first(args, {1: weight.shape[1] * groups})
    if name in ("conv_transpose1d", "conv_transpose2d", "conv_transpose3d"):
        return _resized_first(args, {1: weight.shape[0]})
    if name == "batch_norm":  # batch_norm(input, running_mean, ...)
        return _resized_first(args, {1: weight.shape[0]})
    return None


def _trailing(normalized) -> dict[int, int]:
    """{-1: last size, -2: the one before, ...}: the dims a layer norm normalizes."""
    return {-i: size for i, size in enumerate(reversed(list(normalized)), 1)}


def _resized_first(args: tuple, sizes: dict[int, int]) -> tuple | None:
    """args with the first (a tensor) resized at the given dims."""
    if not args or not isinstance(args[0], torch.Tensor):
        return None
    x = args[0]
    shape = list(x.shape)
    if any(not -len(shape) <= dim < len(shape) for dim in sizes):
        return None
    for dim, size in sizes.items():
        shape[dim] = size
    return (torch.empty(shape, dtype=x.dtype, device=x.device), *args[1:])


def same_value(a: Any, b: Any) -> bool:
    """Equal as far as meta propagation can tell: tensors by shape and dtype, containers by parts."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (
            isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
            and a.shape == b.shape and a.dtype == b.dtype
        )
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same_value, a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    try:
        return bool(a is b or a == b)
    except Exception:
        return False


def _contains_unknown(value: Any) -> bool:
    if value is UNKNOWN:
        return True
    kind = type(value)
    if kind is tuple or kind is list:  # the plain containers of every op's arguments, without tree_flatten
        return any(_holds_unknown(item) for item in value)
    if kind is dict:
        return any(_holds_unknown(item) for item in value.values())
    if isinstance(value, (list, tuple, dict)):
        leaves, _ = tree_flatten(value)
        return any(leaf is UNKNOWN for leaf in leaves)
    return False


def _holds_unknown(value: Any) -> bool:
    """Whether a pytree's leaves include UNKNOWN (what tree_flatten would find), walking plain containers directly."""
    if value is UNKNOWN:
        return True
    kind = type(value)
    if kind is tuple or kind is list:
        return any(_holds_unknown(item) for item in value)
    if kind is dict:
        return any(_holds_unknown(item) for item in value.values())
    if kind in _PLAIN_LEAVES or isinstance(value, torch.Tensor):
        return False
    return any(leaf is UNKNOWN for leaf in tree_flatten(value)[0])


_PLAIN_LEAVES = (int, float, bool, str, type(None), torch.dtype, torch.device, torch.Size, slice, type(Ellipsis))


def is_meta_limitation(error: Exception) -> bool:
    return is_data_limitation(error)


def first_line(error: Exception) -> str:
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


class _Layered(dict):
    """Reads from the recomputed values first, then from the base run (a two-level ChainMap, faster)."""

    def __init__(self, top: dict, base: dict):
        super().__init__()
        self.top, self.base = top, base

    def __getitem__(self, node):
        top = self.top
        return top[node] if node in top else self.base[node]
