"""Fixes for a mismatched join, each proven by re-propagating shapes with the fix applied.

For a mismatched add (RL001), the maintainer's fix first: a size fix on the layer or call that changed
the size (reslint/size_fixes.py: a pool's ceil_mode or padding, a conv's padding, an F.pad's amounts, a
missing permute back, the crop of a causal conv). Then, in the order design.md asks for (fix the skip
when both sides would do):
  restride-skip      the skip already has a projection, with the wrong stride or width
  project-skip       the skip is bare: add a 1x1 conv (with the transform's norm) or a Linear
  resize-transform   the transform is what is wrong: its last layer gets the skip's size
  project-transform  the transform lost its output projection: add one, to the skip's shape
For an add that only works by broadcasting (RL002): resize-transform, or remove-reduction (the
pooling that squeezed the transform's spatial dims). For a concatenated skip (RL003): resize-transform
(a stray stride), or resize-to-skip (interpolate the decoder tensor to the skip's size).
A projection is only proposed on a channel or feature dim (reslint.roles): a spatial or sequence
mismatch gets a size fix, never a conv with a spatial size as its channel count.
A fix is `validated` when the join then succeeds (with equal operands, for RL002), nothing fails
but the model's other, independent bugs, and, for a fix that rewrites a statement, its code parses and
reads only names the statement's scope has. Identical blocks (same class, same configuration, same
join line) get the same kind of fix: the first kind that validates on all of them.
"""

from __future__ import annotations

import ast
import linecache
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from reslint import fix_source
from reslint.findings import Fix
from reslint.joins import JoinFinder, SkipJoin
from reslint.layers import LayerSpec, conv_spec, linear_spec, norm_spec, norm_width, sequential, stride_for
from reslint.size_fixes import Candidate, SizeFixes, projection_allowed
from reslint.trace.ops import cat_tensors_and_dim, is_add
from reslint.trace.propagate import Override, Propagation

try:
    from reslint.roles import roles_of
except ImportError:  # roles are an aid: without them every projection is allowed
    def roles_of(propagation, node):  # type: ignore[misc]
        return None


