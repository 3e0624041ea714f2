"""Fixes for a mismatched join, each proven by re-propagating shapes with the fix applied.

Candidates, in the order design.md asks for (fix the skip when both sides would do):
  restride-skip      the skip already has a projection, with the wrong stride or width
  project-skip       the skip is bare: add a 1x1 conv (with the transform's norm) or a Linear
  resize-transform   the transform is what is wrong: its last layer gets the skip's size
A fix is `validated` when the join then succeeds and no node downstream fails that did not fail before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from reslint.findings import Fix
from reslint.joins import JoinFinder, SkipJoin
from reslint.layers import LayerSpec, conv_spec, linear_spec, norm_spec, norm_width, sequential, stride_for
from reslint.trace.propagate import Override, Propagation


@dataclass
class Candidate:
    fix: Fix
    overrides: dict[fx.Node, Override]


class FixFinder:
    def __init__(self, propagation: Propagation, joins: JoinFinder):
        self.prop = propagation
        self.joins = joins

    def best_fix(self, join: SkipJoin) -> Fix | None:
        """The first validated candidate; if none validates, the first candidate, marked unvalidated."""
        candidates = list(self.candidates(join))
        independent = self.independent_failures(join.node) if candidates else set()
        for candidate in candidates:
            candidate.fix.validated = self.validates(join.node, candidate.overrides, independent)
            if candidate.fix.validated:
                return candidate.fix
        return candidates[0].fix if candidates else None

    def candidates(self, join: SkipJoin):
        skip_shape = self._shape(join.skip)
        transform_shape = self._shape(join.transform)
        if skip_shape is None or transform_shape is None:
            return
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

    def independent_failures(self, join_node: fx.Node) -> set[fx.Node]:
        """Failures elsewhere that happen whatever shape the join produces: other bugs, not this one's."""
        failure = self.prop.failures.get(join_node)
        picks = range(len(failure.candidates)) if failure and failure.candidates else [None]
        common: set[fx.Node] | None = None
        for pick in picks:
            delta = self.prop.recompute({}, chosen={join_node: pick}) if pick is not None else None
            failing = self.prop.failing_after(delta) if delta else set(self.prop.failures)
            common = failing if common is None else common & failing
        return (common or set()) - {join_node}

    def validates(self, join_node: fx.Node, overrides: dict[fx.Node, Override], independent: set[fx.Node]) -> bool:
        """The join succeeds and nothing fails but the model's other, independent bugs."""
        try:
            delta = self.prop.recompute(overrides)
        except Exception:
            return False
        failing = self.prop.failing_after(delta)
        return join_node not in failing and failing <= independent

    # -- project-skip ---------------------------------------------------------------------------------

    def _project_skip(self, join: SkipJoin, skip: tuple[int, ...], transform: tuple[int, ...]) -> Candidate | None:
        spec = self.projection_spec(join, skip, transform)
        if spec is None:
            return None
        try:
            projection = spec.build()
        except Exception:
            return None
        node = join.node
        run_op = self.prop._run_op

        def join_with_projected_skip(args: tuple, kwargs: dict) -> Any:
            new_args = tuple(projection(value) if arg is join.skip else value for arg, value in zip(node.args, args))
            return run_op(node, new_args, kwargs)

        module = node.meta.get("module_path", "")
        where = f"{module} ({node.meta.get('module_type')})" if module else "the model"
        fix = Fix(
            kind="project-skip", module=module, code=spec.code(), validated=False,
            description=f"in {where}, pass the skip through this projection before the add",
        )
        return Candidate(fix, {node: join_with_projected_skip})

    def projection_spec(self, join: SkipJoin, skip: tuple[int, ...], transform: tuple[int, ...]) -> LayerSpec | None:
        """A 1x1 conv with the stride (plus the transform's norm), or a Linear for feature tensors."""
        if len(skip) != len(transform) or not skip:
            return None
        if skip[:-1] == transform[:-1]:
            return LayerSpec("Linear", (skip[-1], transform[-1]))
        rank = len(skip)
        if rank not in (3, 4, 5) or skip[0] != transform[0]:
            return None
        strides = []
        for size, want in zip(skip[2:], transform[2:]):
            options = [s for s in range(1, 33) if (size - 1) // s + 1 == want]
            if not options:
                return None
            strides.append(options[0])
        norm = self._last_norm(join.transform_path)
        norm_layer = norm_spec(norm, transform[1]) if norm is not None else None
        kwargs: dict[str, Any] = {"kernel_size": 1}
        if any(s != 1 for s in strides):
            kwargs["stride"] = strides[0] if len(set(strides)) == 1 else tuple(strides)
        if norm_layer is not None:
            kwargs["bias"] = False
        conv = LayerSpec(f"Conv{rank - 2}d", (skip[1], transform[1]), kwargs)
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
        if isinstance(layer, nn.Linear) and layer_out[-1] == path_end[-1]:
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


def _call(module: nn.Module) -> Override:
    return lambda args, kwargs: module(*args, **kwargs)


def _describe_module(module: nn.Module) -> str:
    return f"{type(module).__name__}({module.extra_repr()})"
