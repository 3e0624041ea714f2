"""Size fixes: the change a maintainer makes to the layer or call that changed a size.

Before any new layer, the smallest edit of the user's own code that makes a join line up:
  ceil-mode-pool  a pooling shortcut that floors an odd size (ResNet-D / XResNet avg-pool shortcuts)
  repad-pool      a pool that lost its `padding=k//2` (`nn.MaxPool2d(3, 2)` instead of `(3, 2, 1)`)
  repad-conv      a conv whose padding does not match its kernel and dilation (`padding=dilation`)
  fix-pad         an `F.pad` call with the wrong amounts or its axes swapped (option-A shortcuts)
  permute-back    a channels-last transform that is not permuted back before the add (ConvNeXt)
  crop            a causal conv (padding k-1) whose output is not cropped to the input length
Layer fixes (the first three) print the layer's constructor; the others rewrite the user's statement
(`Fix.line`..`Fix.end_line`) from its own expressions. Each is validated like every other fix.
"""

from __future__ import annotations

import ast
import itertools
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.fx as fx
from torch import nn

from reslint import fix_source
from reslint.findings import Fix
from reslint.fix_source import Statement
from reslint.layers import LayerSpec
from reslint.trace.propagate import Override

POOL_FUNCTIONS = {"max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d"}
# Positions of padding and ceil_mode in the functional pools' signatures, after the input.
_POOL_POSITIONS = {"max": {"padding": 3, "ceil_mode": 5}, "avg": {"padding": 3, "ceil_mode": 4}}
NOT_CHANNELS = {"spatial", "sequence", "batch", "heads"}


@dataclass
class Candidate:
    fix: Fix
    overrides: dict[fx.Node, Override]
    statement: Statement | None = None  # for a fix that rewrites a statement: checked to be pasteable
    size_fix: bool = False  # changes the layer that changed a size: may line the join up at either side's shape


