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
import copy
import itertools
import math
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
        # Causal convs pad k-1 on purpose: the fix is the crop after them. Their length may sit in any
        # dim of the join (a token layout puts it in dim 1), so it is matched by size.
        wanted = {target[d] for d in differing}
        grown = [n for n in path if any(self.shape(n.all_input_nodes[0])[d] in wanted for d in causal_growth(self, n))]
        if grown:
            yield from self.crops(grown)
            yield from self.causal_repads(grown)
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
        """A conv whose padding does not match its kernel and dilation: the padding that keeps the size.
        A causal conv (padding d*(k-1), stride 1) pads on purpose: its fix is the crop (see crops)."""
        if not isinstance(conv.padding, tuple) or conv.padding_mode != "zeros" or causal_growth(self, node):
            return
        natural = tuple(d * (k - 1) // 2 for k, d in zip(conv.kernel_size, conv.dilation))
        odd = all(k % 2 == 1 for k in conv.kernel_size)
        if odd and tuple(conv.padding) != natural:
            wanted = _scalar(natural)
            why = (f"padding={wanted} (dilation * (kernel - 1) // 2) keeps the size for kernel {_scalar(conv.kernel_size)}"
                   + (f", dilation {_scalar(conv.dilation)}" if any(d != 1 for d in conv.dilation) else ""))
            candidate = self._module_candidate(node, conv, _conv_spec(conv, padding=wanted), "repad-conv", why)
            if candidate is not None:
                yield candidate

    def causal_repads(self, grown: list[fx.Node]) -> Iterator[Candidate]:
        """The non-causal alternative for causal convs, after the crop: padding that keeps the size."""
        for node in grown:
            conv = self.prop.module(node)
            natural = tuple(d * (k - 1) // 2 for k, d in zip(conv.kernel_size, conv.dilation))
            if all(k % 2 == 1 for k in conv.kernel_size):
                candidate = self._module_candidate(node, conv, _conv_spec(conv, padding=_scalar(natural)), "repad-conv",
                                                   "padding=dilation * (kernel - 1) // 2 keeps the size (but is no longer causal)")
                if candidate is not None:
                    yield candidate

    def crops(self, grown: list[fx.Node]) -> Iterator[Candidate]:
        """Crop causal convs' outputs to their input length: all of them at the call that runs them
        (`self.net(x)[..., :x.shape[-1]]`: for stride-1 causal convs with pointwise ops between them,
        cropping the end equals cropping after each conv), else each conv at its own call."""
        seen = set()
        groups = [grown] + ([[n] for n in grown] if len(grown) > 1 else [])
        for group in groups:
            candidate = self.crop(group)
            if candidate is not None and candidate.fix.code not in seen:
                seen.add(candidate.fix.code)
                yield candidate

    def for_failure(self, node: fx.Node, independent: set) -> Iterator[Candidate]:
        """A failing op (`x * F.silu(z)`) whose operand is longer than the other because a causal conv
        upstream of it was not cropped (or was cropped at the wrong end)."""
        operands = [n for n in node.all_input_nodes if self.shape(n) is not None]
        for operand in operands:
            shape = self.shape(operand)
            for other in operands:
                other_shape = self.shape(other)
                if other is operand or len(other_shape) != len(shape):
                    continue
                wanted = {other_shape[d] for d in range(len(shape)) if shape[d] != other_shape[d] and 1 not in (shape[d], other_shape[d])}
                if not wanted:
                    continue
                theirs = _ancestors(other, 200)
                grown = [n for n in sorted(_ancestors(operand, 60) - theirs, key=self.prop.index.__getitem__)
                         if any(self.shape(n.all_input_nodes[0])[d] in wanted for d in causal_growth(self, n))]
                if grown:
                    yield from self.crops(grown)
                    return

    def crop(self, grown: list[fx.Node]) -> Candidate | None:
        statement = fix_source.statement_of(grown[-1])
        if statement is None or any(fix_source.statement_of(n) is None or fix_source.statement_of(n).line != statement.line for n in grown):
            return None
        found = _enclosing_call(statement.node, [str(n.target) for n in grown])
        if found is None:
            return None
        call, prefix = found
        region = self._region(grown, prefix)
        if region is None:
            return None
        first, last = region
        region_in = first.args[0] if first.args and isinstance(first.args[0], fx.Node) else None
        before, after = (self.shape(region_in) if region_in is not None else None), self.shape(last)
        if before is None or after is None or len(before) != len(after):
            return None
        dims = [d for d in range(2, len(after)) if after[d] > before[d]]
        if not dims:
            return None
        lengths = {d: before[d] for d in dims}
        rank = len(after)
        parent = _parent_subscript(statement.node, call)
        existing = self._getitem_after(last, statement) if parent is not None else None
        bindings: list[str] = []
        if parent is not None and existing is not None:
            growth = {d: after[d] - before[d] for d in dims}
            corrected = _corrected_slice(parent.slice, rank, dims, growth) or _padding_slice(call, rank, dims, prefix, grown)
            if corrected is None:
                return None
            parent.slice = corrected
            target_node = existing
        else:
            argument = call.args[0] if call.args else None
            if argument is None:
                return None
            if fix_source.is_simple(argument):
                cut = _crop_slice(rank, dims, ast.unparse(argument))
            else:
                cut = _padding_slice(call, rank, dims, prefix, grown)
                if cut is None:
                    name = fix_source.fresh_name(statement, "h")
                    bindings.append(f"{name} = {ast.unparse(argument)}")
                    call.args[0] = ast.Name(id=name, ctx=ast.Load())
                    cut = _crop_slice(rank, dims, name)
            _replace(statement.node, call, ast.Subscript(value=_copy_expr(call), slice=cut, ctx=ast.Load()))
            target_node = last
        code = "\n".join([*bindings, fix_source.statement_code(statement.node)])
        index = tuple(slice(0, lengths[d]) if d in dims else slice(None) for d in range(rank))
        if target_node is last:
            run_op = self.prop._run_op

            def crop_output(args, kwargs, node=last):
                return run_op(node, args, kwargs)[index]
            override = {last: crop_output}
        else:
            override = {target_node: lambda args, kwargs: args[0][index]}
        what = " and ".join(str(n.target) for n in grown)
        fix = Fix("crop", grown[-1].meta.get("module_path", ""), code, False,
                  f"{what} pad{'s' if len(grown) == 1 else ''} both ends (a causal conv): crop the output to the input length: {code}",
                  line=statement.line, end_line=statement.end_line)
        return Candidate(fix, override, statement, size_fix=True)

    def _region(self, grown: list[fx.Node], prefix: str) -> tuple[fx.Node, fx.Node] | None:
        """The first and last nodes of the call of module `prefix` that runs the grown convs."""
        nodes, index = self.prop.nodes, self.prop.index

        def inside(n: fx.Node) -> bool:
            path = str(n.target) if n.op == "call_module" else n.meta.get("module_path", "")
            return path == prefix or path.startswith(prefix + ".")

        start, end = index[grown[0]], index[grown[-1]]
        while start > 0 and inside(nodes[start - 1]):
            start -= 1
        while end + 1 < len(nodes) and inside(nodes[end + 1]):
            end += 1
        if not all(inside(nodes[i]) for i in range(index[grown[0]], index[grown[-1]] + 1)):
            return None
        return nodes[start], nodes[end]

    def _getitem_after(self, node: fx.Node, statement: Statement) -> fx.Node | None:
        import operator

        for user in node.users:
            source = user.meta.get("source")
            if user.op == "call_function" and user.target is operator.getitem and source and statement.line <= source.line <= statement.end_line:
                return user
        return None

    # -- F.pad -------------------------------------------------------------------------------------------

    def pad_call(self, node: fx.Node, path: list[fx.Node], target: tuple[int, ...]) -> Iterator[Candidate]:
        if _function_name(node) != "pad" or node.op != "call_function" or not node.args:
            return
        pad = node.args[1] if len(node.args) > 1 else node.kwargs.get("pad")
        if isinstance(pad, (tuple, list)):  # amounts computed in forward (`diffX // 2`): their values here
            pad = [self.prop.values.get(p) if isinstance(p, fx.Node) else p for p in pad]
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
        new_pairs, swap = None, None
        for order in itertools.permutations(range(len(pairs))):
            if list(order) != list(range(len(pairs))) and all(sum(pairs[o]) == n for o, n in zip(order, needed)):
                new_pairs, kind, why, swap = [pairs[o] for o in order], "fix-pad", "its axes are swapped", order
                break
        if new_pairs is None:
            new_pairs = [_resplit(pair, n) for pair, n in zip(pairs, needed)]
            if any(p is None for p in new_pairs) or new_pairs == pairs:
                return
            kind, why = "fix-pad", "it pads by the wrong amount"
        new_pad = tuple(v for pair in new_pairs for v in pair)
        statement = fix_source.statement_of(node)
        code = _rewrite_pad(statement, list(pad), list(new_pad), swap) if statement is not None else None
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
        _set_operand(statement, holder, fields[position], permuted)
        code = fix_source.statement_code(statement.node)
        node, run_op = join.node, self.prop._run_op

        def add_permuted(args, kwargs):
            new_args = tuple(v.permute(*order) if a is join.transform else v for a, v in zip(node.args, args))
            return run_op(node, new_args, kwargs)

        fix = Fix("permute-back", node.meta.get("module_path", ""), code, False,
                  f"the transform is still permuted ({list(transform)}): permute it back with .permute{order} before the add: {code}",
                  line=statement.line, end_line=statement.end_line)
        yield Candidate(fix, {node: add_permuted}, statement)

    # -- an operand of the add, resized or pooled like the other -------------------------------------------

    def interpolate_operand(self, join, skip: tuple[int, ...]) -> Candidate | None:
        """An upsampled transform that misses its skip by a row (hourglass, U-Net-style adds): resize it
        to the skip's size at the add (`up1 + F.interpolate(up2, size=up1.shape[2:])`)."""
        transform = self.shape(join.transform)
        if transform is None or len(skip) < 3 or len(skip) != len(transform) or skip[:2] != transform[:2]:
            return None
        statement = fix_source.statement_of(join.node)
        if statement is None:
            return None
        functional = fix_source.functional_prefix(statement)
        written = _rewrite_add_operand(statement, join.node, join.transform, join.skip,
                                       lambda operand, other: f"{functional}.interpolate({operand}, size={other}.shape[2:])")
        if written is None:
            return None
        size = tuple(skip[2:])
        override = self._operand_override(join.node, join.transform, lambda v: nn.functional.interpolate(v, size=size))
        fix = Fix("resize-to-skip", join.node.meta.get("module_path", ""), written, False,
                  f"resize the upsampled tensor to the skip's size before the add: {written}",
                  line=statement.line, end_line=statement.end_line)
        return Candidate(fix, override, statement, size_fix=True)

    def pool_skip(self, join, skip: tuple[int, ...], transform: tuple[int, ...]) -> Candidate | None:
        """The transform downsamples by pooling and the skip does not: pool the skip the same way
        (`self.residual(x) + F.avg_pool2d(self.shortcut(x), 2)`), as the maintainers of pooled
        shortcuts do, rather than a strided conv."""
        if len(skip) < 3 or len(skip) != len(transform) or skip[:2] != transform[:2]:
            return None
        statement = fix_source.statement_of(join.node)
        if statement is None:
            return None
        for node in reversed(join.transform_path):
            module = self.prop.module(node)
            if isinstance(module, (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)):
                pool = lambda value, module=module: module(value)  # noqa: E731
                owner = join.node.meta.get("module_path", "")
                relative = str(node.target)[len(owner) + 1:] if owner and str(node.target).startswith(owner + ".") else (str(node.target) if not owner else None)
                if relative is None:
                    continue
                call_text = "self" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in relative.split(".")) + "({})"
            elif _function_name(node) in POOL_FUNCTIONS:
                pool_statement = fix_source.statement_of(node)
                call = next((c for c in fix_source.calls(pool_statement.node) if fix_source.call_name(c) == _function_name(node)), None) \
                    if pool_statement is not None else None
                if call is None or not call.args:
                    continue
                call.args[0] = ast.Name(id="__SKIP__", ctx=ast.Load())
                call_text = ast.unparse(call).replace("__SKIP__", "{}")
                values = self.prop.values
                args = [values.get(a, a) if isinstance(a, fx.Node) else a for a in node.args[1:]]
                kwargs = {k: values.get(v, v) if isinstance(v, fx.Node) else v for k, v in node.kwargs.items()}
                pool = lambda value, f=node.target, args=args, kwargs=kwargs: f(value, *args, **kwargs)  # noqa: E731
            else:
                continue
            try:
                with torch.device("meta"):
                    pooled = pool(torch.empty(skip))
            except Exception:
                continue
            if tuple(pooled.shape) != tuple(transform):
                continue
            written = _rewrite_add_operand(statement, join.node, join.skip, join.transform, lambda operand, other: call_text.format(operand))
            if written is None:
                return None
            fix = Fix("pool-skip", join.node.meta.get("module_path", ""), written, False,
                      f"the transform downsamples by pooling: pool the skip the same way: {written}",
                      line=statement.line, end_line=statement.end_line)
            return Candidate(fix, self._operand_override(join.node, join.skip, pool), statement)
        return None

    def reshape_back(self, join, skip: tuple[int, ...], transform: tuple[int, ...]) -> Candidate | None:
        """A transform left in another layout (Swin's [B, H, W, C] after window_reverse, not viewed back
        to [B, H*W, C]): merge its dims back with `.flatten(a, b)` at the add."""
        if len(transform) <= len(skip) or math.prod(transform) != math.prod(skip):
            return None
        merge = _merged_dims(transform, skip)
        if merge is None:
            return None
        first, last = merge
        statement = fix_source.statement_of(join.node)
        if statement is None:
            return None
        written = _rewrite_add_operand(statement, join.node, join.transform, join.skip,
                                       lambda operand, other: f"({operand}).flatten({first}, {last})")
        if written is None:
            return None
        fix = Fix("reshape-back", join.node.meta.get("module_path", ""), written, False,
                  f"the transform is still {list(transform)}: merge dims {first}..{last} back before the add: {written}",
                  line=statement.line, end_line=statement.end_line)
        return Candidate(fix, self._operand_override(join.node, join.transform, lambda v: v.flatten(first, last)), statement, size_fix=True)

    def _operand_override(self, node: fx.Node, operand: fx.Node, change) -> dict:
        run_op = self.prop._run_op

        def changed(args, kwargs):
            return run_op(node, tuple(change(v) if a is operand else v for a, v in zip(node.args, args)), kwargs)
        return {node: changed}

    # -- helpers ------------------------------------------------------------------------------------------

    def _module_candidate(self, node: fx.Node, module: nn.Module, spec: LayerSpec, kind: str, why: str) -> Candidate | None:
        """The layer rebuilt from `spec`. A layer fix is pasted into the call that made the layer, so it
        is validated on every layer made there with the same settings (`down1.pool` and `down2.pool`)."""
        try:
            built = spec.build()
        except Exception:
            return None
        described = f"{node.target}: {type(module).__name__}({module.extra_repr()}) should be {spec.code()}: {why}"
        fix = Fix(kind, str(node.target), spec.code(), False, described)
        overrides = {node: lambda args, kwargs: built(*args, **kwargs)}
        changed = _changed_settings(module, built)
        for other in self.prop.nodes:
            sibling = self.prop.module(other) if other.op == "call_module" and other is not node else None
            if sibling is None or sibling is module or not _made_alike(sibling, module):
                continue
            if other.target == node.target:  # the same layer run again
                overrides[other] = overrides[node]
                continue
            try:
                rebuilt = copy.deepcopy(sibling)
                for name, value in changed.items():
                    setattr(rebuilt, name, value)
            except Exception:
                continue
            overrides[other] = lambda args, kwargs, layer=rebuilt: layer(*args, **kwargs)
        return Candidate(fix, overrides, size_fix=True)


def _ancestors(node: fx.Node, limit: int) -> set[fx.Node]:
    """Up to `limit` nodes the value is computed from (nearest first), itself included."""
    seen, queue = {node}, [node]
    while queue and len(seen) < limit:
        for parent in queue.pop(0).all_input_nodes:
            if parent not in seen:
                seen.add(parent)
                queue.append(parent)
    return seen


_SETTINGS = ("padding", "ceil_mode", "count_include_pad", "_reversed_padding_repeated_twice")


_GEOMETRY = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "count_include_pad")  # what sets the output size


