"""Data-dependent ops on meta tensors: run them on stated assumptions instead of stopping.

A meta tensor has a shape but no values, so `x.sum() > 0` as a branch, `.item()`, `torch.nonzero`,
`torch.unique`, `x[mask]` or `repeat_interleave(repeats)` cannot run on it. torch's own answer,
FakeTensorMode with a ShapeEnv, gives such results *unbacked* symbolic sizes (memoized per tensor, so
the same mask has the same count) and refuses to branch on them (GuardOnDataDependentSymNode): sound
for export, but every later shape would be a symbol, and joins, rules and fixes work on integers.
Here the run goes on with concrete, representative values instead, each one said in a note:

- Small integer and boolean tensors that come from index ops (`topk`, `argmax`, `sort`, ...) carry a
  *representative value* on CPU (the `_reslint_value` attribute): indices spread evenly over their
  range, so a router sends tokens to every expert and each expert gets its share. Ops whose meta
  inputs all carry one (`one_hot`, `permute`, `sum`, `> 0`, `unbind`, `where(mask)`) carry one too,
  and so do small tensors made from nothing (`torch.zeros(T, E)`, `arange`).
- An op that cannot run on meta runs on CPU on those values; a tensor without one stands for
  ones (a mask: True at every other position of its last dim, so a mask and its complement are both
  non-empty and each row has the same count). Its result goes back to meta, with its value if small.
- `.item()`, `int()`, `float()`, `.tolist()` give the representative value (1, 1.0, ones when unknown);
  a branch on an unknown value (`bool()`) takes the side the recorder chose (True first; see
  EagerRecorder's `branches`).

The rules are deterministic functions of shapes and of earlier representative values, so propagating
an eager recording again (or an fx graph) makes the same choices the recording made.
"""

from __future__ import annotations

import linecache
import math
from typing import Any, Callable

import torch
from torch.utils._pytree import tree_flatten, tree_map

from reslint.where import SourceLocation, display_path

VALUE = "_reslint_value"
MAX_VALUE_NUMEL = 1 << 16  # representative values are kept for small tensors only
MAX_CPU_NUMEL = 1 << 24  # an op is run on CPU only when its tensors are at most this big

SCALAR_FUNCTIONS = {"item", "tolist", "__bool__", "__int__", "__float__", "__index__", "__complex__"}
INDEX_OPS = {"topk", "sort", "argsort", "argmax", "argmin", "max", "min", "kthvalue", "mode", "median", "multinomial"}
FACTORIES = {
    "zeros", "ones", "full", "arange", "range", "eye", "tensor", "as_tensor", "linspace",
    "zeros_like", "ones_like", "full_like", "new_zeros", "new_ones", "new_full", "new_tensor",
}
SETITEM = {"__setitem__", "setitem", "_setitem"}  # the Tensor method, operator.setitem, the eager recorder's node


def writes_first(name: str) -> bool:
    """`add_`, `index_add_`, `__setitem__`: the op writes into its first argument."""
    known = _WRITES_FIRST.get(name)
    if known is None:
        known = _WRITES_FIRST[name] = (
            name in SETITEM or (name.endswith("_") and not name.startswith("_")) or (name.startswith("__i") and name.endswith("__"))
        )
    return known


_WRITES_FIRST: dict[str, bool] = {}  # per op name: asked several times for every op


