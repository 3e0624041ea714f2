"""The eager frontend: record the model's own execution on meta tensors into an fx graph.

For models torch.fx cannot trace (shape-dependent control flow, Python loops over a sequence, HF
transformers v5), the model simply runs on meta tensors while a TorchFunctionMode records every torch
call as a node, and `nn.Module.__call__` records torch.nn layers as call_module nodes (their insides
are not recorded, as fx does). Nodes carry the same meta as the fx frontend: source location and
module path. A shape error does not stop the run: the op's substitute (see propagate.substitutes) is
returned to the model's code and recording goes on; the resulting graph is then propagated exactly as
an fx graph is. Python control flow is resolved for the example input, which is what is checked.
"""

from __future__ import annotations

import operator
import sys
from typing import Any

import torch
import torch.fx as fx
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map

from reslint.inputs import call_arguments
from reslint.trace.data_dependent import Assumptions, value_of, writes_first
from reslint.trace.meta_checks import check_call
from reslint.trace.meta_memo import MetaMemo
from reslint.trace.ops import is_inplace_method, tensor_method_name
from reslint.trace.propagate import adapt_input, is_meta_limitation, stand_ins
from reslint.where import frame_location, innermost_user_frame


class StopRecording(BaseException):
    """An op failed with no substitute: the graph ends at it.

    A BaseException, so that the model's own `except Exception:` blocks do not swallow it.
    """


def _setitem(tensor: torch.Tensor, index: Any, value: Any) -> torch.Tensor:
    """`tensor[index] = value` as a node that yields the updated tensor (setitem itself returns None)."""
    tensor[index] = value
    return tensor


def is_leaf_module(module: nn.Module) -> bool:
    """The same rule as fx's Tracer: torch.nn's own layers are leaves, containers are not."""
    origin = type(module).__module__
    return (origin.startswith("torch.nn") or origin.startswith("torch.ao.nn")) and not isinstance(module, nn.Sequential)


SubstituteKey = tuple
"""Which failing op of a recording: (module path, source location, op, occurrence), stable across recordings."""


BranchKey = str
"""A branch on a value meta tensors do not have: "path:line:column#occurrence", stable across recordings."""