def _changed_settings(module: nn.Module, built: nn.Module) -> dict[str, Any]:
    """The size settings the fix changes (`ceil_mode`, `padding`), to set on the layer's siblings."""
    return {name: getattr(built, name) for name in _SETTINGS
            if hasattr(module, name) and getattr(module, name) != getattr(built, name)}


def _made_alike(other: nn.Module, module: nn.Module) -> bool:
    """Made by the same constructor call (when recorded), with the same settings; else the same repr."""
    from reslint.constructor_args import record_of

    if type(other) is not type(module):
        return False
    mine, theirs = record_of(module), record_of(other)
    if mine is not None and theirs is not None:
        if (mine.site_path, mine.site_line) != (theirs.site_path, theirs.site_line):
            return False
        return all(getattr(other, n, None) == getattr(module, n, None) for n in _GEOMETRY)
    return repr(other) == repr(module)


def _merged_dims(longer: tuple[int, ...], shorter: tuple[int, ...]) -> tuple[int, int] | None:
    """(a, b) such that flattening dims a..b of `longer` gives `shorter`."""
    extra = len(longer) - len(shorter)
    for a in range(len(shorter)):
        b = a + extra
        if longer[:a] == shorter[:a] and math.prod(longer[a:b + 1]) == shorter[a] and longer[b + 1:] == shorter[a + 1:]:
            return a, b
    return None


