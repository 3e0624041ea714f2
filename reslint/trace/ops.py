"""What an fx node computes, independent of the frontend that recorded it.

The fx frontend records `x + y` as `operator.add` and `x.add_(y)` as call_method "add_"; the eager
frontend records the Tensor method itself (`TensorBase.add`). These helpers see through both.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.fx as fx

ADD_NAMES = {"add", "add_", "__add__", "__iadd__", "__radd__"}
ELEMENTWISE_NAMES = ADD_NAMES | {
    "sub", "sub_", "__sub__", "__isub__", "__rsub__", "mul", "mul_", "__mul__", "__imul__", "__rmul__",
    "div", "div_", "__truediv__", "__itruediv__", "where",
}
ADD_FUNCTIONS = {operator.add, operator.iadd, torch.add}
ELEMENTWISE_FUNCTIONS = ADD_FUNCTIONS | {
    operator.sub, operator.isub, operator.mul, operator.imul, operator.truediv, torch.sub, torch.mul, torch.div, torch.where,
}
CAT_FUNCTIONS = {torch.cat, torch.concat, torch.concatenate}

# Ops that read only a tensor's shape, dtype or device, never its values: their result carries no data.
METADATA_NAMES = {
    "new_zeros", "new_ones", "new_full", "new_empty", "new_tensor", "zeros_like", "ones_like", "empty_like",
    "full_like", "rand_like", "randn_like", "randint_like", "size", "dim", "numel",
}


def reads_only_metadata(node: fx.Node) -> bool:
    if node.op in ("call_method", "call_function"):
        name = node.target if node.op == "call_method" else (tensor_method_name(node.target) or getattr(node.target, "__name__", ""))
        return name in METADATA_NAMES
    return False


def tensor_method_name(target: Any) -> str | None:
    """'add' for `torch.Tensor.add` (as the eager frontend records it), else None."""
    owner = getattr(target, "__objclass__", None)
    if owner is torch._C.TensorBase or owner is torch.Tensor:
        return target.__name__
    return None


def method_name(node: fx.Node) -> str | None:
    if node.op == "call_method":
        return node.target
    if node.op == "call_function":
        return tensor_method_name(node.target)
    return None


def is_inplace_method(name: str | None) -> bool:
    """`add_`, `relu_`, `__iadd__`: a Tensor method that writes into its first argument."""
    if not name or name == "requires_grad_":
        return False
    return (name.endswith("_") and not name.startswith("_")) or (name.startswith("__i") and name.endswith("__"))


def is_add(node: fx.Node) -> bool:
    return (node.op == "call_function" and node.target in ADD_FUNCTIONS) or method_name(node) in ADD_NAMES


def is_elementwise(node: fx.Node) -> bool:
    return (node.op == "call_function" and node.target in ELEMENTWISE_FUNCTIONS) or method_name(node) in ELEMENTWISE_NAMES


def is_cat(node: fx.Node) -> bool:
    return node.op == "call_function" and node.target in CAT_FUNCTIONS


def cat_tensors_and_dim(args: tuple, kwargs: dict) -> tuple[Any, int]:
    tensors = args[0] if args else kwargs.get("tensors", ())
    dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
    return tensors, dim
