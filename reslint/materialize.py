"""Build a model whose constructor reads weight values, making real only the weights it reads.

Some constructors compute with their own weights (`self.scale = float(self.proj.weight.abs().max())`).
On the meta device that read fails, and building the whole model on the CPU instead can take gigabytes
for weights nothing reads. Under `reading_weights(budget)`:

- every parameter and buffer is moved to meta as it is registered (as `load` does for meta builds);
- ops on those meta weights are recorded: in-place ones (`nn.init.normal_(w)`) into the weight's own
  history, others as the recipe of their result;
- when an op cannot run on them (it needs values: `float()`, `.tolist()`, mixing with CPU tensors),
  the meta tensors it reads are made real on the CPU, each weight from its initial value (kept when
  small) and its replayed history, each derived tensor by re-running its recipe, and the op runs again;
- every byte made real counts against `budget`; past it the build stops with a one-line error.

After the build the model is moved to meta as usual, so what was made real is freed again.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map

from reslint.config import machine_memory
from reslint.errors import TargetError
from reslint.trace.ops import tensor_method_name

KEEP_INITIAL_BYTES = 1 << 20  # a weight created on the CPU keeps its values when this small


class BuildMemoryError(TargetError):
    """Building the model would take more memory than --max-build-memory allows."""


_budget: int | None = None  # --max-build-memory, set once per process (each target runs in its own)


def set_build_budget(limit: int | None) -> None:
    global _budget
    _budget = limit


def build_budget() -> int:
    """--max-build-memory, else half the machine's RAM: a build may use real memory, never enough to take the machine down."""
    return _budget if _budget is not None else machine_memory() // 2


def format_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000:
            return f"{count:.3g} {unit}"
        count /= 1000
    return f"{count:.3g} TB"


@dataclass
class _Weight:
    tensor: torch.Tensor  # the meta parameter or buffer as registered
    owners: list[tuple[nn.Module, str, str]]  # (module, attribute, "parameter" | "buffer")
    initial: torch.Tensor | None  # its CPU values, when small
    history: list[tuple[Callable, tuple, dict]] = field(default_factory=list)


@dataclass
class _Derived:
    tensor: torch.Tensor
    recipe: tuple[Callable, tuple, dict]