class EagerRecorder(TorchFunctionMode):
    def __init__(
        self, root: nn.Module, choices: dict[SubstituteKey, int] | None = None, branches: dict[BranchKey, bool] | None = None,
        memo: MetaMemo | None = None,
    ):
        super().__init__()
        self.root = root
        self.choices = choices or {}  # which substitute to hand the model's code at a failing op (default: the first)
        self.branches = branches or {}  # which side a branch on an unknown value takes (default: True)
        self.branches_taken: dict[BranchKey, bool] = {}
        self.assumptions = Assumptions(where=self._user_location, branch=self._branch)
        self._occurrences: dict[tuple, int] = {}
        self.graph = fx.Graph()
        self.node_of: dict[int, fx.Node] = {}
        self._alive: list[torch.Tensor] = []  # recorded tensors stay alive, so their ids stay unique
        self._attr_names = {id(t): n for n, t in [*root.named_parameters(remove_duplicate=False), *root.named_buffers(remove_duplicate=False)]}
        self._module_names = {id(m): n for n, m in root.named_modules(remove_duplicate=False)}
        self._attr_nodes: dict[int, fx.Node] = {}
        self._scope: list[tuple[str, str]] = [("", type(root).__name__)]
        self._in_leaf = 0
        # What each node's op returned, for the first propagation to take instead of running it again
        # (see Propagation.run); empty when an in-place op changed a recorded tensor's shape, strides,
        # dtype or representative value (values are kept as they end the run, which earlier ops did not see).
        self.recorded: dict[fx.Node, Any] = {}
        self.reusable = True
        self.memo = memo if memo is not None else MetaMemo()  # the meta ops of identical layers run once

    # -- recording ----------------------------------------------------------------------------------

    def record(self, inputs: tuple[Any, ...]) -> fx.Graph:
        # The model may write into its inputs (and a failing in-place op resizes what it writes): run on
        # copies, so that the caller's inputs stay as they were for propagation and for a new recording.
        inputs = tree_map(lambda value: value.clone() if isinstance(value, torch.Tensor) else value, inputs)
        for index, value in enumerate(inputs):
            node = self.graph.placeholder(f"input_{index}")
            self._meta(node)
            self._bind(value, node, keep=True)
        call_original = nn.Module.__call__
        recorder = self

        def call_module(module, *args, **kwargs):
            return recorder._call_module(call_original, module, args, kwargs)

        nn.Module.__call__ = call_module
        output: Any = None
        try:
            with torch.no_grad(), torch.device("meta"), self:  # tensors made in forward land on meta too
                args, kwargs = call_arguments(self.root, inputs)  # keyword-only forward parameters by name
                output = call_original(self.root, *args, **kwargs)
        except StopRecording:
            pass
        finally:
            nn.Module.__call__ = call_original
        leaves = [self.node_of[id(t)] for t in tree_flatten(output)[0] if isinstance(t, torch.Tensor) and id(t) in self.node_of]
        if output is None or not leaves:  # stopped early: keep every node alive by outputting the last
            leaves = [n for n in self.graph.nodes if n.op != "placeholder"][-1:]
        self.graph.output(tuple(leaves))
        return self.graph

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self._in_leaf:
            written = _written_layouts(func, None, args, kwargs)
            result = self.memo.call(func, args, kwargs)
            if written is not None and not _same_layouts(written, _written_layouts(func, None, args, kwargs)):
                self.reusable = False
            return result
        name = tensor_method_name(func)
        if name == "__iter__" and args and isinstance(args[0], torch.Tensor) and args[0].dim():
            # `for row in tensor`: rows recorded as unbind's, so they are nodes and keep their values.
            return iter(self.__torch_function__(torch.Tensor.unbind, types, (args[0], 0), {}))
        written = _written_layouts(func, name, args, kwargs)
        departures = self.assumptions.departures
        try:
            check_call(func, args, kwargs)
            result = self.assumptions.run(func, lambda: self.memo.call(func, args, kwargs), args, kwargs)
        except Exception as error:
            return self._substitute(func, args, kwargs, error)
        if written is not None and not _same_layouts(written, _written_layouts(func, name, args, kwargs)):
            self.reusable = False
        plain = departures == self.assumptions.departures  # ran on meta as it is, as propagation will
        if name == "__setitem__" and isinstance(args[0], torch.Tensor):
            self._bind(args[0], self._node("call_function", _setitem, args, kwargs), keep=plain)
        elif _has_tensor(result) and not self._returns_its_input(result, args, is_inplace_method(name)):
            self._bind(result, self._node("call_function", func, args, kwargs), keep=plain)
        return result

    def _substitute(self, func, args: tuple, kwargs: dict, error: Exception) -> Any:
        """The value the model's code gets from an op that failed: see propagate.substitutes."""
        node = self._node("call_function", func, args, kwargs)
        substitute = None
        if not is_meta_limitation(error):
            candidates = stand_ins(node, args, kwargs, None, lambda adapted: func(*adapted, **kwargs))
            pick = self._pick(node, len(candidates))
            if isinstance(pick, tuple) and candidates:  # the shape the rest of the model expects here
                like = next((c for c in candidates if isinstance(c, torch.Tensor)), None)
                substitute = torch.empty(pick, dtype=like.dtype if like is not None else torch.float32, device="meta")
            else:
                substitute = candidates[pick] if candidates else None
        if substitute is None:
            raise StopRecording() from error
        written = args[0] if args else None
        if is_inplace_method(tensor_method_name(func)) and isinstance(written, torch.Tensor) and isinstance(substitute, torch.Tensor):
            # `out.add_(x)` whose result the code drops: `out` itself must take the substitute's shape.
            written.resize_(substitute.shape)
            substitute = written
            self.reusable = False
        self._bind(substitute, node, keep=False)
        return substitute

    def _user_location(self):
        frame = innermost_user_frame(sys._getframe(1))
        return frame_location(frame) if frame is not None else None

    def _branch(self, where: str) -> bool:
        """The side a branch on an unknown value takes: as told, else True (see record_eager)."""
        occurrence = sum(1 for key in self.branches_taken if key.rpartition("#")[0] == where)
        key = f"{where}#{occurrence}"
        self.branches_taken[key] = side = self.branches.get(key, True)
        return side

    def _pick(self, node: fx.Node, count: int) -> int | tuple[int, ...]:
        """The substitute chosen for this failing op, and the key that names it for the next recording."""
        where = (node.meta["module_path"], str(node.meta["source"]), getattr(node.target, "__name__", str(node.target)))
        occurrence = self._occurrences[where] = self._occurrences.get(where, -1) + 1
        node.meta["substitute_key"] = (*where, occurrence)
        pick = self.choices.get(node.meta["substitute_key"], 0)
        node.meta["substitute_pick"] = pick = pick if isinstance(pick, tuple) or pick < count else 0
        return pick

    @staticmethod
    def _returns_its_input(result: Any, args: tuple, inplace: bool) -> bool:
        """An op that hands back its input unchanged (nn.Identity, `x.contiguous()`, `x.float()`) makes no node:
        rebinding the input to it would route every later read of that tensor through it."""
        return not inplace and isinstance(result, torch.Tensor) and any(result is a for a in args)

    def _call_module(self, call_original, module: nn.Module, args: tuple, kwargs: dict) -> Any:
        name = self._module_names.get(id(module))
        if name is None or self._in_leaf:  # a module built inside forward, or a layer's internals
            return call_original(module, *args, **kwargs)
        if not is_leaf_module(module):
            self._scope.append((name, type(module).__name__))
            try:
                return call_original(module, *args, **kwargs)
            finally:
                self._scope.pop()
        self._in_leaf += 1
        try:
            result, adapted = self._run_layer(call_original, module, args, kwargs)
        except StopRecording:
            self._node("call_module", name, args, kwargs)  # the failing layer ends the graph
            raise
        finally:
            self._in_leaf -= 1
        if not self._returns_its_input(result, args, getattr(module, "inplace", False) is True):
            self._bind(result, self._node("call_module", name, args, kwargs), keep=not adapted)
        return result

    @staticmethod
    def _run_layer(call_original, module: nn.Module, args: tuple, kwargs: dict) -> tuple[Any, bool]:
        """The layer's output, and whether its input had to be adapted: if its input has the wrong
        shape, its output for an input it accepts."""
        try:
            check_call(module, args, kwargs)
            return call_original(module, *args, **kwargs), False
        except Exception as error:
            adapted = None if is_meta_limitation(error) else adapt_input(module, args)
            if adapted is None:
                raise StopRecording() from error
            try:
                return call_original(module, *adapted, **kwargs), True
            except Exception as retry_error:
                raise StopRecording() from retry_error

    # -- nodes ------------------------------------------------------------------------------------

    def _node(self, op: str, target: Any, args: tuple, kwargs: dict) -> fx.Node:
        node = _create_node(self.graph, op, target, self._as_args(args), self._as_args(kwargs))
        self._meta(node)
        return node

    def _meta(self, node: fx.Node) -> None:
        frame = innermost_user_frame(sys._getframe(1))
        node.meta["source"] = frame_location(frame) if frame is not None else None
        node.meta["module_path"], node.meta["module_type"] = self._scope[-1]

    def _as_args(self, value: Any) -> Any:
        """tree_map(self._as_arg, value), walking the plain tuples, lists and dicts of every op's
        arguments directly (tree_map's generic flatten/unflatten cost more than the op itself)."""
        kind = type(value)
        if kind is tuple:
            return tuple([self._as_args(item) for item in value])
        if kind is list:
            return [self._as_args(item) for item in value]
        if kind is dict:
            return {key: self._as_args(item) for key, item in value.items()}
        if isinstance(value, torch.Tensor):
            return self._as_arg(value)
        if kind in _PLAIN_LEAVES:
            return value
        return tree_map(self._as_arg, value)

    def _as_arg(self, value: Any) -> Any:
        if not isinstance(value, torch.Tensor):
            return value
        node = self.node_of.get(id(value))
        if node is not None:
            return node
        name = self._attr_names.get(id(value))
        if name is None:
            return value  # a constant made outside the model's forward
        if id(value) not in self._attr_nodes:
            self._attr_nodes[id(value)] = node = self.graph.get_attr(name)
            self.recorded[node] = value
        return self._attr_nodes[id(value)]

    def _bind(self, value: Any, node: fx.Node, keep: bool) -> None:
        """`value` is the node's from now on; `keep`: it is what propagation would compute there."""
        if keep:
            self.recorded[node] = value
        if isinstance(value, torch.Tensor):
            self.node_of[id(value)] = node
            self._alive.append(value)
        elif isinstance(value, (tuple, list)):
            for index, item in enumerate(value):
                if isinstance(item, torch.Tensor):
                    item_node = self.graph.call_function(operator.getitem, (node, index))
                    item_node.meta.update(node.meta)
                    self._bind(item, item_node, keep)


