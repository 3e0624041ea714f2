"""Meta ops answered from what an identical earlier call returned.

On meta tensors an op computes nothing but its result's metadata, and most of torch's meta kernels
are Python (an elementwise `mul` costs ~0.6 ms): a model of 80 identical layers pays for the same
calls 80 times. A meta op's result is a function of its operands' metadata and its other arguments,
so a call whose key (the function, every tensor's type, shape, stride, dtype and device, every other
argument's value, torch's default dtype) was seen before gets a new empty tensor with the recorded
result's shape, stride and dtype.

Only what is provably that function is memoized:
- functions of torch (and of `operator`), never the model's own Python;
- arguments made only of meta tensors, plain constants, and tuples/lists of those: a CPU tensor, a
  callable, a SymInt or anything else makes the call run as usual. (A meta tensor's representative
  value, see data_dependent, is not the meta kernel's business: Assumptions deals with it around
  the call, memoized or not);
- results that are one fresh meta tensor: no view of, or alias to, an operand (a new tensor would
  lose the sharing), not an operand itself, no grad. A view of a base of its own (`out.transpose(0, 1)`
  at the end of a function) is answered with the same view of a new base of the same size; or a plain tuple of such tensors (sharing no
  storage with each other either) and Nones, as `F.multi_head_attention_forward` returns: one key
  then stands for the whole function, whose insides (a linear's meta kernel is a Python
  decomposition) would otherwise run again for every identical layer;
- no in-place op, no `out=`. A call that raises is never memoized (it raises again when repeated).
"""

from __future__ import annotations

import operator
import types
from typing import Any

import torch
from torch.fx.immutable_collections import immutable_dict, immutable_list
from torch.overrides import TorchFunctionMode

from reslint.trace.data_dependent import writes_first

MAX_ENTRIES = 1 << 16

_OPERATOR_FUNCTIONS = {
    operator.add, operator.sub, operator.mul, operator.truediv, operator.floordiv, operator.mod, operator.pow,
    operator.matmul, operator.neg, operator.pos, operator.and_, operator.or_, operator.xor, operator.invert,
    operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne, operator.getitem,
}
_CONSTANTS = (int, float, bool, str, complex, type(None), torch.dtype, torch.device, torch.layout, torch.memory_format)
_TENSOR_TYPES = (torch.Tensor, torch.nn.Parameter)
_PURE: dict[Any, bool] = {}
_METHOD_WRAPPER = types.MethodWrapperType


class _Unkeyable(Exception):
    """An argument the key cannot stand for: the call runs as usual."""


def is_torch_function(func: Any) -> bool:
    """torch's own functions and Tensor methods (and operator's), whose results depend on their arguments only."""
    if type(func) is _METHOD_WRAPPER:  # a property's __get__ (`x.shape`): a new object per access, cheap anyway
        return False
    known = _PURE.get(func)
    if known is None:
        try:
            if func in _OPERATOR_FUNCTIONS:
                known = True
            elif getattr(func, "__objclass__", None) in (torch._C.TensorBase, torch.Tensor):
                known = not writes_first(func.__name__)
            else:
                module = getattr(func, "__module__", None) or ""
                name = getattr(func, "__name__", "") or ""
                known = (module == "torch" or module.startswith("torch.")) and not writes_first(name) and not isinstance(
                    func, (torch._ops.OpOverload, torch._ops.OpOverloadPacket)
                )
            _PURE[func] = known
        except TypeError:  # unhashable
            return False
    return known