def causal_growth(sizes: "SizeFixes", node: fx.Node) -> list[int]:
    """The dims a causal conv (stride 1, padding = dilation * (kernel - 1) > 0) made longer."""
    conv = sizes.prop.module(node)
    if not isinstance(conv, nn.modules.conv._ConvNd) or isinstance(conv, nn.modules.conv._ConvTransposeNd):
        return []
    if not isinstance(conv.padding, tuple) or conv.padding_mode != "zeros" or any(s != 1 for s in conv.stride):
        return []
    if not all(p == d * (k - 1) and k > 1 for p, k, d in zip(conv.padding, conv.kernel_size, conv.dilation)):
        return []
    before = sizes.shape(node.all_input_nodes[0]) if node.all_input_nodes else None
    after = sizes.shape(node)
    if before is None or after is None or len(before) != len(after):
        return []
    return [d for d in range(2, len(after)) if after[d] > before[d]]


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


def _enclosing_call(statement: ast.stmt, targets: list[str]) -> tuple[ast.Call, str] | None:
    """The innermost `self.<path>(...)` call of the statement that runs every target module, with the
    module path it calls (`blocks.0.net` for `self.net(x)` running `blocks.0.net.0` and `blocks.0.net.2`)."""
    best = None
    for call in fix_source.calls(statement):
        called = fix_source.module_call_path(call)
        if not called:
            continue
        parts = targets[0].split(".")
        for end in range(len(parts), 0, -1):
            prefix = ".".join(parts[:end])
            if (prefix == called or prefix.endswith("." + called)) and all(t == prefix or t.startswith(prefix + ".") for t in targets):
                if best is None or len(prefix) > len(best[1]):
                    best = (call, prefix)
                break
    return best