_PLAIN_LEAVES = (int, float, bool, str, type(None), torch.dtype, torch.device, torch.Size, slice, type(Ellipsis))
"""Types tree_map treats as leaves that `_as_arg` hands back unchanged (no tensor inside)."""


_NODE_NAMES: dict[Any, str] = {}
_QUIET_NODES = hasattr(fx.Node, "_update_args_kwargs")  # torch 2.x's Node.__init__ helper; else the plain way


def _create_node(graph: fx.Graph, op: str, target: Any, args: tuple, kwargs: dict) -> fx.Node:
    """graph.create_node(op, target, args, kwargs), the same node under the same name, for less: fx
    scans every call's arguments for raw SymInts to warn about (a meta recording makes none), and
    derives the name's stem from the target anew each time (a regex; cached here per target).
    The node is made without arguments, which skips the scan, and then given them exactly as
    Node.__init__ gives them (its `_update_args_kwargs` on a node that has no users yet)."""
    if not _QUIET_NODES:
        return graph.create_node(op, target, args, kwargs)
    try:
        stem = _NODE_NAMES.get(target)
        if stem is None:
            stem = _NODE_NAMES[target] = graph._target_to_str(target)
    except (TypeError, AttributeError):  # an unhashable target; a torch without the helper
        return graph.create_node(op, target, args, kwargs)
    node = graph.create_node(op, target, name=stem)
    if args or kwargs:
        node._update_args_kwargs(args, kwargs)
    return node