class MetaMemo:
    """Results of meta calls by key (see the module docstring); one per recording or propagation."""

    def __init__(self) -> None:
        self.results: dict[tuple, tuple] = {}
        self.hits = 0

    def call(self, func: Any, args: tuple, kwargs: dict) -> Any:
        if "out" in kwargs or not is_torch_function(func):
            return func(*args, **kwargs)
        tensors: list[torch.Tensor] = []
        # Reading metadata under an active mode (torch.device("meta"), the recorder) would go through
        # each mode's __torch_function__ per attribute: 6x the cost of the key itself.
        with _UNMODED():
            try:
                key = (func, torch.get_default_dtype(), _key(args, tensors), _key(kwargs, tensors))
                known = self.results.get(key)
            except (_Unkeyable, TypeError):
                key = known = None
            if known is not None:
                self.hits += 1
                if known[0] is _TUPLE:
                    return tuple(None if item is None else _empty(item) for item in known[1])
                return _empty(known)
        result = func(*args, **kwargs)
        if key is not None:
            with _UNMODED():
                recorded = _recordable(result, tensors)
                if recorded is not None:
                    if len(self.results) >= MAX_ENTRIES:
                        self.results.clear()
                    self.results[key] = recorded
        return result


_TUPLE = object()  # marks a recorded tuple result: (_TUPLE, [metadata or None per item])


def _empty(metadata: tuple) -> torch.Tensor:
    shape, stride, dtype, view = metadata
    if view is None:
        return torch.empty_strided(shape, stride, dtype=dtype, device="meta")
    offset, size = view
    return torch.empty(size, dtype=dtype, device="meta").as_strided(shape, stride, offset)


def _recordable(result: Any, operands: list[torch.Tensor]) -> tuple | None:
    """What stands for a result that a new call may be answered with (see the module docstring), else None."""
    if type(result) is tuple:
        if not result or not any(item is not None for item in result):
            return None
        seen: list[torch.Tensor] = []
        described: list[tuple | None] = []
        for item in result:
            if item is None:
                described.append(None)
                continue
            metadata = _describe(item, [*operands, *seen])
            if metadata is None:
                return None
            described.append(metadata)
            seen.append(item)
        return (_TUPLE, described)
    return _describe(result, operands)


_UNMODED = torch._C.DisableTorchFunction


def _key(value: Any, tensors: list[torch.Tensor]) -> Any:
    kind = type(value)
    if kind in _TENSOR_TYPES:
        if value.device.type != "meta":  # a CPU tensor's values may size the result
            raise _Unkeyable()
        tensors.append(value)
        return (kind, tuple(value.shape), value.stride(), value.dtype, value.requires_grad, value.is_conj(), value.is_neg())
    if kind in _CONSTANTS:
        return (kind, value)
    if kind is tuple or kind is list or kind is torch.Size:
        return (kind, *[_key(item, tensors) for item in value])
    if kind is dict:
        return (dict, *[(name, _key(item, tensors)) for name, item in value.items()])
    if kind is immutable_list:  # fx's arguments: a list to the function called
        return (list, *[_key(item, tensors) for item in value])
    if kind is immutable_dict:
        return (dict, *[(name, _key(item, tensors)) for name, item in value.items()])
    if kind is slice:
        return (slice, _key(value.start, tensors), _key(value.stop, tensors), _key(value.step, tensors))
    if value is Ellipsis:
        return Ellipsis
    raise _Unkeyable()


def _describe(result: Any, operands: list[torch.Tensor]) -> tuple | None:
    """(shape, stride, dtype, view) of one new meta tensor that shares no storage with the operands,
    else None; `view` is (storage offset, storage size in elements) when it is a view of a base of its
    own, None when it is not a view (and starts its storage)."""
    if type(result) is not torch.Tensor or result.device.type != "meta" or result.requires_grad or result.__dict__:
        return None
    if result.is_conj() or result.is_neg():
        return None
    storage = result.untyped_storage()
    if any(result is t or t.untyped_storage()._cdata == storage._cdata for t in operands):
        return None
    view = None
    if result._is_view():
        size, itemsize = storage.nbytes(), result.element_size()
        if size % itemsize:
            return None
        view = (result.storage_offset(), size // itemsize)
    elif result.storage_offset():
        return None
    return (tuple(result.shape), result.stride(), result.dtype, view)


class MemoizedCalls(TorchFunctionMode):
    """Every torch call made while it is active (a layer's forward, in propagation) goes through `memo`."""

    def __init__(self, memo: MetaMemo):
        super().__init__()
        self.memo = memo

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return self.memo.call(func, args, kwargs or {})