class SizeFixes:
    """Size-fix candidates for a join, in the order a maintainer would try them."""

    def __init__(self, finder):
        self.finder = finder
        self.prop = finder.prop

    def shape(self, node: fx.Node) -> tuple[int, ...] | None:
        return self.finder._shape(node)

    def for_add(self, join, skip: tuple[int, ...], transform: tuple[int, ...]) -> Iterator[Candidate]:
        if len(skip) != len(transform):
            return
        yield from self.permute_back(join, skip, transform)
        # The skip's own layers first (when both would do, the transform carries the block's design).
        for path, target in ((join.skip_path, transform), (join.transform_path, skip)):
            yield from self.for_path(join, path, target)

    def for_path(self, join, path: list[fx.Node], target: tuple[int, ...]) -> Iterator[Candidate]:
        end = self.shape(path[-1]) if path else None
        if end is None or len(end) != len(target) or end == target:
            return
        differing = [d for d, (a, b) in enumerate(zip(end, target)) if a != b]
        for node in reversed(path):
            yield from self.pad_call(node, path, target)
        if len(end) < 3 or 1 in differing or 0 in differing:
            return  # the layers below change spatial sizes only
        for node in reversed(path):
            module = self.prop.module(node)
            if isinstance(module, nn.modules.conv._ConvNd) and not isinstance(module, nn.modules.conv._ConvTransposeNd):
                yield from self.conv_size(join, node, module, differing)
            elif isinstance(module, (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)):
                yield from self.pool_module(node, module)
            elif _function_name(node) in POOL_FUNCTIONS:
                yield from self.pool_call(node)

    # -- pooling ----------------------------------------------------------------------------------

    def pool_module(self, node: fx.Node, pool: nn.Module) -> Iterator[Candidate]:
        dims = int(type(pool).__name__[-2])
        kernel = _tuple(pool.kernel_size, dims)
        padding = _tuple(pool.padding, dims)
        if all(p == 0 for p in padding) and all(k % 2 == 1 and k > 1 for k in kernel):
            wanted = _scalar(tuple(k // 2 for k in kernel))
            yield self._module_candidate(node, pool, _pool_spec(pool, padding=wanted), "repad-pool",
                                         f"padding={wanted} (kernel {_scalar(kernel)}) keeps the size the other side has")
        if not pool.ceil_mode:
            yield self._module_candidate(node, pool, _pool_spec(pool, ceil_mode=True), "ceil-mode-pool",
                                         "ceil_mode=True keeps the odd row and column, as the strided conv it is added to does")

    def pool_call(self, node: fx.Node) -> Iterator[Candidate]:
        statement = fix_source.statement_of(node)
        name = _function_name(node)
        kind = "max" if name.startswith("max") else "avg"
        signature = ["kernel_size", "stride", "padding"] + (["dilation", "ceil_mode"] if kind == "max" else ["ceil_mode"])
        bound = dict(zip(signature, node.args[1:]))
        bound.update(node.kwargs)
        kernel = bound.get("kernel_size")
        kernels = kernel if isinstance(kernel, (tuple, list)) else (kernel,)
        changes = []
        if not bound.get("padding", 0) and all(isinstance(k, int) and k % 2 == 1 and k > 1 for k in kernels):
            wanted = kernels[0] // 2 if len(set(kernels)) == 1 else tuple(k // 2 for k in kernels)
            changes.append(("padding", wanted, "repad-pool", f"padding={wanted} keeps the size the other side has"))
        if not bound.get("ceil_mode", False):
            changes.append(("ceil_mode", True, "ceil-mode-pool", "ceil_mode=True keeps the odd row and column"))
        for keyword, value, kind_name, why in changes:
            code = _rewrite_call(statement, name, _POOL_POSITIONS[kind][keyword], keyword, value)
            if code is None:
                continue
            function = node.target

            def pooled(args, kwargs, keyword=keyword, value=value, position=_POOL_POSITIONS[kind][keyword], function=function):
                args = list(args)
                if position < len(args):
                    args[position] = value
                    return function(*args, **kwargs)
                return function(*args, **{**kwargs, keyword: value})

            fix = Fix(kind_name, node.meta.get("module_path", ""), code, False, f"{why}: {code}",
                      line=statement.line, end_line=statement.end_line)
            yield Candidate(fix, {node: pooled}, statement, size_fix=True)

    # -- convs: padding from kernel and dilation, and the crop of a causal conv ---------------------------

    def conv_size(self, join, node: fx.Node, conv: nn.modules.conv._ConvNd, differing: list[int]) -> Iterator[Candidate]:
        if not isinstance(conv.padding, tuple) or conv.padding_mode != "zeros":
            return
        natural = tuple(d * (k - 1) // 2 for k, d in zip(conv.kernel_size, conv.dilation))
        odd = all(k % 2 == 1 for k in conv.kernel_size)
        causal = all(p == d * (k - 1) and k > 1 for p, k, d in zip(conv.padding, conv.kernel_size, conv.dilation))
        layer_in, layer_out = self.shape(node.all_input_nodes[0]) if node.all_input_nodes else None, self.shape(node)
        grew = layer_in is not None and layer_out is not None and len(layer_in) == len(layer_out) and any(
            o > i for i, o in zip(layer_in[2:], layer_out[2:])
        )
        repad = None
        if odd and tuple(conv.padding) != natural:
            wanted = _scalar(natural)
            why = (f"padding={wanted} (dilation * (kernel - 1) // 2) keeps the size for kernel {_scalar(conv.kernel_size)}"
                   + (f", dilation {_scalar(conv.dilation)}" if any(d != 1 for d in conv.dilation) else ""))
            repad = self._module_candidate(node, conv, _conv_spec(conv, padding=wanted), "repad-conv", why)
        crops = list(self.crop(join, node, layer_in, layer_out)) if grew else []
        if causal and conv.stride == (1,) * len(conv.stride):
            yield from crops  # a causal conv pads k-1 on purpose: the fix is the crop after it
            if repad is not None:
                yield repad
        else:
            if repad is not None:
                yield repad
            yield from crops

    def crop(self, join, node: fx.Node, layer_in: tuple, layer_out: tuple) -> Iterator[Candidate]:
        """Crop the conv's output to its input length, on the conv's own line (`self.conv(x)[..., :x.shape[-1]]`)."""
        dims = [d for d in range(2, len(layer_out)) if layer_out[d] > layer_in[d]]
        statement = fix_source.statement_of(node)
        if statement is None:
            return
        owner = node.meta.get("module_path", "")
        called = str(node.target)[len(owner) + 1 :] if owner else str(node.target)  # as `self.<called>` in the owner
        call = next((c for c in fix_source.calls(statement.node) if fix_source.module_call_path(c) == called), None)
        if call is None or not call.args or not fix_source.is_simple(call.args[0]):
            return
        source = ast.unparse(call.args[0])
        rank = len(layer_out)
        cropped = ast.Subscript(value=_copy_expr(call), slice=_crop_slice(rank, dims, source), ctx=ast.Load())
        _replace(statement.node, call, cropped)
        code = fix_source.statement_code(statement.node)

        def crop_output(args, kwargs):
            out = self.prop._run_op(node, args, kwargs)
            index = tuple(slice(0, args[0].shape[d]) if d in dims else slice(None) for d in range(rank))
            return out[index]

        fix = Fix("crop", node.meta.get("module_path", ""), code, False,
                  f"{node.target} pads both ends (a causal conv): crop its output to the input length: {code}",
                  line=statement.line, end_line=statement.end_line)
        yield Candidate(fix, {node: crop_output}, statement, size_fix=True)

    # -- F.pad -------------------------------------------------------------------------------------------

    def pad_call(self, node: fx.Node, path: list[fx.Node], target: tuple[int, ...]) -> Iterator[Candidate]:
        if _function_name(node) != "pad" or node.op != "call_function" or not node.args:
            return
        pad = node.args[1] if len(node.args) > 1 else node.kwargs.get("pad")
        before = self.shape(node.args[0]) if isinstance(node.args[0], fx.Node) else None
        after = self.shape(node)
        if not isinstance(pad, (tuple, list)) or not all(isinstance(p, int) for p in pad) or before is None or after is None:
            return
        if after != self.shape(path[-1]) or len(after) != len(target):
            return  # what comes after the pad changes the shape: the amount is not read off the join
        pairs = [(pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)]
        padded_dims = [len(before) - 1 - i for i in range(len(pairs))]
        if any(before[d] != target[d] for d in range(len(before)) if d not in padded_dims):
            return
        needed = [target[d] - before[d] for d in padded_dims]
        new_pairs = None
        for order in itertools.permutations(range(len(pairs))):
            if list(order) != list(range(len(pairs))) and all(sum(pairs[o]) == n for o, n in zip(order, needed)):
                new_pairs, kind, why = [pairs[o] for o in order], "fix-pad", "its axes are swapped"
                break
        if new_pairs is None:
            new_pairs = [_resplit(pair, n) for pair, n in zip(pairs, needed)]
            if any(p is None for p in new_pairs) or new_pairs == pairs:
                return
            kind, why = "fix-pad", "it pads by the wrong amount"
        new_pad = tuple(v for pair in new_pairs for v in pair)
        statement = fix_source.statement_of(node)
        code = _rewrite_pad(statement, list(pad), list(new_pad)) if statement is not None else None
        if code is None:
            return

        def padded(args, kwargs):
            args = list(args)
            if len(args) > 1:
                args[1] = new_pad
            else:
                kwargs = {**kwargs, "pad": new_pad}
            return node.target(*args, **kwargs)

        fix = Fix(kind, node.meta.get("module_path", ""), code, False,
                  f"the pad call makes {list(after)} where {list(target)} is needed: {why}: {code}",
                  line=statement.line, end_line=statement.end_line)
        yield Candidate(fix, {node: padded}, statement, size_fix=True)

    # -- a missing permute back ------------------------------------------------------------------------

    def permute_back(self, join, skip: tuple[int, ...], transform: tuple[int, ...]) -> Iterator[Candidate]:
        if skip == transform or sorted(skip) != sorted(transform) or len(skip) > 6:
            return
        order = None
        for node in reversed(join.transform_path):
            dims = _permute_dims(node, len(transform))
            if dims is not None:
                inverse = tuple(sorted(range(len(dims)), key=dims.__getitem__))
                if tuple(transform[i] for i in inverse) == skip:
                    order = inverse
                break
        if order is None:
            options = [p for p in itertools.permutations(range(len(skip))) if tuple(transform[i] for i in p) == skip]
            if len(options) != 1:
                return
            order = options[0]
        statement = fix_source.statement_of(join.node)
        found = fix_source.add_operands(statement.node) if statement is not None else None
        position = _operand_position(join.node, join.transform)
        if found is None or position is None:
            return
        holder, *fields = found
        operand = fix_source.get_field(holder, fields[position])
        permuted = fix_source.expression(f"({ast.unparse(operand)}).permute{order}")
        if isinstance(holder, ast.AugAssign) and fields[position] == "target":  # `out += x` -> `out = out.permute(..) + x`
            rewritten = ast.Assign(targets=[holder.target], value=ast.BinOp(permuted, ast.Add(), holder.value), lineno=0)
            if holder is statement.node:
                statement.node = rewritten
            else:
                _replace(statement.node, holder, rewritten)
        else:
            fix_source.set_field(holder, fields[position], permuted)
        code = fix_source.statement_code(statement.node)
        node, run_op = join.node, self.prop._run_op

        def add_permuted(args, kwargs):
            new_args = tuple(v.permute(*order) if a is join.transform else v for a, v in zip(node.args, args))
            return run_op(node, new_args, kwargs)

        fix = Fix("permute-back", node.meta.get("module_path", ""), code, False,
                  f"the transform is still permuted ({list(transform)}): permute it back with .permute{order} before the add: {code}",
                  line=statement.line, end_line=statement.end_line)
        yield Candidate(fix, {node: add_permuted}, statement)

    # -- helpers ------------------------------------------------------------------------------------------

    def _module_candidate(self, node: fx.Node, module: nn.Module, spec: LayerSpec, kind: str, why: str) -> Candidate | None:
        try:
            built = spec.build()
        except Exception:
            return None
        described = f"{node.target}: {type(module).__name__}({module.extra_repr()}) should be {spec.code()}: {why}"
        fix = Fix(kind, str(node.target), spec.code(), False, described)
        return Candidate(fix, {node: lambda args, kwargs: built(*args, **kwargs)}, size_fix=True)


def projection_allowed(roles: tuple[str, ...] | list[str] | None, dims: list[int]) -> bool:
    """A projection (a 1x1 conv or a Linear) may only change channel or feature dims."""
    if not roles:
        return True
    return not any(0 <= d < len(roles) and roles[d] in NOT_CHANNELS for d in dims)


# -- module specs -------------------------------------------------------------------------------------------


def _conv_spec(conv: nn.modules.conv._ConvNd, **changes: Any) -> LayerSpec:
    kwargs: dict[str, Any] = {"kernel_size": _scalar(conv.kernel_size)}
    settings = {"stride": (_scalar(conv.stride), 1), "padding": (_scalar(conv.padding), 0),
                "dilation": (_scalar(conv.dilation), 1), "groups": (conv.groups, 1)}
    for name, (value, default) in settings.items():
        value = changes.get(name, value)
        if value != default:
            kwargs[name] = value
    if conv.bias is None:
        kwargs["bias"] = False
    return LayerSpec(type(conv).__name__, (conv.in_channels, conv.out_channels), kwargs)


def _pool_spec(pool: nn.Module, **changes: Any) -> LayerSpec:
    name = type(pool).__name__
    kwargs: dict[str, Any] = {}
    stride = _scalar(pool.stride) if pool.stride is not None else None
    if stride is not None and stride != _scalar(pool.kernel_size):
        kwargs["stride"] = stride
    settings = {"padding": (_scalar(pool.padding), 0), "ceil_mode": (pool.ceil_mode, False)}
    if isinstance(pool, nn.modules.pooling._MaxPoolNd):
        settings["dilation"] = (_scalar(pool.dilation), 1)
    else:
        settings["count_include_pad"] = (pool.count_include_pad, True)
    for key, (value, default) in settings.items():
        value = changes.get(key, value)
        if value != default:
            kwargs[key] = value
    return LayerSpec(name, (_scalar(pool.kernel_size),), kwargs)


def _scalar(value: Any) -> Any:
    if isinstance(value, (tuple, list)) and len(set(value)) == 1:
        return value[0]
    return tuple(value) if isinstance(value, list) else value


def _tuple(value: Any, dims: int) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * dims


# -- source rewriting -----------------------------------------------------------------------------------------


def _function_name(node: fx.Node) -> str:
    if node.op != "call_function":
        return ""
    return getattr(node.target, "__name__", "")


def _permute_dims(node: fx.Node, rank: int) -> tuple[int, ...] | None:
    """The dims of a permute (or the swap of a transpose) on the path, normalized to the rank."""
    from reslint.trace.ops import method_name

    name = method_name(node) or _function_name(node)
    args = list(node.args[1:])
    if name == "permute":
        dims = args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args
        if len(dims) == rank and all(isinstance(d, int) for d in dims):
            return tuple(d % rank for d in dims)
    if name in ("transpose", "swapaxes") and len(args) == 2 and all(isinstance(d, int) for d in args):
        dims = list(range(rank))
        a, b = args[0] % rank, args[1] % rank
        dims[a], dims[b] = dims[b], dims[a]
        return tuple(dims)
    return None


def _operand_position(node: fx.Node, operand: fx.Node) -> int | None:
    args = [a for a in node.args[:2]]
    if len(args) < 2 and "other" in node.kwargs:
        args.append(node.kwargs["other"])
    return args.index(operand) if operand in args else None


def _crop_slice(rank: int, dims: list[int], source: str) -> ast.expr:
    """`..., :x.shape[-1]` for the last dim; explicit slices otherwise."""
    if dims == [rank - 1]:
        text = f"_[..., :{source}.shape[-1]]"
    else:
        text = "_[" + ", ".join(f":{source}.shape[{d}]" if d in dims else ":" for d in range(max(dims) + 1)) + "]"
    return ast.parse(text, mode="eval").body.slice


def _copy_expr(expression: ast.expr) -> ast.expr:
    return fix_source.expression(ast.unparse(expression))


def _replace(tree: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, field, new)
                return
            if isinstance(value, list) and any(item is old for item in value):
                value[[i for i, item in enumerate(value) if item is old][0]] = new
                return


def _rewrite_call(statement: Statement | None, name: str, position: int, keyword: str, value: Any) -> str | None:
    """The statement with one argument of the call to `name` set (positionally if given so, else by keyword)."""
    if statement is None:
        return None
    call = next((c for c in fix_source.calls(statement.node) if fix_source.call_name(c) == name), None)
    if call is None:
        return None
    if position < len(call.args):
        call.args[position] = ast.Constant(value) if not isinstance(value, tuple) else fix_source.expression(repr(value))
    else:
        call.keywords = [k for k in call.keywords if k.arg != keyword]
        call.keywords.append(ast.keyword(arg=keyword, value=fix_source.expression(repr(value))))
    return fix_source.statement_code(statement.node)


def _rewrite_pad(statement: Statement, old: list[int], new: list[int]) -> str | None:
    """The statement with the pad call's amounts changed, keeping the user's expressions where it can."""
    call = next((c for c in fix_source.calls(statement.node) if fix_source.call_name(c) == "pad"), None)
    if call is None:
        return None
    amounts = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "pad"), None)
    if isinstance(amounts, (ast.Tuple, ast.List)) and len(amounts.elts) == len(old):
        elements = list(amounts.elts)
        by_value: dict[int, ast.expr] = {}
        for element, value in zip(elements, old):
            by_value.setdefault(value, element)
        rewritten = []
        for i, (element, was, wanted) in enumerate(zip(elements, old, new)):
            if was == wanted:
                rewritten.append(element)
            elif wanted in by_value and _pure(by_value[wanted]):  # a swap: the user's expression for that amount
                rewritten.append(_copy_expr(by_value[wanted]))
            else:
                rewritten.append(_rescaled(element, was, wanted))
        amounts.elts = rewritten
    else:
        replacement = fix_source.expression(repr(tuple(new)))
        if len(call.args) > 1:
            call.args[1] = replacement
        else:
            for k in call.keywords:
                if k.arg == "pad":
                    k.value = replacement
    return fix_source.statement_code(statement.node)


def _pure(expression: ast.expr) -> bool:
    return not any(isinstance(n, ast.Call) for n in ast.walk(expression))


def _rescaled(element: ast.expr, was: int, wanted: int) -> ast.expr:
    """`planes // 4` for `planes // 2` when 16 should be 8: the user's expression with a new constant."""
    if isinstance(element, ast.BinOp) and isinstance(element.right, ast.Constant) and isinstance(element.right.value, int) and _pure(element):
        k = element.right.value
        if isinstance(element.op, ast.FloorDiv) and k > 0 and wanted > 0 and (was * k) % wanted == 0:
            return ast.BinOp(left=_copy_expr(element.left), op=ast.FloorDiv(), right=ast.Constant((was * k) // wanted))
        base = was // k if k > 0 and was % k == 0 else 0  # the value of what the constant multiplies
        if isinstance(element.op, ast.Mult) and base > 0 and wanted % base == 0:
            return ast.BinOp(left=_copy_expr(element.left), op=ast.Mult(), right=ast.Constant(wanted // base))
    return ast.Constant(wanted)


def _resplit(pair: tuple[int, int], total: int) -> tuple[int, int] | None:
    left, right = pair
    if left + right == total:
        return pair
    if total < 0:
        return None
    if left == right and total % 2 == 0:
        return (total // 2, total // 2)
    return (left, total - left) if total - left >= 0 else (0, total)