class LazyWeights(TorchFunctionMode):
    """Records ops on meta weights during a build; makes the ones an op reads real, within a budget."""

    def __init__(self, budget: int):
        super().__init__()
        self.budget = budget
        self.spent = 0
        self.origins: dict[int, _Weight | _Derived] = {}
        self.real: dict[int, torch.Tensor] = {}  # id of a meta tensor -> its CPU twin
        self.made_real: list[str] = []  # "proj.weight (1.2 MB)", for the note

    # -- registration --------------------------------------------------------------------------------

    def registered(self, owner: nn.Module, name: str, tensor: torch.Tensor | None, kind: str) -> torch.Tensor | None:
        """The meta tensor to register in place of `tensor`, remembering where it lives."""
        if tensor is None:
            return None
        known = self.origins.get(id(tensor))
        if isinstance(known, _Weight):  # a tied weight registered a second time
            known.owners.append((owner, name, kind))
            return tensor
        if tensor.device.type == "meta":
            meta, initial = tensor, None
        else:
            initial = tensor.detach().clone() if tensor.numel() * tensor.element_size() <= KEEP_INITIAL_BYTES else None
            meta = tensor.detach().to("meta")
            if isinstance(tensor, nn.Parameter):
                meta = nn.Parameter(meta, requires_grad=tensor.requires_grad)
        self.origins[id(meta)] = _Weight(meta, [(owner, name, kind)], initial)
        return meta

    # -- recording -----------------------------------------------------------------------------------

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        try:
            result = func(*args, **kwargs)
        except Exception:
            if not self._reads_lazy((args, kwargs)):
                raise
            args, kwargs = tree_map(self._realize_value, (args, kwargs))
            with torch.device("cpu"):
                return func(*args, **kwargs)
        self._record(func, args, kwargs, result)
        return result

    def _reads_lazy(self, values: Any) -> bool:
        return any(isinstance(v, torch.Tensor) and id(v) in self.origins for v in tree_flatten(values)[0])

    def _record(self, func, args: tuple, kwargs: dict, result: Any) -> None:
        inputs = [v for v in tree_flatten((args, kwargs))[0] if isinstance(v, torch.Tensor)]
        if not all(id(v) in self.origins for v in inputs):
            return  # reads a tensor made elsewhere: nothing to replay it from
        if not inputs and not _makes_meta(result):
            return
        first = inputs[0] if inputs else None  # nn.init functions may pass the tensor as a keyword
        name = tensor_method_name(func) or getattr(func, "__name__", "")
        if isinstance(first, torch.Tensor) and name.endswith("_") and not name.endswith("__"):
            origin = self.origins.get(id(first))
            if isinstance(origin, _Weight):  # nn.init.normal_(w), w.fill_(0), w.copy_(...)
                origin.history.append((func, args, kwargs))
                return
        for value in tree_flatten(result)[0]:
            if isinstance(value, torch.Tensor) and value.device.type == "meta" and id(value) not in self.origins:
                self.origins[id(value)] = _Derived(value, (func, args, kwargs))

    # -- making real ---------------------------------------------------------------------------------

    def _realize_value(self, value: Any) -> Any:
        if isinstance(value, torch.Tensor) and id(value) in self.origins:
            return self.realize(value)
        return value

    def realize(self, tensor: torch.Tensor) -> torch.Tensor:
        key = id(tensor)
        if key in self.real:
            return self.real[key]
        origin = self.origins[key]
        if isinstance(origin, _Derived):
            func, args, kwargs = origin.recipe
            args, kwargs = tree_map(self._realize_value, (args, kwargs))
            with torch.no_grad(), torch.device("cpu"):  # a factory made under the build's meta device
                value = func(*args, **kwargs)
            value = next((v for v in tree_flatten(value)[0] if isinstance(v, torch.Tensor)), value) if not isinstance(value, torch.Tensor) else value
        else:
            value = self._realize_weight(origin)
        self.real[key] = value
        return value

    def _realize_weight(self, weight: _Weight) -> torch.Tensor:
        meta = weight.tensor
        size = meta.numel() * meta.element_size()
        owner, name, _ = weight.owners[0]
        label = f"{type(owner).__name__}.{name}"
        if self.spent + size > self.budget:
            raise BuildMemoryError(
                f"the constructor reads the values of {label} ({format_bytes(size)}), which would take the build past "
                f"--max-build-memory ({format_bytes(self.budget)}); raise the limit or build the model with smaller sizes"
            )
        self.spent += size
        with torch.no_grad(), torch.device("cpu"):
            if weight.initial is not None:
                value = weight.initial.clone()
            else:  # values nobody kept: random, so that a scale computed from them is not 0
                value = torch.empty(meta.shape, dtype=meta.dtype)
                if value.is_floating_point():
                    value.normal_()
                else:
                    value.zero_()
            for func, args, kwargs in weight.history:
                args, kwargs = tree_map(lambda v: value if v is meta else self._realize_value(v), (args, kwargs))
                func(*args, **kwargs)
        real = nn.Parameter(value, requires_grad=meta.requires_grad) if isinstance(meta, nn.Parameter) else value
        for module, attribute, kind in weight.owners:
            (module._parameters if kind == "parameter" else module._buffers)[attribute] = real
        self.made_real.append(f"{label} ({format_bytes(size)})")
        return real


def _makes_meta(result: Any) -> bool:
    return any(isinstance(v, torch.Tensor) and v.device.type == "meta" for v in tree_flatten(result)[0])


@contextlib.contextmanager
def reading_weights(budget: int) -> Iterator[LazyWeights]:
    """Build on meta, making real on the CPU only the tensors the constructor reads values of.

    Tensors made by factories (`torch.linspace(0, 0.1, depth)`) are remade on the CPU from their call
    when read, so the values are exact; weights start from their kept initial value, or random values.
    """
    lazy = LazyWeights(budget)
    register_parameter = nn.Module.register_parameter
    register_buffer = nn.Module.register_buffer

    def lazy_parameter(self, name, param):
        register_parameter(self, name, lazy.registered(self, name, param, "parameter"))

    def lazy_buffer(self, name, tensor, persistent=True):
        register_buffer(self, name, lazy.registered(self, name, tensor, "buffer"), persistent)

    nn.Module.register_parameter = lazy_parameter
    nn.Module.register_buffer = lazy_buffer
    try:
        with torch.device("meta"), lazy:
            yield lazy
    finally:
        nn.Module.register_parameter = register_parameter
        nn.Module.register_buffer = register_buffer


class AllocationBudget(TorchFunctionMode):
    """Counts the CPU memory ops allocate during a full CPU build, and stops the build past a budget."""

    def __init__(self, budget: int):
        super().__init__()
        self.budget = budget
        self.spent = 0
        self._storages: set[int] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        for value in tree_flatten(result)[0]:
            if isinstance(value, torch.Tensor) and value.device.type == "cpu":
                storage = value.untyped_storage()
                if storage.data_ptr() not in self._storages:
                    self._storages.add(storage.data_ptr())
                    self.spent += storage.nbytes()
        if self.spent > self.budget:
            raise BuildMemoryError(
                f"building it on the CPU took more than --max-build-memory ({format_bytes(self.budget)}); "
                "build the model with smaller sizes in the target, or raise the limit"
            )
        return result


@contextlib.contextmanager
def bounded_cpu_build(budget: int) -> Iterator[None]:
    with AllocationBudget(budget):
        yield