def _parent_subscript(statement: ast.stmt, call: ast.Call) -> ast.Subscript | None:
    for node in ast.walk(statement):
        if isinstance(node, ast.Subscript) and node.value is call:
            return node
    return None


def _corrected_slice(cut: ast.expr, rank: int, dims: list[int], growth: dict[int, int]) -> ast.expr | None:
    """`[..., -(d_conv - 1):]` keeps the padding; `[..., :-(d_conv - 1)]` drops it: the user's own amount."""
    if dims != [rank - 1]:
        return None
    elements = list(cut.elts) if isinstance(cut, ast.Tuple) else [cut]
    last = elements[-1]
    if not isinstance(last, ast.Slice) or last.upper is not None or last.step is not None or last.lower is None:
        return None
    try:
        value = ast.literal_eval(last.lower)
    except ValueError:
        value = None
    negative = isinstance(last.lower, ast.UnaryOp) and isinstance(last.lower.op, ast.USub)
    if not negative or (value is not None and -value != growth[rank - 1]):
        return None
    text = f"_[..., :{ast.unparse(last.lower)}]"
    return ast.parse(text, mode="eval").body.slice


def _padding_slice(call: ast.Call, rank: int, dims: list[int], prefix: str, grown: list[fx.Node]) -> ast.expr | None:
    """`..., :-self.conv.padding[0]` when the call is one causal conv itself: it drops what it padded."""
    if len(grown) != 1 or str(grown[0].target) != prefix:
        return None
    layer = ast.unparse(call.func)
    parts = [f":-{layer}.padding[{d - 2}]" if d in dims else ":" for d in range(2, rank)]
    text = "_[..., " + ", ".join(parts) + "]" if dims == [rank - 1] or len(parts) == rank - 2 else None
    if dims == [rank - 1]:
        text = f"_[..., :-{layer}.padding[{rank - 3}]]"
    return ast.parse(text, mode="eval").body.slice if text else None


