"""The torch.fx frontend: `symbolic_trace`, with the user's source location and module on every node."""

from __future__ import annotations

import inspect
import operator
import sys

import torch
import torch.fx as fx
from torch import nn

from reslint.trace.ops import is_inplace_method, method_name
from reslint.where import frame_location, innermost_user_frame


class InPlaceProxy(fx.Proxy):
    """A Proxy that keeps `x += y` in place (operator.iadd), as eager PyTorch runs it.

    fx's own Proxy has no __iadd__, so Python falls back to `x = x + y`: a broadcast that eager
    PyTorch rejects (`out += x` cannot grow `out`) would then look fine.
    """

    def __iadd__(self, other):
        return self.tracer.create_proxy("call_function", operator.iadd, (self, other), {})


class LocatingTracer(fx.Tracer):
    """A Tracer that records, per node, where in the user's code it was created and in which module."""

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return InPlaceProxy(node, self)

    def create_node(self, kind, target, args, kwargs, name=None, type_expr=None):
        node = super().create_node(kind, target, args, kwargs, name, type_expr)
        frame = innermost_user_frame(sys._getframe(1))
        node.meta["source"] = frame_location(frame) if frame is not None else None
        # For a leaf call_module node the scope is the leaf itself; its enclosing module is its parent.
        path = self.scope.module_path
        module_type = self.scope.module_type
        if kind == "call_module":
            path = path.rpartition(".")[0]
            module_type = type(self.root.get_submodule(path)) if path else type(self.root)
        node.meta["module_path"] = path
        node.meta["module_type"] = module_type.__name__ if module_type is not None else type(self.root).__name__
        return node


def trace_fx(model: nn.Module, inputs: tuple | None = None) -> fx.Graph:
    """Symbolically trace a model; raises whatever fx raises when the model is not traceable.

    The graph's call_module and get_attr targets name the model's own submodules and parameters; no
    GraphModule is built, since nothing runs its generated code (that would cost 10% of a trace).
    Forward parameters past the given inputs keep their defaults while tracing (`mask=None` must not
    be traced down its `if mask is not None:` branch).
    """
    graph = LocatingTracer().trace(model, concrete_args=_defaults_past(model, inputs))
    rebind_discarded_inplace_results(graph)
    return graph


def _defaults_past(model: nn.Module, inputs: tuple | None) -> dict | None:
    if inputs is None:
        return None
    try:
        parameters = [
            p for p in inspect.signature(model.forward).parameters.values()
            if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        ]
    except (TypeError, ValueError):
        return None
    defaults = {
        p.name: p.default for p in parameters[len(inputs):]
        if p.default is not inspect.Parameter.empty and not isinstance(p.default, torch.Tensor)
    }
    return defaults or None


def rebind_discarded_inplace_results(graph: fx.Graph) -> None:
    """Make code after `out.add_(x)` read the add's result, as eager PyTorch does.

    fx records `out.add_(x)` as a node whose result nothing uses: later code still reads `out`, the
    node before the add. Its shape is the same when the add works, but when it fails the substitute
    the propagation chose would never reach later layers. An in-place op whose result is used
    (`x = self.relu(x)` with inplace=True) is left as written: later reads of the old name are what
    RL006 warns about.
    """
    order = {node: i for i, node in enumerate(graph.nodes)}
    for node in graph.nodes:
        if node.users or not node.args or not isinstance(node.args[0], fx.Node):
            continue
        if not is_inplace_method(method_name(node)):
            continue
        written = node.args[0]
        for user in list(written.users):
            if order[user] > order[node]:
                user.replace_input_with(written, node)