class FixFinder:
    def __init__(self, propagation: Propagation, joins: JoinFinder):
        self.prop = propagation
        self.joins = joins
        self.size = SizeFixes(self)
        self._broken_joins: set[fx.Node] | None = None  # joins failing as settled (fix finding does not commit)
        self._group_choice: dict[tuple, tuple | None] = {}  # identical blocks: the fix kind chosen for the group

    def best_fix(self, join: SkipJoin) -> Fix | None:
        """The first validated candidate; if none validates, the first candidate, marked unvalidated.
        In a group of identical blocks, the kind of fix that validates on all of them."""
        group = self.identical_joins(join)
        if len(group) > 1:
            return self._group_fix(join, group)
        candidates = self.validated_candidates(join, stop_at_first=True)
        return next((c.fix for c in candidates if c.fix.validated), candidates[0].fix if candidates else None)

    def validated_candidates(self, join: SkipJoin, stop_at_first: bool = False, either_side: bool = False) -> list[Candidate]:
        """The join's candidates in order, each with `fix.validated` set (up to the first that validates).
        `either_side`: the join may line up at either operand's shape (see validates)."""
        broadcast = join.kind == "add" and join.node not in self.prop.failures
        if join.kind == "cat":
            candidates = list(self.concat_candidates(join))
        elif broadcast:
            candidates = list(self.broadcast_candidates(join))
        else:
            candidates = list(self.candidates(join))
        candidates = [c for c in candidates if c is not None]
        firewall = self.other_broken_joins(join.node)
        independent = self.independent_failures(join.node, firewall) if candidates else set()
        for candidate in candidates:
            same_line = self._same_line_nodes(join.node) if candidate.statement is not None else set()
            candidate.fix.validated = self.validates(
                join, candidate.overrides, independent | same_line, firewall, equal_operands=broadcast, either_side=candidate.size_fix or either_side,
            ) and (
                candidate.statement is None or fix_source.pasteable(candidate.fix.code, candidate.statement)
            )
            if candidate.fix.validated and stop_at_first:
                break
        return candidates

    def _same_line_nodes(self, node: fx.Node) -> set[fx.Node]:
        """Other nodes that run the same source line (the same join in other blocks): a statement fix is
        pasted there too, so what fails there is the same bug, not one this fix makes."""
        source = node.meta.get("source")
        if source is None:
            return set()
        key = (source.path, source.line)
        return {n for n in self.prop.nodes if n is not node and (s := n.meta.get("source")) is not None and (s.path, s.line) == key
                and len(self.joins.data_operands(n)) >= 2}

    def failure_fix(self, node: fx.Node) -> Fix | None:
        """A fix for an op that fails outside any join (RL000), when it is a size a layer upstream got
        wrong (an uncropped causal conv): the first candidate under which the op runs and nothing else
        newly fails. None when there is no candidate."""
        if node not in self.prop.failures:
            return None
        firewall = self.other_broken_joins(node)
        before = set(self.prop.failures) - {node}
        candidates = [c for c in self.size.for_failure(node, before) if c is not None]
        for candidate in candidates:
            try:
                delta = self.prop.recompute(candidate.overrides, firewall=firewall)
            except Exception:
                continue
            failing = self.prop.failing_after(delta)
            candidate.fix.validated = (
                node not in failing and failing <= before and not self._broadcasts_newly(delta, node)
                and (candidate.statement is None or fix_source.pasteable(candidate.fix.code, candidate.statement))
            )
            if candidate.fix.validated:
                return candidate.fix
        return candidates[0].fix if candidates else None

    def gate_fix(self, join: SkipJoin) -> Fix | None:
        """A sigmoid gate added to the feature map it was meant to scale (RL002): multiply instead."""
        statement = fix_source.statement_of(join.node)
        found = fix_source.add_operands(statement.node) if statement is not None else None
        if found is None:
            return None
        holder = found[0]
        if isinstance(holder, (ast.BinOp, ast.AugAssign)):
            holder.op = ast.Mult()
        elif isinstance(holder, ast.Call) and isinstance(holder.func, (ast.Attribute, ast.Name)):
            if isinstance(holder.func, ast.Attribute):
                holder.func.attr = "mul"
            else:
                holder.func.id = "mul"
        code = fix_source.statement_code(statement.node)
        node = join.node
        fix = Fix("multiply-gate", node.meta.get("module_path", ""), code, False,
                  f"scale the feature map by the gate instead of adding it: {code}", line=statement.line, end_line=statement.end_line)
        try:
            delta = self.prop.recompute({node: lambda args, kwargs: args[0] * args[1]}, firewall=self.other_broken_joins(node))
            failing = self.prop.failing_after(delta)
            fix.validated = failing <= set(self.prop.failures) and fix_source.pasteable(code, statement)
        except Exception:
            fix.validated = False
        return fix

    def not_inplace_fix(self, node: fx.Node) -> Fix | None:
        """An in-place op that overwrites a skip (RL006): the same op, not in place. It computes the same
        shapes, so it runs wherever the in-place one did."""
        if node.op == "call_module":
            module = self.prop.module(node)
            if getattr(module, "inplace", False) is not True:
                return None
            settings = module.extra_repr().replace("inplace=True", "inplace=False")
            code = f"nn.{type(module).__name__}({settings})"
            return Fix("not-inplace", str(node.target), code, True,
                       f"{node.target} overwrites its input, which a later join reads: {code}")
        statement = fix_source.statement_of(node)
        if statement is None or node.kwargs.get("inplace") is not True:
            return None
        name = getattr(node.target, "__name__", "")
        call = next((c for c in fix_source.calls(statement.node) if fix_source.call_name(c) == name
                     and any(k.arg == "inplace" for k in c.keywords)), None)
        if call is None:
            return None
        for keyword in call.keywords:
            if keyword.arg == "inplace":
                keyword.value = ast.Constant(False)
        code = fix_source.statement_code(statement.node)
        return Fix("not-inplace", node.meta.get("module_path", ""), code, fix_source.pasteable(code, statement),
                   f"{name} overwrites its input, which a later join reads: {code}", line=statement.line, end_line=statement.end_line)

    # -- identical blocks ---------------------------------------------------------------------------

    def identical_joins(self, join: SkipJoin) -> list[SkipJoin]:
        """The same join (same line) in every instance of the same class with the same configuration."""
        key = self._block_key(join.node)
        if key is None:
            return [join]
        failed = join.node in self.prop.failures
        group = []
        for node in self.prop.nodes:
            if node is join.node:
                group.append(join)
            elif (node in self.prop.failures) == failed and self._block_key(node) == key:
                other = self._join_at(node)
                if other is not None and other.kind == join.kind:
                    group.append(other)
        return group

    def _block_key(self, node: fx.Node) -> tuple | None:
        source = node.meta.get("source")
        path = node.meta.get("module_path")
        if source is None or not path or not (is_add(node) or node.op == "call_function" and "cat" in getattr(node.target, "__name__", "")):
            return None
        try:
            module = self.prop.root.get_submodule(path)
        except AttributeError:
            return None
        return (type(module), repr(module), source.path, source.line, source.column)

    def _join_at(self, node: fx.Node) -> SkipJoin | None:
        operands = self.joins.data_operands(node)
        if len(operands) < 2:
            return None
        if is_add(node):
            return self.joins._join(node, operands[0], operands[1])
        return self.joins._cat_join(node, operands)

    def _group_fix(self, join: SkipJoin, group: list[SkipJoin]) -> Fix | None:
        """This join's fix of the kind that validates on the most instances of the group (all, ideally),
        the earliest such kind in the first instance's order."""
        key = self._block_key(join.node)
        # A block the rest of the model does not constrain (the last one) could line up at either side;
        # the group's other instances decide which.
        ranked = {member.node: self.validated_candidates(member, either_side=True) for member in group}
        if key not in self._group_choice:
            first = ranked[group[0].node]
            counts = {}
            for candidate in first:
                kind = self._kind_key(group[0], candidate.fix)
                counts.setdefault(kind, sum(
                    any(self._kind_key(m, c.fix) == kind and c.fix.validated for c in ranked[m.node]) for m in group
                ))
            best = max(counts.values(), default=0)
            self._group_choice[key] = next((k for k, n in counts.items() if n == best), None) if best else None
        chosen = self._group_choice[key]
        own = ranked[join.node]
        match = next((c.fix for c in own if self._kind_key(join, c.fix) == chosen), None)
        if match is not None and (match.validated or not any(c.fix.validated for c in own)):
            return match
        return next((c.fix for c in own if c.fix.validated), own[0].fix if own else None)

    @staticmethod
    def _kind_key(join: SkipJoin, fix: Fix) -> tuple[str, str]:
        """The fix's kind and where in the block it goes (`out_proj`, not `layers.1.out_proj`)."""
        prefix = join.node.meta.get("module_path", "")
        module = fix.module[len(prefix) + 1 :] if prefix and fix.module.startswith(prefix + ".") else ("" if fix.module == prefix else fix.module)
        return fix.kind, module

    def candidates(self, join: SkipJoin):
        skip_shape = self._shape(join.skip)
        transform_shape = self._shape(join.transform)
        if skip_shape is None or transform_shape is None:
            return
        reduction = self.reduction_node(join.transform_path, skip_shape)
        if reduction is not None:  # the transform pooled away dims the skip keeps: that is the bug
            yield self._remove_reduction(reduction)
        yield self.size.reshape_back(join, skip_shape, transform_shape)
        yield from self.size.for_add(join, skip_shape, transform_shape)
        if any(_is_upsampling(self.prop, n) for n in join.transform_path):
            yield self.size.interpolate_operand(join, skip_shape)
        yield self.size.pool_skip(join, skip_shape, transform_shape)
        projection = self._last_weighted_layer(join.skip_path)
        if projection is not None:
            candidate = self._resize_chain(join.skip_path, projection, transform_shape, "restride-skip")
        else:
            candidate = self._project_skip(join, skip_shape, transform_shape)
        if candidate is not None:
            yield candidate
        layer = self._last_weighted_layer(join.transform_path)
        if layer is not None:
            candidate = self._resize_chain(join.transform_path, layer, skip_shape, "resize-transform")
            if candidate is not None:
                yield candidate
        candidate = self._project_operand(join, join.transform, transform_shape, skip_shape, "project-transform")
        if candidate is not None:  # the transform lost its output projection: give it one
            yield candidate

    def other_broken_joins(self, join_node: fx.Node) -> set[fx.Node]:
        """Other joins that fail as settled: bugs of their own, even where a change here lines them up by
        chance. A fix is not judged by them, nor past one that it lines up (see Propagation.recompute)."""
        if self._broken_joins is None:
            self._broken_joins = {node for node in self.prop.failures if len(self.joins.data_operands(node)) >= 2}
        return self._broken_joins - {join_node}

    def independent_failures(self, join_node: fx.Node, firewall: set[fx.Node]) -> set[fx.Node]:
        """Failures elsewhere that happen whatever shape the join produces: other bugs, not this one's."""
        failure = self.prop.failures.get(join_node)
        picks = range(len(failure.candidates)) if failure and failure.candidates else [None]
        common: set[fx.Node] | None = None
        for pick in picks:
            delta = self.prop.recompute({}, chosen={join_node: pick}, firewall=firewall) if pick is not None else None
            failing = self.prop.failing_after(delta) if delta else set(self.prop.failures)
            common = failing if common is None else common & failing
        return ((common or set()) | firewall) - {join_node}

    def validates(
        self, join: SkipJoin, overrides: dict[fx.Node, Override], independent: set[fx.Node], firewall: set[fx.Node],
        equal_operands: bool = False, either_side: bool = False,
    ) -> bool:
        """The join succeeds and nothing fails but the model's other, independent bugs.

        The join must come out as settled (the shape the rest of the model was found to take), or, for
        a size fix (`either_side`), at the shape of one of its operands as written: a size fix changes
        the layer that changed the size, and what follows the join is checked by the rest of the run."""
        try:
            delta = self.prop.recompute(overrides, firewall=firewall)
        except Exception:
            return False
        failing = self.prop.failing_after(delta)
        if join.node in failing or not failing <= independent or self._broadcasts_newly(delta, join.node):
            return False
        after = _shape_of(delta.values.get(join.node))
        if join.node in self.prop.failures and after != _shape_of(self.prop.values[join.node]):
            operands = {_shape_of(self.prop.values.get(n)) for n in (join.skip, join.transform)}
            if join.kind == "cat" and after is not None:  # a cat's output is its operands' shape but in the concat dim
                _, dim = cat_tensors_and_dim(join.node.args, join.node.kwargs)
                dim = dim % len(after)
                after, operands = _without(after, dim), {_without(o, dim) for o in operands if o is not None and len(o) == len(after)}
            if not either_side or after not in operands:
                return False  # the join must come out as settled: the shape the rest of the model was found to take
        if equal_operands:
            shapes = {_shape_of(delta.values.get(n, self.prop.values.get(n))) for n in (join.skip, join.transform)}
            return len(shapes) == 1
        return True

    def _broadcasts_newly(self, delta, fixed: fx.Node) -> bool:
        """Some other join now only works by broadcasting that did not before (a fix that moves the bug
        on, or that turns another broken join into a silent one)."""
        values = self.prop.values
        for node in delta.values:
            if node is fixed or node in delta.failures or not is_add(node):
                continue
            operands = self.joins.data_operands(node)
            if len(operands) != 2:
                continue
            after = {_shape_of(delta.values.get(n, values.get(n))) for n in operands}
            if len(after) == 1:
                continue
            before = {_shape_of(values.get(n)) for n in operands}
            if len(before) == 1 or node in self.prop.failures:
                return True
        return False

    # -- RL002: broadcasting adds ---------------------------------------------------------------------

    def broadcast_candidates(self, join: SkipJoin):
        """The broadcast operand's last layer at the full size, or its reduction removed."""
        out = self._shape(join.node)
        if out is None:
            return
        for operand, path in ((join.transform, join.transform_path), (join.skip, join.skip_path)):
            if self._shape(operand) == out or not path:
                continue
            layer = self._last_weighted_layer(path)
            if layer is not None:
                candidate = self._resize_chain(path, layer, out, "resize-transform")
                if candidate is not None:
                    yield candidate
            reduction = self.reduction_node(path, out)
            if reduction is not None:
                yield self._remove_reduction(reduction)

    def reduction_node(self, path: list[fx.Node], full: tuple[int, ...]) -> fx.Node | None:
        """The first node on the path that squeezes to 1 a dim the full shape has (a pooling, a mean)."""
        for node in path:
            shape = self._shape(node)
            inputs = [self._shape(n) for n in node.all_input_nodes]
            if shape is None or len(shape) != len(full):
                continue
            squeezed = [d for d, (a, b) in enumerate(zip(shape, full)) if a == 1 and b != 1]
            if squeezed and any(s is not None and len(s) == len(shape) and all(s[d] != 1 for d in squeezed) for s in inputs):
                return node
        return None

    def _remove_reduction(self, node: fx.Node) -> Candidate:
        source = node.meta.get("source")
        where = f" (line {source.line})" if source else ""
        if node.op == "call_module":
            code, module = f"{node.target} = nn.Identity()", str(node.target)
        else:
            code, module = f"# remove the {_op_name(node)} call{where}", node.meta.get("module_path", "")
        fix = Fix("remove-reduction", module, code, False, f"the transform pools away dims the skip keeps: remove {_op_name(node)}{where}")
        return Candidate(fix, {node: lambda args, kwargs: args[0]})

    # -- RL003: concatenated skips ------------------------------------------------------------------

    def concat_candidates(self, join: SkipJoin):
        skip_shape = self._shape(join.skip)
        transform_shape = self._shape(join.transform)
        if skip_shape is None or transform_shape is None or len(skip_shape) != len(transform_shape):
            return
        _, dim = cat_tensors_and_dim(join.node.args, join.node.kwargs)
        dim = dim % len(skip_shape)
        target = tuple(t if d == dim else s for d, (s, t) in enumerate(zip(skip_shape, transform_shape)))
        upsampled = any(_is_upsampling(self.prop, n) for n in join.transform_path)
        yield from self.size.for_path(join, join.transform_path, target)
        # The skip's own layers next: a pool branch that rounds odd sizes unlike the conv beside it
        # (DABNet, ENet-style downsamplers) gets its ceil_mode or padding.
        skip_target = tuple(s if d == dim else t for d, (s, t) in enumerate(zip(skip_shape, transform_shape)))
        yield from self.size.for_path(join, join.skip_path, skip_target)
        layer = self._last_weighted_layer(join.transform_path)
        if layer is not None and not upsampled:
            candidate = self._resize_chain(join.transform_path, layer, target, "resize-transform")
            if candidate is not None:
                yield candidate
        if len(skip_shape) >= 3 and dim < 2:
            yield self._interpolate_to_skip(join, skip_shape)

    def _interpolate_to_skip(self, join: SkipJoin, skip_shape: tuple[int, ...]) -> Candidate:
        node = join.node
        size = tuple(skip_shape[2:])

        def cat_resized(args: tuple, kwargs: dict) -> Any:
            tensors, dim = cat_tensors_and_dim(args, kwargs)
            originals, _ = cat_tensors_and_dim(node.args, node.kwargs)
            resized = [
                t if original is join.skip or not isinstance(t, torch.Tensor) or tuple(t.shape[2:]) == size
                else nn.functional.interpolate(t, size=size)
                for original, t in zip(originals, tensors)
            ]
            return torch.cat(resized, dim=dim)

        written = _interpolate_code(node, join)
        module = node.meta.get("module_path", "")
        if written is None:  # no source to rewrite: described, never validated (nothing to paste)
            code, statement, line, end_line = "up = F.interpolate(up, size=skip.shape[2:])", fix_source.NOWHERE, 0, 0
        else:
            (code, statement), line, end_line = written, written[1].line, written[1].end_line
        fix = Fix("resize-to-skip", module, code, False, "resize the decoder tensor to the skip's size before the concat",
                  line=line, end_line=end_line)
        return Candidate(fix, {node: cat_resized}, statement)

    # -- project-skip ---------------------------------------------------------------------------------

    def _project_skip(self, join: SkipJoin, skip: tuple[int, ...], transform: tuple[int, ...]) -> Candidate | None:
        return self._project_operand(join, join.skip, skip, transform, "project-skip")

    def _project_operand(self, join: SkipJoin, operand: fx.Node, shape: tuple, target: tuple, kind: str) -> Candidate | None:
        """Pass one operand of the join through a projection to the other's shape."""
        spec = self.projection_spec(join, shape, target)
        if spec is None or not self._projects_channels(join, operand, spec, shape):
            return None
        try:
            projection = spec.build()
        except Exception:
            return None
        node = join.node
        run_op = self.prop._run_op

        def join_with_projected_operand(args: tuple, kwargs: dict) -> Any:
            new_args = tuple(projection(value) if arg is operand else value for arg, value in zip(node.args, args))
            return run_op(node, new_args, kwargs)

        module = node.meta.get("module_path", "")
        where = f"{module} ({node.meta.get('module_type')})" if module else "the model"
        side = "skip" if operand is join.skip else "transform"
        fix = Fix(
            kind=kind, module=module, code=spec.code(), validated=False,
            description=f"in {where}, pass the {side} through this projection before the add",
        )
        return Candidate(fix, {node: join_with_projected_operand})

    def _projects_channels(self, join: SkipJoin, operand: fx.Node, spec: LayerSpec, shape: tuple[int, ...]) -> bool:
        """The projection's width is a channel or feature dim, never a spatial size or a sequence length,
        in the operand it projects and in the other one it is made to match (a transform left channels
        last, [B, H, W, C], is not projected on its H because the skip's dim 1 is a channel)."""
        width_dim = len(shape) - 1 if spec.name == "Linear" else 1
        other = join.transform if operand is join.skip else join.skip
        for node in (operand, other):
            try:
                roles = roles_of(self.prop, node)
            except Exception:
                continue
            if not projection_allowed(roles, [width_dim]):
                return False
        return True

    def projection_spec(self, join: SkipJoin, source: tuple[int, ...], target: tuple[int, ...]) -> LayerSpec | None:
        """A 1x1 conv from source to target shape with the stride (plus the transform's norm), or a Linear."""
        if len(source) != len(target) or not source:
            return None
        if source[:-1] == target[:-1]:
            return LayerSpec("Linear", (source[-1], target[-1]))
        rank = len(source)
        if rank not in (3, 4, 5) or source[0] != target[0]:
            return None
        strides = []
        for size, want in zip(source[2:], target[2:]):
            options = [s for s in range(1, 33) if (size - 1) // s + 1 == want]
            if not options:
                return None
            strides.append(options[0])
        norm = self._last_norm(join.transform_path)
        norm_layer = norm_spec(norm, target[1]) if norm is not None else None
        if norm_layer is not None and not _applies(norm_layer, target):
            norm_layer = None  # a LayerNorm of a channels-last block does not normalize a channels-first skip
        kwargs: dict[str, Any] = {"kernel_size": 1}
        if any(s != 1 for s in strides):
            kwargs["stride"] = strides[0] if len(set(strides)) == 1 else tuple(strides)
        if norm_layer is not None:
            kwargs["bias"] = False
        conv = LayerSpec(f"Conv{rank - 2}d", (source[1], target[1]), kwargs)
        return sequential(conv, norm_layer) if norm_layer is not None else conv

    # -- restride-skip and resize-transform -------------------------------------------------------------

    def _resize_chain(self, path: list[fx.Node], layer_node: fx.Node, target: tuple[int, ...], kind: str) -> Candidate | None:
        """Resize the path's last weighted layer (and the norms after it) so the path ends in `target`."""
        layer = self.prop.module(layer_node)
        layer_in = self._shape(layer_node.all_input_nodes[0]) if layer_node.all_input_nodes else None
        layer_out = self._shape(layer_node)
        path_end = self._shape(path[-1])
        if layer_in is None or layer_out is None or path_end is None or len(target) != len(path_end):
            return None
        if isinstance(layer, nn.Linear) and layer_out[-1] == path_end[-1] and tuple(target[:-1]) == tuple(path_end[:-1]):
            new_width, spec = target[-1], linear_spec(layer, target[-1])
        elif isinstance(layer, nn.modules.conv._ConvNd) and len(layer_out) >= 3 and layer_out[1] == path_end[1]:
            # Spatial dims scale between the layer and the end of the path by a fixed factor (pooling).
            wanted = []
            for out, end, want in zip(layer_out[2:], path_end[2:], target[2:]):
                if (want * out) % end:
                    return None
                wanted.append(want * out // end)
            stride = stride_for(layer, layer_in[2:], tuple(wanted))
            if stride is None or target[1] % layer.groups:
                return None
            new_width, spec = target[1], conv_spec(layer, target[1], stride)
        else:
            return None
        old_width = layer_out[-1] if isinstance(layer, nn.Linear) else layer_out[1]
        changes = [(layer_node, spec)]
        for node in path[path.index(layer_node) + 1 :] if new_width != old_width else []:
            module = self.prop.module(node)
            if module is not None and norm_width(module) == old_width:
                resized = norm_spec(module, new_width)
                if resized is None:
                    return None
                changes.append((node, resized))
        try:
            overrides = {node: _call(spec.build()) for node, spec in changes}
        except Exception:
            return None
        described = f"{layer_node.target}: {_describe_module(layer)} should be {spec.code()}"
        if len(changes) == 1:
            code = spec.code()
        else:
            code = "\n".join(f"{node.target} = {s.code()}" for node, s in changes)
        return Candidate(Fix(kind=kind, module=str(layer_node.target), code=code, validated=False, description=described), overrides)

    # -- helpers ----------------------------------------------------------------------------------------

    def _shape(self, node: fx.Node) -> tuple[int, ...] | None:
        value = self.prop.values.get(node)
        return tuple(value.shape) if isinstance(value, torch.Tensor) else None

    def _last_weighted_layer(self, path: list[fx.Node]) -> fx.Node | None:
        for node in reversed(path):
            if self.joins.is_weighted(node):
                return node if node.op == "call_module" else None
        return None

    def _last_norm(self, path: list[fx.Node]) -> nn.Module | None:
        for node in reversed(path):
            module = self.prop.module(node)
            if module is not None and norm_width(module) is not None:
                return module
        return None


def _applies(spec: LayerSpec, shape: tuple[int, ...]) -> bool:
    """The layer runs on a tensor of this shape (a norm over the right dims)."""
    try:
        with torch.device("meta"):
            spec.build()(torch.empty(shape))
        return True
    except Exception:
        return False


def _without(shape: tuple[int, ...], dim: int) -> tuple[int, ...]:
    return shape[:dim] + shape[dim + 1:]


def _shape_of(value: Any) -> tuple[int, ...] | None:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else None


def _op_name(node: fx.Node) -> str:
    if node.op == "call_module":
        return str(node.target)
    target = node.target
    return target if isinstance(target, str) else getattr(target, "__name__", str(target))


def _is_upsampling(prop: Propagation, node: fx.Node) -> bool:
    module = prop.module(node)
    if isinstance(module, (nn.Upsample, nn.modules.conv._ConvTransposeNd, nn.PixelShuffle)):
        return True
    return _op_name(node) in ("interpolate", "upsample", "pixel_shuffle", "repeat_interleave")


def _interpolate_code(node: fx.Node, join: SkipJoin) -> tuple[str, fix_source.Statement] | None:
    """The user's cat statement with the decoder operands wrapped in F.interpolate to the skip's size.

    The skip is read twice (its size, and itself), so an operand that is not a plain name
    (`h.pop()`) is bound to a name first; so is every operand before it, to keep the order in which
    the user's code evaluates them.
    """
    statement = fix_source.statement_of(node)
    if statement is None:
        return None
    originals, _ = cat_tensors_and_dim(node.args, node.kwargs)
    call = next((c for c in fix_source.calls(statement.node) if fix_source.call_name(c) in ("cat", "concat", "concatenate")), None)
    if call is None or not call.args or not isinstance(call.args[0], (ast.List, ast.Tuple)) or len(call.args[0].elts) != len(originals):
        return None
    if join.skip not in originals:
        return None
    elements = call.args[0].elts
    skip_index = originals.index(join.skip)
    bindings = []
    if not fix_source.is_simple(elements[skip_index]):
        taken = set(statement.scope)
        for index in range(skip_index + 1):
            if fix_source.is_simple(elements[index]):
                continue
            wanted = "skip" if index == skip_index else "up"
            name, number = wanted, 2
            while name in taken:
                name, number = f"{wanted}{number}", number + 1
            taken.add(name)
            bindings.append(f"{name} = {ast.unparse(elements[index])}")
            elements[index] = ast.Name(id=name, ctx=ast.Load())
    skip_text = ast.unparse(elements[skip_index])
    functional = fix_source.functional_prefix(statement)
    for index, original in enumerate(originals):
        if original is not join.skip and original is not None:
            elements[index] = fix_source.expression(f"{functional}.interpolate({ast.unparse(elements[index])}, size={skip_text}.shape[2:])")
    return "\n".join([*bindings, fix_source.statement_code(statement.node)]), statement


def _call(module: nn.Module) -> Override:
    return lambda args, kwargs: module(*args, **kwargs)


def _describe_module(module: nn.Module) -> str:
    return f"{type(module).__name__}({module.extra_repr()})"