def _grouped_mm(error: Exception, mat_a: torch.Tensor, mat_b: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    """torch._grouped_mm's meta kernel takes only bf16/fp16 (its CPU kernel takes fp32 too): the result
    shape of the 2d x 3d form (MoE experts: tokens [S, K] by expert weights [E, K, N] -> [S, N])."""
    if mat_a.dim() == 2 and mat_b.dim() == 3 and mat_a.shape[-1] == mat_b.shape[-2]:
        return torch.empty(mat_a.shape[0], mat_b.shape[-1], dtype=kwargs.get("out_dtype") or mat_a.dtype, device=mat_a.device)
    raise error


STRICTER_ON_META = {"_grouped_mm": _grouped_mm, "grouped_mm": _grouped_mm}
"""Ops whose meta kernel rejects what CPU accepts: their result computed from their operands' shapes."""


def value_of(tensor: torch.Tensor) -> torch.Tensor | None:
    """The representative CPU value of a meta tensor, if it carries one."""
    return getattr(tensor, "__dict__", {}).get(VALUE)


def _set_value(tensor: torch.Tensor, value: torch.Tensor | None) -> None:
    if value is None or value.numel() > MAX_VALUE_NUMEL or value.shape != tensor.shape:
        tensor.__dict__.pop(VALUE, None)
    else:
        tensor.__dict__[VALUE] = value


def _name(func: Any) -> str:
    return getattr(func, "__name__", "") or str(func)


def _is_meta(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.device.type == "meta"


_UNMODED = torch._C.DisableTorchFunction
"""Reading a tensor's metadata under an active mode (torch.device("meta"), the eager recorder) goes
through each mode's Python __torch_function__ per attribute: the per-op checks read it without them."""


def _metas(args: tuple, kwargs: dict) -> list[torch.Tensor]:
    """The meta tensors of a call (in args, kwargs, and lists or tuples in them): run for every op, so kept cheap."""
    found = []
    with _UNMODED():
        for value in (*args, *kwargs.values()):
            if isinstance(value, torch.Tensor):
                if value.device.type == "meta":
                    found.append(value)
            elif isinstance(value, (list, tuple)):
                found.extend(item for item in value if isinstance(item, torch.Tensor) and item.device.type == "meta")
    return found


def _scan(args: tuple, kwargs: dict) -> tuple[list[torch.Tensor], bool]:
    """`_metas(args, kwargs)` and `_has_cpu_tensor(args, kwargs)` in one walk of the plain arguments
    every op passes (run for every op, so kept cheap); anything else is asked of `_any_cpu_tensor`."""
    found = []
    cpu = False
    with _UNMODED():
        for value in (*args, *kwargs.values()):
            if isinstance(value, torch.Tensor):
                if value.device.type == "meta":
                    found.append(value)
                elif value.dim():
                    cpu = True
            elif type(value) in _PLAIN_LEAVES:
                continue
            else:
                if isinstance(value, (list, tuple)):
                    found.extend(item for item in value if isinstance(item, torch.Tensor) and item.device.type == "meta")
                if not cpu and _any_cpu_tensor(value):
                    cpu = True
    return found, cpu


def representative(tensor: torch.Tensor) -> torch.Tensor:
    """A CPU value for a meta tensor: its own representative value, else ones (a mask: every other
    position of its last dim True). Expanded, so it costs no memory whatever the shape."""
    known = value_of(tensor)
    if known is not None:
        return known
    if tensor.dtype == torch.bool and tensor.dim():
        pattern = torch.arange(tensor.shape[-1], device="cpu") % 2 == 0
        return pattern.expand(tensor.shape)
    return torch.ones((), dtype=tensor.dtype, device="cpu").expand(tensor.shape)


def spread_indices(indices: torch.Tensor, size: int, dim: int | None) -> torch.Tensor:
    """Indices into a dim of `size` choices, row r's k picks being r*k .. r*k+k-1 (mod size): every
    choice gets its share, as trained routers are pushed to do (load balancing)."""
    if dim is None or indices.dim() == 0:
        return torch.zeros(indices.shape, dtype=indices.dtype, device="cpu")
    moved = list(indices.movedim(dim, -1).shape)
    k = moved[-1]
    rows = torch.arange(math.prod(moved[:-1]), device="cpu")
    flat = (rows[:, None] * k + torch.arange(k, device="cpu")[None, :]) % max(size, 1)
    return flat.reshape(moved).movedim(-1, dim).to(indices.dtype)


DEVICE_MOVES = {"cuda", "cpu", "to", "mps", "xpu"}


def _is_other_device(device: Any) -> bool:
    if isinstance(device, int):
        return True  # a CUDA ordinal
    if isinstance(device, str):
        device = device.split(":")[0]
        return device in ("cpu", "cuda", "mps", "xpu", "hip", "xla", "npu")
    return isinstance(device, torch.device) and device.type != "meta"


def to_meta_device(
    func: Any, name: str, args: tuple, kwargs: dict, metas: list[torch.Tensor] | None = None, cpu: bool | None = None,
) -> tuple[Callable[[], Any], tuple, dict] | None:
    """The call with the devices a model's forward names (`torch.arange(T, device=self.device)`,
    `mask.to(x.device)` where x was real, `.cuda()`) replaced by meta, where the whole run happens;
    None when it names none. Without this a model built for "cuda" fails on a machine without one.
    `metas` and `cpu`, when given, are `_scan(args, kwargs)`'s."""
    if name in ("cuda", "cpu", "mps", "xpu") and args and _is_meta(args[0]):
        return (lambda: args[0]), args, {}
    changed = False
    if _is_other_device(kwargs.get("device")):
        kwargs, changed = {**kwargs, "device": "meta"}, True
    if name == "to" and args and _is_meta(args[0]):
        positional = [("meta" if _is_other_device(a) else a) for a in args[1:]]
        positional = [a for a in positional if a != "meta"]  # `.to("cuda", torch.float16)` keeps its dtype
        changed = changed or len(positional) != len(args) - 1
        args = (args[0], *positional)
    if (metas if metas is not None and not changed else _metas(args, kwargs)) and (
        cpu if cpu is not None and not changed else _has_cpu_tensor(args, kwargs)
    ):  # a constant made on the CPU meets the run's meta tensors
        args, kwargs = tree_map(_cpu_to_meta, (args, kwargs))
        changed = True
    if not changed:
        return None
    return (lambda: func(*args, **kwargs)), args, kwargs


def _has_cpu_tensor(args: tuple, kwargs: dict) -> bool:
    with _UNMODED():
        return _any_cpu_tensor(args) or _any_cpu_tensor(kwargs)


_PLAIN_LEAVES = (int, float, bool, str, type(None), torch.dtype, torch.device, torch.Size)


def _any_cpu_tensor(value: Any) -> bool:
    """Whether a pytree holds a non-meta tensor with dims; the same answer as scanning tree_flatten's
    leaves, without building them for the plain tuples, lists and dicts every op passes (run per op)."""
    kind = type(value)
    if kind is tuple or kind is list or kind is dict:
        for item in value.values() if kind is dict else value:
            if isinstance(item, torch.Tensor):
                if item.device.type != "meta" and item.dim():
                    return True
            elif type(item) not in _PLAIN_LEAVES and _any_cpu_tensor(item):
                return True
        return False
    if isinstance(value, torch.Tensor):
        return value.device.type != "meta" and bool(value.dim())
    if kind in _PLAIN_LEAVES:
        return False
    return any(isinstance(v, torch.Tensor) and v.device.type != "meta" and v.dim() for v in tree_flatten(value)[0])


def _cpu_to_meta(value: Any) -> Any:
    """A real tensor as a meta one that keeps its value (when small) as its representative value."""
    if not isinstance(value, torch.Tensor) or value.device.type == "meta" or not value.dim():
        return value
    meta = value.to("meta")
    _set_value(meta, value.detach())
    return meta


class Assumptions:
    """The representative values of one run, and the notes that state them (one per source line).

    `where` gives the user's source location of the op being run (a node's, in propagation; the
    model's frame, in the eager recorder). `branch` picks the side of a branch on an unknown value.
    """

    def __init__(self, where: Callable[[], SourceLocation | None] = lambda: None, branch: Callable[[str], bool] | None = None):
        self.where = where
        self.branch = branch or (lambda key: True)
        self.notes: dict[tuple, str] = {}
        self.departures = 0  # ops that did not simply run on meta as they were called (devices moved, values assumed)

    # -- running an op ------------------------------------------------------------------------------

    def run(self, func: Any, call: Callable[[], Any], args: tuple, kwargs: dict) -> Any:
        """`call()` (which runs `func` on `args`), on meta; if it cannot run there, on representative values."""
        name = _name(func)
        metas, cpu = _scan(args, kwargs)
        on_meta = to_meta_device(func, name, args, kwargs, metas, cpu)
        if on_meta is not None:
            self.departures += 1
            call, args, kwargs = on_meta
            metas = _metas(args, kwargs)
        if name in SCALAR_FUNCTIONS and args and _is_meta(args[0]):
            self.departures += 1
            return self._scalar(name, args[0])
        if name in SETITEM and len(args) > 2 and _masked(args[1]) and isinstance(args[2], torch.Tensor):
            metas = _metas(args, kwargs)
            if max(t.numel() for t in metas) <= MAX_CPU_NUMEL:  # meta does not check the value's count
                self.departures += 1
                return self._on_cpu(func, args, kwargs, metas)
        try:
            result = call()
        except Exception as error:
            self.departures += 1
            if name in STRICTER_ON_META:
                return STRICTER_ON_META[name](error, *args, **kwargs)
            if not is_data_limitation(error):
                raise
            metas = _metas(args, kwargs)
            if not metas or max(t.numel() for t in metas) > MAX_CPU_NUMEL:
                raise
            return self._on_cpu(func, args, kwargs, metas)
        self._carry(func, name, args, kwargs, result, metas)
        return result

    def _on_cpu(self, func: Any, args: tuple, kwargs: dict, metas: list[torch.Tensor]) -> Any:
        """The op on representative CPU values; tensors of its result go back to meta, keeping their value."""
        unknown = [t for t in metas if value_of(t) is None]
        writes = writes_first(_name(func))
        cpu_args, cpu_kwargs = _to_cpu(args, kwargs, writes)
        with torch.device("cpu"):
            result = func(*cpu_args, **cpu_kwargs)  # a real shape error raises here, as on CPU
        if writes and args and _is_meta(args[0]):
            _set_value(args[0], cpu_args[0] if all(value_of(t) is not None for t in _metas(args[1:], kwargs)) else None)
            if result is cpu_args[0]:
                result = args[0]
        if tree_flatten(result)[0] and not any(isinstance(leaf, torch.Tensor) for leaf in tree_flatten(result)[0]):
            self._note(f"{self._expression()} taken as {result!r} ({self._reasons(metas, unknown)})")  # torch.equal
        else:
            self._note(f"{_op_name(func)} at {self._at()} sized on representative values ({self._reasons(metas, unknown)})")
        return _to_meta(result)

    def _carry(self, func: Any, name: str, args: tuple, kwargs: dict, result: Any, metas: list[torch.Tensor] | None = None) -> None:
        """Give the result of an op that ran on meta its representative value, when it has one."""
        if metas is None:
            metas = _metas(args, kwargs)
        known = [t for t in metas if value_of(t) is not None]
        if not known and name not in FACTORIES and name not in INDEX_OPS and not writes_first(name):
            return  # nothing to carry (what the checks below conclude, for almost every op of a model)
        if writes_first(name) and args and _is_meta(args[0]):
            if value_of(args[0]) is None:
                return
            if len(known) < len(metas):
                _set_value(args[0], None)  # unknown data written into it: its value is no longer known
                return
            cpu_args, cpu_kwargs = _to_cpu(args, kwargs, True)
            if _run_quietly(func, cpu_args, cpu_kwargs) is not _FAILED:
                _set_value(args[0], cpu_args[0])
            return
        leaves = [result] if isinstance(result, torch.Tensor) else tree_flatten(result)[0]
        results = [leaf for leaf in leaves if _is_meta(leaf)]
        if not results or all(t.numel() > MAX_VALUE_NUMEL for t in results):
            return
        if name in INDEX_OPS and not known:
            self._spread(name, args, kwargs, result)
            return
        if not (known and len(known) == len(metas)) and not (name in FACTORIES and not known):
            return
        cpu_args, cpu_kwargs = _to_cpu(args, kwargs, False)
        values = _run_quietly(func, cpu_args, cpu_kwargs)
        if values is _FAILED:
            return
        for tensor, value in zip(tree_flatten(result)[0], tree_flatten(values)[0]):
            if _is_meta(tensor) and isinstance(value, torch.Tensor):
                _set_value(tensor, value)

    def _spread(self, name: str, args: tuple, kwargs: dict, result: Any) -> None:
        source = args[0] if args and isinstance(args[0], torch.Tensor) else kwargs.get("input")
        if not isinstance(source, torch.Tensor):
            return
        dim = args[2] if name == "topk" and len(args) > 2 else (args[1] if name != "topk" and len(args) > 1 else kwargs.get("dim"))
        if not isinstance(dim, int):
            dim = -1 if name in ("topk", "sort", "argsort", "multinomial") else None
        if isinstance(result, torch.Tensor) and result.dtype == torch.int64:
            indices = result
        elif isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], torch.Tensor):
            indices = result[1]
        else:
            return
        if dim is None:
            _set_value(indices, torch.zeros(indices.shape, dtype=indices.dtype, device="cpu"))
            return
        size = source.shape[dim] if source.dim() else 1
        index_dim = dim if indices.dim() == source.dim() else None
        if index_dim is None:  # the dim was reduced away (argmax(dim)): one pick per row
            _set_value(indices, spread_indices(indices.unsqueeze(-1), size, -1).squeeze(-1))
        else:
            _set_value(indices, spread_indices(indices, size, index_dim))

    # -- Python values ------------------------------------------------------------------------------

    def _scalar(self, name: str, tensor: torch.Tensor) -> Any:
        known = value_of(tensor)
        if known is not None:
            self._note(f"{self._expression()} taken from representative values (indices from topk/argmax/sort spread evenly over their range)")
            return getattr(known, name)()
        if name == "__bool__" or (tensor.dtype == torch.bool and name in ("item", "__index__", "__int__")):
            key = self._key()
            side = self.branch(key)
            expression = self._expression()
            if expression.startswith("`not "):  # `assert not x.isnan().any()`: the tensor's value, not the negation
                expression = "`" + expression[len("`not "):]
            self._note(f"{expression} taken as {side}")
            return side if name == "__bool__" else getattr(torch.tensor(side, device="cpu"), name)()
        value = getattr(representative(tensor), "tolist" if name == "tolist" else name)()
        shown = "ones" if name == "tolist" else repr(value)
        self._note(f"{self._expression()} taken as {shown} (meta tensors have no values)")
        return value

    # -- notes --------------------------------------------------------------------------------------

    def _key(self) -> str:
        where = self.where()
        return f"{where.path}:{where.line}:{where.column}" if where else "?"

    def _at(self) -> str:
        where = self.where()
        return f"{display_path(where.path)}:{where.line}" if where else "an unknown line"

    def _expression(self) -> str:
        """The source line of the op, as the user wrote it (`x.sum() > 0` of `if x.sum() > 0:`)."""
        where = self.where()
        text = linecache.getline(where.path, where.line).strip() if where else ""
        for keyword in ("if ", "elif ", "while ", "assert "):
            if text.startswith(keyword):
                text = text[len(keyword):]
        text = text.split("  #")[0].strip().rstrip(":")
        if where and linecache.getline(where.path, where.line).strip().startswith("assert "):
            text = text.split(', "')[0].split(", '")[0]  # the assert's message is not the condition
        return f"`{text}` at {self._at()}" if text else f"a value at {self._at()}"

    @staticmethod
    def _reasons(metas: list[torch.Tensor], unknown: list[torch.Tensor]) -> str:
        """Which assumptions sized the result: the masks' and indices' values (a float tensor's data never sizes it)."""
        said = []
        if any(t.dtype == torch.bool for t in unknown):
            said.append("masks taken as True at every other position of their last dim")
        if any(not t.dtype.is_floating_point and t.dtype != torch.bool for t in unknown):
            said.append("unknown integers taken as 1")
        if len(unknown) < len(metas):
            said.append("indices from topk/argmax/sort taken as spread evenly over their range")
        return "; ".join(said) or "unknown values taken as 1"

    def _note(self, text: str) -> None:
        where = self.where()
        key = (where.path, where.line) if where else (text,)
        self.notes.setdefault(key, text)

    def notes_list(self) -> list[str]:
        return list(self.notes.values())