def _rewrite_add_operand(statement: Statement, node: fx.Node, operand: fx.Node, other: fx.Node, wrap) -> str | None:
    """The add statement with one operand's expression wrapped (`wrap(operand_text, other_text)`); the
    other operand, when wrap reads it, must be a plain name (it is read twice)."""
    found = fix_source.add_operands(statement.node)
    position, other_position = _operand_position(node, operand), _operand_position(node, other)
    if found is None or position is None or other_position is None:
        return None
    holder, *fields = found
    expression = fix_source.get_field(holder, fields[position])
    other_expression = fix_source.get_field(holder, fields[other_position])
    other_text = ast.unparse(other_expression)
    text = wrap(ast.unparse(expression), other_text)
    if other_text in text and not fix_source.is_simple(other_expression):
        return None
    _set_operand(statement, holder, fields[position], fix_source.expression(text))
    return fix_source.statement_code(statement.node)


def _set_operand(statement: Statement, holder: ast.AST, field: str, value: ast.expr) -> None:
    """Put `value` in an add's operand field; `out += x` whose `out` changes becomes `out = value + x`."""
    if isinstance(holder, ast.AugAssign) and field == "target":
        rewritten = ast.Assign(targets=[holder.target], value=ast.BinOp(value, ast.Add(), holder.value), lineno=0)
        if holder is statement.node:
            statement.node = rewritten
        else:
            _replace(statement.node, holder, rewritten)
    else:
        fix_source.set_field(holder, field, value)


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


def _rewrite_pad(statement: Statement, old: list[int], new: list[int], swap: tuple[int, ...] | None = None) -> str | None:
    """The statement with the pad call's amounts changed, keeping the user's expressions where it can:
    axes swapped are the user's (left, right) pairs in the other order."""
    call = next((c for c in fix_source.calls(statement.node) if fix_source.call_name(c) == "pad"), None)
    if call is None:
        return None
    amounts = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "pad"), None)
    if swap is not None and isinstance(amounts, (ast.Tuple, ast.List)) and len(amounts.elts) == 2 * len(swap):
        elements = list(amounts.elts)
        amounts.elts = [elements[2 * o + side] for o in swap for side in (0, 1)]
    elif isinstance(amounts, (ast.Tuple, ast.List)) and len(amounts.elts) == len(old):
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