def _written_layouts(func: Any, name: str | None, args: tuple, kwargs: dict) -> list | None:
    """Shape, strides, dtype and representative value (see data_dependent) of the tensors an op writes
    into (in-place, `out=`, a setter), else None. Compare two with `_same_layouts`."""
    written = []
    name = name or getattr(func, "__name__", "") or ""
    if writes_first(name) or name == "__set__":
        written.append(args[0] if args else None)
    out = kwargs.get("out") if kwargs else None
    if out is not None:
        written.extend(out if isinstance(out, (tuple, list)) else [out])
    if not written:
        return None
    return [(tuple(t.shape), t.stride(), t.dtype, value_of(t)) if isinstance(t, torch.Tensor) else None for t in written]


def _same_layouts(before: list, after: list) -> bool:
    return all(
        a is b or (a is not None and b is not None and a[:3] == b[:3] and a[3] is b[3]) for a, b in zip(before, after)
    )


def _has_tensor(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    return isinstance(value, (tuple, list)) and any(isinstance(v, torch.Tensor) for v in value)


MAX_BRANCH_RETRIES = 4


def record_eager(
    model: nn.Module, inputs: tuple[Any, ...], choices: dict[SubstituteKey, int] | None = None,
    branches: dict[BranchKey, bool] | None = None,
) -> fx.Graph:
    """Run the model on meta inputs and return the graph of what it did.

    `choices` names, for failing ops of an earlier recording, which substitute the model's code gets
    (the one settle chose), so that what runs after them is what the analysis settled on.

    A branch on a value meta tensors do not have (`if x.sum() > 0:`, `assert not x.isnan().any()`)
    takes True; if the model's code then raises, the last such branch is taken as False instead and
    the model recorded again. The graph carries the sides taken (`graph.reslint_branches`) and the
    notes that state every assumption made (`graph.reslint_assumptions`).
    """
    branches = dict(branches or {})
    memo = MetaMemo()
    for attempt in range(MAX_BRANCH_RETRIES + 1):
        recorder = EagerRecorder(model, choices, branches, memo)
        try:
            graph = recorder.record(inputs)
        except Exception:
            untried = [key for key, side in recorder.branches_taken.items() if side and key not in branches]
            if not untried or attempt == MAX_BRANCH_RETRIES:
                raise
            branches.update({key: side for key, side in recorder.branches_taken.items()})
            branches[untried[-1]] = False
            continue
        graph.reslint_branches = dict(recorder.branches_taken)
        graph.reslint_assumptions = recorder.assumptions.notes_list()
        graph.reslint_memo = memo  # its first propagation runs the same calls
        graph.reslint_recorded = recorder.recorded if recorder.reusable else {}
        return graph
    raise AssertionError("unreachable")


def changed_choices(graph: fx.Graph, chosen: dict[fx.Node, int], failures: dict | None = None) -> dict[SubstituteKey, Any] | None:
    """The choices for a new recording, if settle chose other substitutes than the recording used.

    A choice is an index among the op's own substitutes, or, past those (`Failure.local`), the shape
    the rest of the model expects there (see settle.ExpectedShapes), which the recorder then hands over.
    """
    def wanted(node: fx.Node) -> Any:
        pick = chosen.get(node, 0)
        failure = (failures or {}).get(node)
        if failure is not None and failure.local is not None and pick >= failure.local and pick < len(failure.candidates):
            return tuple(failure.candidates[pick].shape)
        return pick

    keyed = [(n.meta["substitute_key"], n.meta["substitute_pick"], wanted(n)) for n in graph.nodes if "substitute_key" in n.meta]
    if all(used == wanted for _, used, wanted in keyed):
        return None
    return {key: wanted for key, _, wanted in keyed}