_FAILED = object()


def _run_quietly(func: Any, args: tuple, kwargs: dict) -> Any:
    try:
        with torch.device("cpu"):
            return func(*args, **kwargs)
    except Exception:
        return _FAILED


def _masked(index: Any) -> bool:
    """An index that holds a boolean meta tensor (`x[mask]`, `x[:, mask]`)."""
    return any(_is_meta(leaf) and leaf.dtype == torch.bool for leaf in tree_flatten(index)[0])


def _op_name(func: Any) -> str:
    name = _name(func)
    if name in ("__getitem__", "getitem"):
        return "indexing"
    if name in SETITEM:
        return "indexed assignment"
    return f"`{name.strip('_')}`"


def _to_cpu(args: tuple, kwargs: dict, writes: bool) -> tuple[tuple, dict]:
    """Representative CPU values for the meta tensors of a call; the one an in-place op writes is a copy."""
    convert = lambda value: representative(value) if _is_meta(value) else value  # noqa: E731
    cpu_args, cpu_kwargs = tree_map(convert, (args, kwargs))
    if writes and cpu_args and isinstance(cpu_args[0], torch.Tensor) and _is_meta(args[0]):
        cpu_args = (cpu_args[0].clone(), *cpu_args[1:])
    return cpu_args, cpu_kwargs


def _to_meta(result: Any) -> Any:
    def convert(value: Any) -> Any:
        if not isinstance(value, torch.Tensor) or value.device.type == "meta":
            return value
        meta = torch.empty(value.shape, dtype=value.dtype, device="meta")
        _set_value(meta, value)
        return meta

    return tree_map(convert, result)


def is_data_limitation(error: Exception) -> bool:
    """torch cannot run the op on meta tensors (no values, or no meta kernel)."""
    text = str(error)
    return (
        isinstance(error, NotImplementedError) or "meta tensor" in text or "'Meta' backend" in text
        or "data-dependent" in text
        or "TorchScript interpreter" in text  # a compiled module that stayed on the CPU (see load._to_meta)
    )


def merge_notes(*groups: list[str]) -> list[str]:
    return list(dict.fromkeys(note for group in groups for note in group))
