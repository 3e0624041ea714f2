"""A finding's fix as an edit of the user's source, written in the class's own parameters.

The analysis proves a fix per instance in numbers (`Conv2d(16, 32, stride=2)` for `stages.1.0`,
`Conv2d(32, 64, stride=2)` for `stages.2.0`). The edit a maintainer writes is one per class or per line
of code, in the names that code has. With each module's constructor arguments (reslint.constructor_args)
this module solves which names give the numbers every instance needs, and:

  project-skip   the block class gets `self.shortcut = <projection> if <guard> else nn.Identity()` and
                 the join adds `self.shortcut(x)`. The guard (`stride != 1 or in_planes != planes`) is
                 true on exactly the instances that need the projection, so the others get nn.Identity:
                 same output, same parameters.
                 When the block already holds an `nn.Identity()` on its skip, that line becomes the
                 projection; a join in a helper function is edited where the block calls the helper.
  layer fixes    (resize-transform, restride-skip, a conv's padding, a pool's ceil_mode) the argument
                 where its wrong value comes from (reslint.origin_fixes): the caller that passes the
                 block parameter the layer uses (`strides = [1, 1, 1, 1]`, `out_dim=dim`), else the
                 constructor call that made the layer, as a name of the calling scope whose value is what
                 each instance made there needs (`padding=dilation`), else a guarded expression
                 (`2 if wide else 1`), else the literal; only the keyword it needs is added
                 (`AvgPool2d(2, 2, ceil_mode=True)`), and one set to its default goes (`nn.ReLU()`).
  statement      (fix.line > 0) the fix's code replaces the statement, with the user's expressions kept
                 where the fix only put numbers in their place (reslint.statement_terms: `extra // 2`).

An edit is `safe` when every instance it touches is covered: each broken instance's fix is validated
and the edit gives it the proven numbers, and every other instance of the class (or made at the same
line) keeps what it had. Edits are computed in the worker (they need the model) and travel as plain
data (reslint.edits) on `Fix.edits`, with `Fix.diff` the edit alone as a unified diff.
"""

from __future__ import annotations

import ast
import copy
import inspect
import os
import sys
import textwrap
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from torch import nn

from reslint.constructor_args import Record, plain, record_of, site_of
from reslint.layer_runs import LayerRuns, unchanged_at_inputs, with_settings
from reslint.pad_instances import reordered_pad, reordered_pad_safe
from reslint.origin_fixes import guarded_argument, lift_to_caller, occurrence_of
from reslint.statement_reach import Unknown, runs_statement, value_of
from reslint.statement_terms import Written, in_own_terms
from reslint.edits import AddShortcut, Edit, EditError, ReplaceCall, ReplaceStatement, SetArgument, apply_all, unified_diff
from reslint.findings import Finding, Fix
from reslint.where import display_path

# Which constructor parameters a number in a projection stands for, to choose among names of equal value.
_HINTS = {"in": ("in", "inp", "cin", "input"), "out": ("out", "planes", "dim", "width", "channels", "features", "cout", "hidden"),
          "stride": ("stride",)}


@dataclass
class _Unit:
    """One instance of a finding: where its join is, the module it ran in, the fix proven for it."""

    path: str
    line: int
    module: str
    fix: Fix


def _units(findings: list[Finding]) -> list[_Unit]:
    units = []
    for finding in findings:
        instances = getattr(finding, "instances", None) or []
        fixes = [(i.module, getattr(i, "fix", None)) for i in instances] or [(finding.module, finding.fix)]
        if finding.fix is not None and all(fix is None for _, fix in fixes):
            fixes = [(finding.module, finding.fix)]
        units += [_Unit(finding.path, finding.line, module, fix) for module, fix in fixes if fix is not None]
        if finding.fix is not None and not any(u.fix is finding.fix for u in units):
            units.append(_Unit(finding.path, finding.line, finding.module, finding.fix))
    return units


def attach_source_edits(model: nn.Module, findings: list[Finding], propagation: Any = None) -> None:
    """Set `fix.edits`, `fix.diff` and `fix.safe` on every finding whose fix can be written in the source.

    Works on each instance (grouped findings list theirs; ungrouped ones are one each), so instances of
    one bug get one edit, whichever finding carries them. `propagation` (the analysis' run) tells each
    layer's inputs and which ran after a failure (reslint.layer_runs); without it a layer fix changes
    only the layers whose own fix was proven."""
    runs = LayerRuns(propagation) if propagation is not None else None
    groups: dict[tuple, list[_Unit]] = defaultdict(list)
    for unit in _units(findings):
        fix = unit.fix
        if fix.line:  # one line, one edit: instances that need other numbers there are written in one statement
            groups[("statement", unit.path, fix.line, fix.end_line)].append(unit)
        elif fix.kind in ("project-skip", "project-transform"):
            block = _submodule(model, unit.module)
            groups[("project", unit.path, unit.line, type(block), fix.kind)].append(unit)
        else:
            layers = [_submodule(model, path) for path, _ in _layer_changes(fix)]
            if any(layer is None or next(layer.children(), None) is not None for layer in layers):
                continue  # not all single layers (a fix that adds a projection to a block): report only
            for (path, code), layer in zip(_layer_changes(fix), layers):
                record = record_of(layer)
                site = site_of(record) if record else (path,)
                groups[("layer", site, type(layer))].append(unit)
    failed: set[int] = set()
    for key, members in groups.items():
        try:
            edits, safe = _solve(model, key, members, runs)
            edits_diff(edits)  # the edits apply to the source as it is
        except (EditError, SolveError, SyntaxError, ValueError, TypeError, OSError):
            failed.update(id(u.fix) for u in members)
            continue
        _attach(members, edits, safe)
    for unit in _units(findings):  # a fix written only in part (one layer of a chain) is not written
        if id(unit.fix) in failed:
            unit.fix.edits, unit.fix.diff, unit.fix.safe = [], "", False


class SolveError(Exception):
    """No edit in the code's own terms reproduces the proven fix: the fix stays report-only."""


def _attach(members: list[_Unit], edits: list[Edit], safe: bool) -> None:
    """Add the group's edits to each member's fix (a chain fix may belong to several groups)."""
    for fix in {id(u.fix): u.fix for u in members}.values():
        first = not fix.edits
        fix.edits = [*fix.edits, *(e for e in edits if e not in fix.edits)]
        fix.diff = edits_diff(fix.edits)
        fix.safe = safe if first else fix.safe and safe


def edits_diff(edits: list[Edit]) -> str:
    """The edits, applied in order to each file they touch, as one unified diff."""
    by_file: dict[str, list[Edit]] = defaultdict(list)
    for edit in edits:
        by_file[edit.path].append(edit)
    diffs = []
    for path, file_edits in by_file.items():
        before = _read(path)
        diffs.append(unified_diff(display_path(path), before, apply_all(before, file_edits)))
    return "".join(diffs)


def _solve(model: nn.Module, key: tuple, members: list[_Unit], runs: LayerRuns | None = None) -> tuple[list[Edit], bool]:
    validated = all(f.fix.validated for f in members)
    if key[0] == "statement":
        return _statement_edit(model, members), validated and _statement_safe(model, members, runs)
    if key[0] == "project":
        edit, separates = _shortcut_edit(model, members)
        return [edit], validated and separates
    edits, covered = _layer_edits(model, key, members, runs)
    return edits, validated and covered


# -- statement fixes --------------------------------------------------------------------------------------


def _statement_edit(model: nn.Module, members: list[_Unit]) -> list[Edit]:
    first = members[0]
    written = _own_terms(model, members)
    codes = {u.fix.code for u in members}
    if written is None and len(codes) != 1:
        raise SolveError("the instances need different statements, and no one statement in the user's terms gives each its own")
    code = written.text if written is not None else first.fix.code
    return [ReplaceStatement(_abspath(first.path), first.fix.line, first.fix.end_line, code)]


def _own_terms(model: nn.Module, members: list[_Unit]) -> Written | None:
    """The statement written over the user's, their expressions kept (reslint.statement_terms), when the
    join's modules are all of one class whose source holds the line."""
    first = members[0]
    path = _abspath(first.path)
    modules = [_submodule(model, u.module) for u in members]
    if any(m is None for m in modules) or not all(type(m) is type(modules[0]) for m in modules):
        return None
    source = _read(path)
    class_node = _class_node(ast.parse(source), type(modules[0]).__name__)
    if class_node is None or not class_node.lineno <= first.fix.line <= (class_node.end_lineno or 0):
        return None
    return in_own_terms(source, first.fix.line, first.fix.end_line, [u.fix.code for u in members], modules)


def _every_instance(model: nn.Module, members: list[_Unit], method: ast.FunctionDef, statement: ast.stmt) -> bool:
    """The statement runs only in instances that need the fix: every module of the join's class is broken,
    or provably skips the statement (an `if` around it takes the other branch there: reslint.statement_reach).
    A rewritten line runs in all the others, and reslint cannot tell what it does to the right ones."""
    modules = [_submodule(model, u.module) for u in members]
    if any(m is None for m in modules):
        return False
    broken = {id(m) for m in modules}
    cls = type(modules[0])
    shared = getattr(cls, method.name, None)
    runs = [m for m in model.modules() if isinstance(m, cls) and getattr(type(m), method.name, None) is shared]
    return all(id(m) in broken or not runs_statement(m, method, statement) for m in runs)  # subclasses inheriting it too


def _statement_safe(model: nn.Module, members: list[_Unit], runs: LayerRuns | None = None) -> bool:
    """The rewritten statement changes no instance that was right: either it computes what the old one did
    wherever the old one ran (a concat's operand resized to its neighbour's size), or every built instance
    of the join's class is broken (each validated) or, for a pad's amounts reordered, re-run with the new
    line (right ones pad as before: reslint.pad_instances), and no subclass the model does not build runs it with
    something else in place (the issue's "every instance of the class that the linted targets build")."""
    found = _statement_at(model, members)
    if found is None:
        return False
    cls, method, statement, methods = found
    if _neutral_where_it_ran(method, statement, members[0].fix.code):
        return True
    return (_every_instance(model, members, method, statement) or _reordered_pad_safe(model, members, runs, cls, method, statement)) and \
        not _unbuilt_subclass_differs(model, cls, method, statement, methods, _own_terms(model, members))


def _reordered_pad_safe(model: nn.Module, members: list[_Unit], runs: LayerRuns | None, cls: type,
                        method: ast.FunctionDef, statement: ast.stmt) -> bool:
    """A pad's amounts reordered (axes swapped), checked on every instance that ran it (reslint.pad_instances)."""
    reordered = reordered_pad(statement, members[0].fix.code) if runs is not None and len({u.fix.code for u in members}) == 1 else None
    if reordered is None or runs is None:
        return False
    shared = getattr(cls, method.name, None)
    built = {p for p, m in model.named_modules() if isinstance(m, cls) and getattr(type(m), method.name, None) is shared}
    return reordered_pad_safe(runs, members[0].path, statement.lineno, statement.end_lineno or statement.lineno, members[0].line,
                              reordered, {u.module for u in members}, built)


def _statement_at(model: nn.Module, members: list[_Unit]) -> tuple[type, ast.FunctionDef, ast.stmt, dict[str, ast.FunctionDef]] | None:
    """The join's class, the method holding the fixed statement, the statement, the class's methods."""
    modules = [_submodule(model, u.module) for u in members]
    if not modules or any(m is None for m in modules):
        return None
    cls = type(modules[0])
    line = members[0].fix.line
    class_node = _class_node(ast.parse(_read(_abspath(members[0].path))), cls.__name__)
    if class_node is None or not class_node.lineno <= line <= (class_node.end_lineno or line):
        return None
    methods = {f.name: f for f in class_node.body if isinstance(f, ast.FunctionDef)}
    method = next((f for f in methods.values() if f.lineno <= line <= (f.end_lineno or f.lineno)), None)
    if method is None:
        return None
    statement = next((s for s in ast.walk(method) if isinstance(s, ast.stmt) and not hasattr(s, "body")
                      and s.lineno <= line <= (s.end_lineno or s.lineno)), None)
    return (cls, method, statement, methods) if statement is not None else None


def _unbuilt_subclass_differs(model: nn.Module, cls: type, method: ast.FunctionDef, statement: ast.stmt,
                              methods: dict[str, ast.FunctionDef],
                              written: Written | None = None) -> bool:
    """A subclass the model does not build inherits the method and overrides or sets an attribute the method
    reads before the statement or in it (or anywhere in a loop around it), itself or through the methods
    of the class it calls (`class FixedBlock(Block): permute_back = True`):
    it may run the statement on other inputs (already permuted back), where the fix would break it.
    Not when the edit only puts numbers for user expressions that, read from the subclass's own class
    attributes, are those numbers (`planes // d` -> `planes // 4` with `div = 4`): there it computes the same."""
    attributes: set[str] = set()
    # what can reach the statement: itself, what runs before it, and the whole loop it is in
    loops = [n for n in ast.walk(method) if isinstance(n, (ast.For, ast.While)) and any(c is statement for c in ast.walk(n))]
    pending: list[ast.AST] = [statement, *loops, *(n for n in ast.walk(method) if isinstance(n, ast.stmt)
                                                  and n is not method and (n.end_lineno or n.lineno) < statement.lineno)]
    while pending:  # self.<name> read there, through the methods of the class it calls
        for node in ast.walk(pending.pop()):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self" \
                    and node.attr not in attributes:
                attributes.add(node.attr)
                if node.attr in methods:
                    pending.append(methods[node.attr])
    built = {type(m) for m in model.modules()}
    subclasses, seen = list(cls.__subclasses__()), set()
    while subclasses:
        sub = subclasses.pop()
        if sub in seen:
            continue
        seen.add(sub)
        subclasses += sub.__subclasses__()
        between = sub.__mro__[:sub.__mro__.index(cls)]
        overridden = {name for k in between for name in vars(k)}
        if sub in built or method.name in overridden or _same_in(sub, method, written):
            continue
        if overridden & attributes or any(_sets_attribute(k, attributes) for k in between if "__init__" in vars(k)):
            return True
    return False


def _same_in(sub: type, method: ast.FunctionDef, written: Written | None) -> bool:
    """The edited statement computes in `sub` what the user's did: every change is a user expression
    replaced by a number, and that expression, from the subclass's class attributes alone, is that number."""
    if written is None or not written.only_constants or not written.constants:
        return False
    try:
        bare = sub.__new__(sub)  # no __init__: reads see the class attributes only
    except Exception:  # noqa: BLE001
        return False
    for expression, number in written.constants:
        try:
            if value_of(expression, bare, method) != number:
                return False
        except Unknown:
            return False
    return True


def _sets_attribute(cls: type, attributes: set[str]) -> bool:
    """The class's own __init__ assigns one of the attributes (`self.permute_back = True`); unreadable: assume so."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(vars(cls)["__init__"])))
    except (OSError, TypeError, SyntaxError):
        return True
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
        if any(isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self" and t.attr in attributes
               for t in targets):
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr":
            return True
    return False


_INTERPOLATE_OWNERS = ("F", "functional", "nn.functional", "torch.nn.functional")
_CONCATS = ("cat", "concat", "concatenate")


def _neutral_where_it_ran(method: ast.FunctionDef, statement: ast.stmt, code: str) -> bool:
    """The new statement is the old one with concat operands resized, nearest, to another operand's size
    (`torch.cat([a, F.interpolate(b, size=a.shape[2:])], dim=1)`), the other operand maybe first bound to a
    new name (`skip = a`). Wherever the old concat ran, its operands already had one size past the channel
    dim, and a nearest resize to a tensor's own size is that tensor: every instance that was right, built
    or not, computes what it did."""
    try:
        new = ast.parse(textwrap.dedent(code)).body
    except SyntaxError:
        return False
    if not new or any(not isinstance(s, ast.stmt) for s in new):
        return False
    bound: dict[str, ast.expr] = {}
    *hoisted, last = new
    used = {n.id for n in ast.walk(method) if isinstance(n, ast.Name)}
    for assign in hoisted:  # `skip = self.conv_1(x)`: a name the method does not use elsewhere
        if not (isinstance(assign, ast.Assign) and len(assign.targets) == 1 and isinstance(assign.targets[0], ast.Name)):
            return False
        name = assign.targets[0].id
        if name in used or name in bound:
            return False
        bound[name] = _substituted(assign.value, bound)
    last = _substituted(last, bound)
    if any(isinstance(n, ast.Name) and n.id in bound for n in ast.walk(last)):
        return False
    resized = [0]
    restored = _ResizeUndone(resized).visit(last)
    return resized[0] > 0 and ast.dump(restored) == ast.dump(statement)


def _substituted(tree: ast.AST, bound: dict[str, ast.expr]) -> ast.AST:
    class Substitute(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            return copy.deepcopy(bound[node.id]) if node.id in bound and isinstance(node.ctx, ast.Load) else node
    return Substitute().visit(copy.deepcopy(tree))


class _ResizeUndone(ast.NodeTransformer):
    """`cat([a, interpolate(b, size=a.shape[2:])], dim=1)` back to `cat([a, b], dim=1)`; counts the undone."""

    def __init__(self, count: list[int]) -> None:
        self.count = count

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if _call_name(node) not in _CONCATS or not node.args or not isinstance(node.args[0], (ast.List, ast.Tuple)):
            return node
        dims = [k.value for k in node.keywords if k.arg in ("dim", "axis")] + node.args[1:2]
        if len(dims) != 1 or not (isinstance(dims[0], ast.Constant) and dims[0].value == 1) or len(node.args) + len(node.keywords) != 2:
            return node
        items = node.args[0].elts
        for index, item in enumerate(items):
            inner = _nearest_resize_to(item)
            if inner is None:
                continue
            operand, size_of = inner
            if any(i != index and ast.dump(other) == ast.dump(size_of) for i, other in enumerate(items)):
                items[index] = operand
                self.count[0] += 1
        return node


def _nearest_resize_to(node: ast.expr) -> tuple[ast.expr, ast.expr] | None:
    """(b, a) for `F.interpolate(b, size=a.shape[2:])` (no mode: nearest), else None."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "interpolate"
            and ast.unparse(node.func.value) in _INTERPOLATE_OWNERS and len(node.args) == 1
            and len(node.keywords) == 1 and node.keywords[0].arg == "size"):
        return None
    size = node.keywords[0].value
    if not (isinstance(size, ast.Subscript) and isinstance(size.value, ast.Attribute) and size.value.attr == "shape"
            and isinstance(size.slice, ast.Slice) and size.slice.upper is None and size.slice.step is None
            and isinstance(size.slice.lower, ast.Constant) and size.slice.lower.value == 2):
        return None
    return node.args[0], size.value.value


# -- project-skip ---------------------------------------------------------------------------------------------


def _shortcut_edit(model: nn.Module, members: list[_Unit]) -> tuple[Edit, bool]:
    """The projection in the block's parameters, guarded; whether the guard separates the instances."""
    blocks = [_submodule(model, f.module) for f in members]
    records = [record_of(b) if b is not None else None for b in blocks]
    if any(r is None for r in records):
        raise SolveError("a block's constructor arguments were not recorded")
    cls = type(blocks[0])
    path = _abspath(members[0].path)
    if _source_file(cls) != path:
        raise SolveError("the join is not in the block class's file")
    trees = [_normalized(ast.parse(f.fix.code, mode="eval").body) for f in members]
    shapes = {ast.dump(_numbers_erased(t)) for t in trees}
    if len(shapes) != 1:
        raise SolveError("the instances need projections of different forms")
    template = trees[0]
    arguments = [r.arguments for r in records]  # type: ignore[union-attr]
    roles: dict[str, str] = {}
    for holder, field, index, role in _number_slots(template):
        values = [_slot_value(t, holder, field, index) for t in trees]
        expression = _name_for(values, arguments, role) if role else None
        if expression is None and len(set(values)) != 1:
            raise SolveError(f"no constructor parameter gives {values}")
        if expression is not None:
            _set_slot(template, holder, field, index, ast.Name(expression, ast.Load()))
            roles.setdefault(role, expression)
    _drop_unit_stride(template)
    guard = _guard(roles)
    source = _read(path)
    tree = ast.parse(source)
    class_node = _class_node(tree, cls.__name__)
    line, helper = _join_in_class(tree, class_node, members[0].line)
    nn_name = _nn_name(cls)
    projection = ast.unparse(template).replace("nn.", f"{nn_name}.") if nn_name != "nn" else ast.unparse(template)
    identity = f"{nn_name}.Identity()"
    if guard:
        init_code = f"(\n    {projection}\n    if {guard}\n    else {identity}\n)"
    else:
        init_code = projection
    separates = _guard_separates(model, cls, guard, {id(b) for b in blocks})
    transform = members[0].fix.kind == "project-transform"  # the projection goes on the transform's side
    placeholder = None if transform else _identity_on_skip(class_node, line, blocks)
    if placeholder is not None:  # `self.shortcut = nn.Identity()` already sits on the skip: it becomes the projection
        attribute, statement = placeholder
        widened = _widened_condition(model, cls, path, attribute, statement, guard, members, blocks)
        if widened is not None:  # `P if need else nn.Identity()` with the right P: only the condition grows
            return widened
        return ReplaceStatement(path, statement.lineno, statement.end_lineno or statement.lineno,
                                f"self.{attribute} = {init_code}"), separates
    absent = None if transform or not guard else _none_on_skip(class_node, line, blocks)
    if absent is not None:  # `self.downsample = downsample` (None here) is what the join's skip goes through
        attribute, statement, parameter = absent
        fallback = parameter or "None"
        guard_code = f"{parameter} is None and ({guard})" if parameter else guard
        code = f"self.{attribute} = (\n    {projection}\n    if {guard_code}\n    else {fallback}\n)"
        safe = _absent_guard_separates(model, cls, attribute, parameter, guard, {id(b) for b in blocks})
        return ReplaceStatement(path, statement.lineno, statement.end_lineno or statement.lineno, code), safe
    skip = _skip_name(class_node, line, helper, transform)
    attribute = _free_attribute(class_node, blocks, ("out_projection", "projection") if transform else None)
    conditional = _bound_under_branch(class_node, line, skip)  # another configuration feeds another skip
    return AddShortcut(path, cls.__name__, attribute, init_code, line, skip, helper), separates and not conditional


def _bound_under_branch(class_node: ast.ClassDef, line: int, name: str) -> bool:
    """`name` is (re)bound before the join inside an if/loop of its method: the projection is proven for
    the value the lint saw, not for the one the other branch gives."""
    method = next((f for f in class_node.body if isinstance(f, ast.FunctionDef) and f.lineno <= line <= (f.end_lineno or f.lineno)), None)
    if method is None:
        return True
    for branch in ast.walk(method):
        if isinstance(branch, (ast.If, ast.For, ast.While, ast.Try, ast.With)) and branch.lineno < line:
            for node in ast.walk(branch):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
                if getattr(node, "lineno", line) < line and any(isinstance(t, ast.Name) and t.id == name for t in targets):
                    return True
    return False


def _join_in_class(tree: ast.Module, class_node: ast.ClassDef | None, line: int) -> tuple[int, str]:
    """The join's line in the block class, and the helper function it is in ("" for none): a join in
    `def add_skip(out, skip)` is edited at the one place the class calls the helper."""
    if class_node is None:
        raise SolveError("the block class is not in the join's file")
    if class_node.lineno <= line <= (class_node.end_lineno or line):
        return line, ""
    helpers = [f for f in tree.body if isinstance(f, ast.FunctionDef) and f.lineno <= line <= (f.end_lineno or f.lineno)]
    if len(helpers) != 1:
        raise SolveError("the join is not in the block class")
    calls = [c for c in ast.walk(class_node) if isinstance(c, ast.Call) and _call_name(c) == helpers[0].name]
    if len(calls) != 1:
        raise SolveError("the block calls the join's helper more than once")
    return calls[0].lineno, helpers[0].name


def _identity_on_skip(class_node: ast.ClassDef, line: int, blocks: list[nn.Module]) -> tuple[str, ast.stmt] | None:
    """(attribute, its assignment in __init__) when the join's skip is `self.<attribute>(x)` of an input x
    and every block holds an nn.Identity there."""
    method = next((f for f in class_node.body if isinstance(f, ast.FunctionDef) and f.lineno <= line <= (f.end_lineno or f.lineno)), None)
    init = next((f for f in class_node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
    if method is None or init is None or not method.args.args[1:]:
        return None
    inputs = _input_aliases(method, line)
    calls = [c for c in ast.walk(method) if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)
             and isinstance(c.func.value, ast.Name) and c.func.value.id == "self" and len(c.args) == 1
             and isinstance(c.args[0], ast.Name) and c.args[0].id in inputs
             and all(isinstance(getattr(b, c.func.attr, None), nn.Identity) for b in blocks)]
    if len(calls) != 1:
        return None
    attribute = calls[0].func.attr  # type: ignore[attr-defined]
    uses = [n for n in ast.walk(class_node) if isinstance(n, ast.Attribute) and n.attr == attribute
            and isinstance(n.value, ast.Name) and n.value.id == "self"]
    assignments = [n for n in init.body if isinstance(n, ast.Assign) and len(n.targets) == 1
                   and isinstance(n.targets[0], ast.Attribute) and n.targets[0].attr == attribute]
    if len(uses) != 2 or len(assignments) != 1:
        return None  # the attribute serves something else too
    bound = [n for n in ast.walk(method) if isinstance(n, ast.Assign) and n.value is calls[0]
             and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)]
    statement = next((s for s in ast.walk(method) if isinstance(s, ast.stmt) and not hasattr(s, "body")
                      and s.lineno <= line <= (s.end_lineno or s.lineno)), None)
    if statement is None:
        return None
    operands = {n.id for n in ast.walk(statement) if isinstance(n, ast.Name)}
    in_join = any(c is calls[0] for c in ast.walk(statement))
    if not in_join and not (bound and bound[0].targets[0].id in operands):  # type: ignore[attr-defined]
        return None
    return attribute, assignments[0]


def _input_aliases(method: ast.FunctionDef, line: int) -> set[str]:
    """The method's inputs, and names bound once, at the method's top level, to one of them alone
    (`shortcut = x`, before `x` is rebound) and never rebound before the join: each holds the input there."""
    inputs = {a.arg for a in method.args.args[1:]}
    bindings: dict[str, list[ast.AST]] = {}
    for node in ast.walk(method):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For)) \
            else [i.optional_vars for i in node.items if i.optional_vars] if isinstance(node, ast.With) else []
        for target in targets:
            for name in (n.id for n in ast.walk(target) if isinstance(n, ast.Name)):
                if getattr(node, "lineno", line) < line:
                    bindings.setdefault(name, []).append(node)
    aliases = {name for name in inputs if name not in bindings}
    for name, nodes in bindings.items():
        if name not in inputs and len(nodes) == 1 and isinstance(nodes[0], ast.Assign) and len(nodes[0].targets) == 1 \
                and isinstance(nodes[0].targets[0], ast.Name) and isinstance(nodes[0].value, ast.Name) and nodes[0].value.id in inputs \
                and any(nodes[0] is top for top in method.body) \
                and all(other.lineno > nodes[0].lineno for other in bindings.get(nodes[0].value.id, [])):
            aliases.add(name)
    return aliases | inputs


def _widened_condition(model: nn.Module, cls: type, path: str, attribute: str, statement: ast.stmt, guard: str,
                       members: list[_Unit], blocks: list[nn.Module]) -> tuple[Edit, bool] | None:
    """`self.skip = P if COND else nn.Identity()` where the user's own P builds, in every broken block, the
    projection its fix proves: the edit is `P if COND or <guard> else nn.Identity()`, the smallest change a
    maintainer makes. Blocks where COND held keep their P (the expression is unchanged), so the edit is
    safe when, on every instance of the class, the guard holds exactly on the broken ones among those that
    hold an nn.Identity there (what COND was, each instance shows). None when P is not the fix."""
    value = getattr(statement, "value", None)
    if not guard or not isinstance(value, ast.IfExp) or not isinstance(value.orelse, ast.Call) \
            or _call_name(value.orelse) != "Identity":
        return None
    for block, unit in zip(blocks, members):
        record = record_of(block)
        if record is None or not isinstance(getattr(block, attribute, None), nn.Identity):
            return None
        try:
            user = _canonical(value.body, record.arguments)
            proven = _canonical(ast.parse(unit.fix.code, mode="eval").body, {})
        except (SolveError, TypeError, ValueError):
            return None
        if user != proven:
            return None
    source = _read(path)
    read = {n.id for n in ast.walk(value.body) if isinstance(n, ast.Name)} | {n.id for n in ast.walk(ast.parse(guard)) if isinstance(n, ast.Name)}
    init = next((f for f in ast.walk(ast.parse(source)) if isinstance(f, ast.FunctionDef) and f.name == "__init__"
                 and f.lineno <= statement.lineno <= (f.end_lineno or f.lineno)), None)
    if init is None or any(isinstance(t, ast.Name) and t.id in read for n in ast.walk(init) if isinstance(n, (ast.Assign, ast.AugAssign))
                           for t in (n.targets if isinstance(n, ast.Assign) else [n.target])):
        return None  # a name rebound in __init__: its value there is not the argument recorded
    lines = source.splitlines()[statement.lineno - 1:statement.end_lineno or statement.lineno]
    test = value.test
    first, last = test.lineno - statement.lineno, (test.end_lineno or test.lineno) - statement.lineno
    written = ast.get_source_segment(source, test)
    if written is None or test.end_col_offset is None:
        return None
    if isinstance(test, (ast.IfExp, ast.Lambda, ast.NamedExpr)):
        written = f"({written})"
    head = lines[first].encode()[:test.col_offset].decode()
    tail = lines[last].encode()[test.end_col_offset:].decode()
    new_lines = [*lines[:first], f"{head}{written} or {guard}{tail}", *lines[last + 1:]]
    text = "\n".join(new_lines)
    indent = len(lines[0]) - len(lines[0].lstrip())
    code = "\n".join(l[indent:] if l[:indent].strip() == "" else l for l in text.splitlines())
    broken = {id(b) for b in blocks}
    edit = ReplaceStatement(path, statement.lineno, statement.end_lineno or statement.lineno, code)
    code_guard = compile(guard, "<guard>", "eval")
    for module in model.modules():
        if type(module) is not cls:
            continue
        record = record_of(module)
        if record is None:
            return edit, False
        if not isinstance(getattr(module, attribute, None), nn.Identity):
            safe = id(module) not in broken  # COND held: its projection stays as it was
        else:
            safe = _guard_holds(code_guard, record) == (id(module) in broken)
        if not safe:
            return edit, False
    return edit, True


def _canonical(node: ast.expr, names: dict[str, Any]) -> Any:
    """A projection expression as comparable data: torch.nn calls bound to their signatures (positional
    and keyword spellings, defaults filled in), names replaced by the instance's values."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in names:
            raise SolveError(f"{node.id} is not a constructor argument")
        return names[node.id]
    if isinstance(node, (ast.Tuple, ast.List)):
        return tuple(_canonical(e, names) for e in node.elts)
    if isinstance(node, ast.Call):
        layer = getattr(nn, _call_name(node), None)
        if not isinstance(layer, type) or not issubclass(layer, nn.Module) or any(k.arg is None for k in node.keywords) \
                or any(isinstance(a, ast.Starred) for a in node.args):
            raise SolveError("not a torch.nn layer")
        args = [_canonical(a, names) for a in node.args]
        kwargs = {k.arg: _canonical(k.value, names) for k in node.keywords}
        bound = inspect.signature(layer.__init__).bind(None, *args, **kwargs)
        bound.apply_defaults()
        items = [(k, v) for k, v in list(bound.arguments.items())[1:]]
        return (layer.__name__, tuple((k, _plain_same(v)) for k, v in items))
    raise SolveError("an expression reslint does not compare")


def _plain_same(value: Any) -> Any:
    """1 and (1, 1) are the same kernel size or stride."""
    if isinstance(value, tuple) and value and len(set(value)) == 1 and all(type(v) is int for v in value):
        return value[0]
    return value


def _none_on_skip(class_node: ast.ClassDef, line: int, blocks: list[nn.Module]) -> tuple[str, ast.stmt, str] | None:
    """(attribute, its assignment in __init__, the __init__ parameter it is set from or "") when the join's skip
    goes through `self.<attribute>(x)` only when it is not None, it is None in every broken block, and
    __init__ sets it once, from a parameter (`self.downsample = downsample`) or to None.
    The forward must read: `identity = x`, then `identity = self.<attribute>(x)` under a test of
    `self.<attribute>` (an `if` or a conditional expression), and the join adds `identity`."""
    method = next((f for f in class_node.body if isinstance(f, ast.FunctionDef) and f.lineno <= line <= (f.end_lineno or f.lineno)), None)
    init = next((f for f in class_node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
    if method is None or init is None or not method.args.args[1:]:
        return None
    inputs = {a.arg for a in method.args.args[1:]}
    statement = next((s for s in ast.walk(method) if isinstance(s, ast.stmt) and not hasattr(s, "body")
                      and s.lineno <= line <= (s.end_lineno or s.lineno)), None)
    if statement is None:
        return None
    operands: list[ast.expr] = []
    for node in ast.walk(statement):
        if isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add):
            operands += [node.target, node.value]
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            operands += [node.left, node.right]
    names = {o.id for o in operands if isinstance(o, ast.Name)}

    def guarded_calls(tree: ast.AST) -> list[tuple[str, ast.Assign]]:
        """(attribute, assignment) for `n = self.<attribute>(input)` under an `if` that tests self.<attribute>."""
        found = []
        for node in ast.walk(tree):
            if not isinstance(node, ast.If):
                continue
            tested = {n.attr for n in ast.walk(node.test) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "self"}
            for child in node.body:
                if isinstance(child, ast.Assign) and len(child.targets) == 1 and isinstance(child.targets[0], ast.Name) \
                        and isinstance(child.value, ast.Call) and isinstance(child.value.func, ast.Attribute) \
                        and isinstance(child.value.func.value, ast.Name) and child.value.func.value.id == "self" \
                        and child.value.func.attr in tested and len(child.value.args) == 1 \
                        and isinstance(child.value.args[0], ast.Name) and child.value.args[0].id in inputs:
                    found.append((child.value.func.attr, child))
        return found

    candidates = [(attr, assign) for attr, assign in guarded_calls(method) if assign.targets[0].id in names  # type: ignore[attr-defined]
                  and all(getattr(b, attr, 0) is None for b in blocks)]
    if len(candidates) != 1:
        return None
    attribute, guarded = candidates[0]
    skip = guarded.targets[0].id  # type: ignore[attr-defined]
    bindings = [n for n in ast.walk(method) if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and n is not guarded
                and any(isinstance(t, ast.Name) and t.id == skip for t in (n.targets if isinstance(n, ast.Assign) else [n.target]))]
    if len(bindings) != 1 or not isinstance(bindings[0], ast.Assign) or not isinstance(bindings[0].value, ast.Name) \
            or bindings[0].value.id not in inputs or bindings[0].lineno > guarded.lineno:
        return None  # the skip is the input itself, or its projection, and nothing else
    uses = [n for n in ast.walk(class_node) if isinstance(n, ast.Attribute) and n.attr == attribute
            and isinstance(n.value, ast.Name) and n.value.id == "self" and isinstance(n.ctx, ast.Store)]
    assignments = [n for n in init.body if isinstance(n, ast.Assign) and len(n.targets) == 1
                   and isinstance(n.targets[0], ast.Attribute) and n.targets[0].attr == attribute
                   and isinstance(n.targets[0].value, ast.Name) and n.targets[0].value.id == "self"]
    if len(uses) != 1 or len(assignments) != 1:
        return None  # set elsewhere too
    value = assignments[0].value
    parameters = {a.arg: d for a, d in zip(init.args.args[::-1], init.args.defaults[::-1])}
    parameters.update({a.arg: d for a, d in zip(init.args.kwonlyargs, init.args.kw_defaults) if d is not None})
    if isinstance(value, ast.Constant) and value.value is None:
        return attribute, assignments[0], ""
    if isinstance(value, ast.Name) and value.id in parameters and isinstance(parameters[value.id], ast.Constant) \
            and parameters[value.id].value is None:  # type: ignore[attr-defined]
        if any(isinstance(n, (ast.Assign, ast.AugAssign)) and any(isinstance(t, ast.Name) and t.id == value.id
               for t in (n.targets if isinstance(n, ast.Assign) else [n.target])) for n in ast.walk(init)):
            return None  # the parameter is rebound before it is stored
        return attribute, assignments[0], value.id
    return None


def _absent_guard_separates(model: nn.Module, cls: type, attribute: str, parameter: str, guard: str, broken: set[int]) -> bool:
    """Safe when, on every instance of the class, the projection is built exactly on the broken ones: where
    the attribute is None (and the parameter was None) the guard must hold iff the block is broken; a block
    given a module keeps it (the edit passes it through)."""
    code = compile(guard, "<guard>", "eval")
    for module in model.modules():
        if type(module) is not cls:
            continue
        record = record_of(module)
        if record is None:
            return False
        if getattr(module, attribute, None) is not None:
            if id(module) in broken:
                return False
            continue
        if parameter and (parameter not in record.arguments or record.arguments[parameter] is not None):
            return False  # a None stored from something else than the parameter: not the case the edit covers
        if _guard_holds(code, record) != (id(module) in broken):
            return False
    return True


def _guard_holds(code, record: Record) -> bool | None:
    """The guard's value on one instance's constructor arguments; None when it cannot be evaluated."""
    try:
        return bool(eval(code, {"__builtins__": {}}, dict(record.arguments)))  # names and ints we wrote
    except Exception:  # noqa: BLE001
        return None


def _normalized(tree: ast.expr) -> ast.expr:
    """Every conv in the projection spells its stride (1 when it has none), so instances compare."""
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and _call_name(call).startswith("Conv") and not any(k.arg == "stride" for k in call.keywords):
            position = next((i for i, k in enumerate(call.keywords) if k.arg == "kernel_size"), -1) + 1
            call.keywords.insert(position, ast.keyword("stride", ast.Constant(1)))
    return tree


def _drop_unit_stride(tree: ast.expr) -> None:
    for call in ast.walk(tree):
        if isinstance(call, ast.Call):
            call.keywords = [k for k in call.keywords if not (k.arg == "stride" and isinstance(k.value, ast.Constant) and k.value.value == 1)]


def _numbers_erased(tree: ast.expr) -> ast.expr:
    copy = ast.parse(ast.unparse(tree), mode="eval").body
    for node in ast.walk(copy):
        if isinstance(node, ast.Constant) and type(node.value) is int:
            node.value = 0
    return copy


def _number_slots(tree: ast.expr) -> list[tuple[tuple, str, int, str | None]]:
    """(path to the call, 'args'/'kw', index, role) for each integer of the projection's calls."""
    slots = []
    for call_path, call in _calls_with_paths(tree):
        name = _call_name(call)
        for index, arg in enumerate(call.args):
            if isinstance(arg, ast.Constant) and type(arg.value) is int:
                role = ("in" if index == 0 else "out") if name.startswith(("Conv", "Linear")) else "out"
                slots.append((call_path, "args", index, role))
        for index, keyword in enumerate(call.keywords):
            if isinstance(keyword.value, ast.Constant) and type(keyword.value.value) is int:
                role = {"stride": "stride", "num_channels": "out", "normalized_shape": "out"}.get(keyword.arg or "")
                slots.append((call_path, "kw", index, role))  # kernel_size, groups: kept as written
    return slots


def _calls_with_paths(tree: ast.expr, path: tuple = ()) -> list[tuple[tuple, ast.Call]]:
    found = []
    if isinstance(tree, ast.Call):
        found.append((path, tree))
        for index, arg in enumerate(tree.args):
            found.extend(_calls_with_paths(arg, (*path, index)))
    return found


def _call_at(tree: ast.expr, path: tuple) -> ast.Call:
    for index in path:
        tree = tree.args[index]  # type: ignore[attr-defined]
    return tree  # type: ignore[return-value]


def _slot_value(tree: ast.expr, path: tuple, field: str, index: int) -> int:
    call = _call_at(tree, path)
    node = call.args[index] if field == "args" else call.keywords[index].value
    return node.value  # type: ignore[attr-defined]


def _set_slot(tree: ast.expr, path: tuple, field: str, index: int, value: ast.expr) -> None:
    call = _call_at(tree, path)
    if field == "args":
        call.args[index] = value
    else:
        call.keywords[index].value = value


def _name_for(values: list[Any], scopes: list[dict[str, Any]], role: str) -> str | None:
    """A name every scope has, whose value is the wanted one in each; the one named like the role first."""
    names = [n for n in scopes[0] if all(n in s and _same(s[n], v) for s, v in zip(scopes, values))]
    if not names:
        return None
    hints = _HINTS.get(role, ())
    ranked = sorted(names, key=lambda n: (
        not any(h in n.lower() for h in hints),
        role == "out" and any(h in n.lower() for h in _HINTS["in"]) and not n.lower().startswith(_HINTS["out"]),
        list(scopes[0]).index(n) * (-1 if role == "out" else 1),
    ))
    return ranked[0]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    norm = lambda v: v[0] if isinstance(v, tuple) and v and len(set(v)) == 1 else v  # noqa: E731
    return norm(a) == norm(b)


def _guard(roles: dict[str, str]) -> str:
    parts = []
    if "stride" in roles:
        parts.append(f"{roles['stride']} != 1")
    if "in" in roles and "out" in roles and roles["in"] != roles["out"]:
        parts.append(f"{roles['in']} != {roles['out']}")
    return " or ".join(parts)


def _guard_separates(model: nn.Module, cls: type, guard: str, broken: set[int]) -> bool:
    """The guard holds on exactly the broken instances of the class (every other one gets nn.Identity)."""
    if not guard:
        return all(id(m) in broken for m in model.modules() if type(m) is cls)
    code = compile(guard, "<guard>", "eval")
    for module in model.modules():
        if type(module) is not cls:
            continue
        record = record_of(module)
        if record is None or _guard_holds(code, record) != (id(module) in broken):
            return False
    return True


def _skip_name(class_node: ast.ClassDef, line: int, helper: str = "", transform: bool = False) -> str:
    """The name the join adds as its skip: the method's input, or a name bound to it (`identity = x`)."""
    method = next(
        (f for f in class_node.body if isinstance(f, ast.FunctionDef) and f.lineno <= line <= (f.end_lineno or f.lineno)), None
    )
    if method is None:
        raise SolveError("the join is not in a method")
    inputs = {a.arg for a in method.args.args[1:]}
    aliases = set(inputs)
    for node in ast.walk(method):
        if isinstance(node, ast.Assign) and node.lineno < line and isinstance(node.value, ast.Name) and node.value.id in aliases:
            aliases |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    reassigned = {t.id for n in ast.walk(method) if isinstance(n, (ast.Assign, ast.AugAssign)) and n.lineno < line
                  for t in ([n.target] if isinstance(n, ast.AugAssign) else n.targets) if isinstance(t, ast.Name)
                  if not (isinstance(n, ast.Assign) and isinstance(n.value, ast.Name) and n.value.id in aliases)}
    statement = next((s for s in ast.walk(method) if isinstance(s, ast.stmt) and not isinstance(s, ast.FunctionDef)
                      and s.lineno <= line <= (s.end_lineno or s.lineno) and not hasattr(s, "body")), None)
    if statement is None:
        raise SolveError("no statement at the join")
    operands: list[ast.expr] = []
    for node in ast.walk(statement):
        if isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add):
            operands += [node.value]
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            operands += [node.left, node.right]
        elif isinstance(node, ast.Call) and _call_name(node) in ("add", "add_", *([helper] if helper else [])):
            operands += node.args[:2]
    if transform:  # the other operand: a name not bound to the input or to `self.<layer>(input)`
        from_input = aliases | {t.id for n in ast.walk(method) if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call)
                                and isinstance(n.value.func, ast.Attribute) and isinstance(n.value.func.value, ast.Name)
                                and n.value.func.value.id == "self" and len(n.value.args) == 1
                                and isinstance(n.value.args[0], ast.Name) and n.value.args[0].id in aliases
                                for t in n.targets if isinstance(t, ast.Name)}
        others = [o.id for o in operands if isinstance(o, ast.Name) and o.id not in from_input]
        if len(operands) != 2 or len(others) != 1:
            raise SolveError("cannot tell which operand is the transform")
        return others[0]
    names = [o.id for o in operands if isinstance(o, ast.Name) and o.id in aliases and o.id not in reassigned]
    if len(set(names)) != 1:
        raise SolveError("cannot tell which operand is the skip")
    return names[0]


def _free_attribute(class_node: ast.ClassDef, blocks: list[nn.Module], names: tuple[str, ...] | None = None) -> str:
    used = {n.attr for n in ast.walk(class_node) if isinstance(n, ast.Attribute)}
    for name in names or ("shortcut", "downsample", "skip_projection"):
        if name not in used and not any(hasattr(b, name) for b in blocks):
            return name
    raise SolveError("no free attribute name for the projection")


# -- layer fixes ----------------------------------------------------------------------------------------------


def _layer_changes(fix: Fix) -> list[tuple[str, str]]:
    """(module path, constructor code) per layer the fix changes (a chain fix names several: `a.b = nn.X(...)`)."""
    lines = [line for line in fix.code.splitlines() if line.strip()]
    if len(lines) == 1 and " = " not in lines[0]:
        return [(fix.module, lines[0])]
    changes = []
    for line in lines:
        path, _, code = line.partition(" = ")
        changes.append((path.strip(), code.strip()))
    return changes


def _layer_edits(model: nn.Module, key: tuple, members: list[_Unit], runs: LayerRuns | None = None) -> tuple[list[Edit], bool]:
    """The changed arguments of the call that made the layers, each a name whose value there is what
    every instance made at that call needs: the fix's number for the broken ones and the layers made
    alike (validated with it: `_alike_get_it`), its own for the rest."""
    _, site, cls = key
    if len(site) != 3 or cls is None:
        raise SolveError("the layer's constructor call was not recorded")
    site_path, site_line, site_column = site
    replaced = _replacement(model, cls, site, members)
    if replaced is not None:
        return replaced
    needed: dict[int, dict[str, Any]] = {}  # id(layer) -> the arguments its fix gives it
    for unit in members:
        for path, code in _layer_changes(unit.fix):
            layer = _submodule(model, path)
            if layer is not None and type(layer) is cls:
                needed[id(layer)] = _bound(cls, code, record_of(layer))
    at_site = [m for m in model.modules() if type(m) is cls and (r := record_of(m)) is not None
               and site_of(r) == site]
    records: list[Record] = [record_of(m) for m in at_site]  # type: ignore[misc]
    if not needed or not all(id(m) in {id(a) for a in at_site} for m in model.modules() if id(m) in needed):
        raise SolveError("a fixed layer was not made at the call")
    covered = _alike_get_it(model, cls, at_site, records, needed, runs) if runs is not None else True
    parameters = list(inspect.signature(cls.__init__).parameters)[1:]
    changed = {name for m, r in zip(at_site, records) if id(m) in needed
               for name, value in needed[id(m)].items() if name in r.arguments and not _same(r.arguments[name], value)}
    changed = sorted(changed, key=parameters.index)
    edits: list[Edit] = []
    for name in changed:
        wanted = [needed[id(m)].get(name, r.arguments.get(name)) if id(m) in needed else r.arguments.get(name)
                  for m, r in zip(at_site, records)]
        lifted = lift_to_caller(model, cls, name, at_site, records, wanted, _same)  # fixed where the value comes from
        if lifted is not None:
            edits += [e for e in lifted if e not in edits]
            continue
        scopes = [r.site_names for r in records]
        expression = _name_for(wanted, scopes, name) if not any(isinstance(w, bool) for w in wanted) else None
        if expression is None and len({repr(w) for w in wanted}) > 1:
            current = [r.arguments.get(name) for r in records]
            expression = guarded_argument(site, cls, name, parameters, wanted, current, scopes)
            if expression is None:
                raise SolveError(f"no name at the call gives {name} for every instance made there")
        if expression is None:
            if not plain(wanted[0]):
                raise SolveError(f"{name} is not a value to write")
            expression = repr(wanted[0])
        default = inspect.signature(cls.__init__).parameters[name].default
        is_default = default is not inspect.Parameter.empty and expression == repr(default)  # `nn.ReLU()`, not `nn.ReLU(inplace=False)`
        edits.append(SetArgument(site_path, site_line, cls.__name__, parameters.index(name), name, expression,
                                 occurrence_of(site_path, site_line, site_column, cls.__name__), is_default))
    if not edits:
        raise SolveError("nothing to change")
    return edits, covered


def _alike_get_it(model: nn.Module, cls: type, at_site: list[nn.Module], records: list[Record],
                  needed: dict[int, dict[str, Any]], runs: LayerRuns) -> bool:
    """The fix was validated with every layer made alike at the call (same settings) changed the same way
    (reslint.size_fixes): `down2.pool` beside the broken `down1.pool`. They get it in `needed` too, so the
    edit is what was validated. Whether that leaves right what was right: a layer the lint proved right
    (it ran on the model's own values) must compute at its inputs what it did; one that ran only after a
    failure (on a substitute) was never proven right, and the validation is its proof."""
    from reslint.size_fixes import _made_alike  # the validation's own notion of "made alike"

    paths = {id(m): p for p, m in model.named_modules()}
    fixed = [(m, r) for m, r in zip(at_site, records) if id(m) in needed]
    safe = True
    for module, record in zip(at_site, records):
        path = paths.get(id(module), "")
        if id(module) in needed or not runs.ran(path):
            continue  # a layer that never ran was not changed by the validation: it keeps its own value
        like = next((r for m, r in fixed if _made_alike(module, m)), None)
        if like is None:
            continue
        fix = needed[next(id(m) for m, r in fixed if r is like)]
        change = {n: v for n, v in fix.items() if n in like.arguments and not _same(like.arguments[n], v)}
        needed[id(module)] = arguments = {**record.arguments, **change}
        if runs.proven(path):
            changed = with_settings(module, cls, arguments)
            shapes = runs.input_shapes(path)
            if changed is None or shapes is None or not unchanged_at_inputs(module, changed, shapes):
                safe = False
    return safe


def _replacement(model: nn.Module, cls: type, site: tuple, members: list[_Unit]) -> tuple[list[Edit], bool] | None:
    """A fix that makes the layer another class (`nn.Identity()` for a pooling that should not be there):
    the call is replaced, when every layer made there gets that same fix (else None: not this case)."""
    codes = {code for unit in members for path, code in _layer_changes(unit.fix)
             if (layer := _submodule(model, path)) is not None and type(layer) is cls}
    if not codes:
        return None
    calls = [ast.parse(code, mode="eval").body for code in codes]
    if all(isinstance(c, ast.Call) and _call_name(c) == cls.__name__ for c in calls):
        return None
    if len(codes) != 1:
        raise SolveError("the layers made at one call need different replacements")
    fixed = {id(layer) for unit in members for path, _ in _layer_changes(unit.fix)
             if (layer := _submodule(model, path)) is not None and type(layer) is cls}
    made_there = [m for m in model.modules() if type(m) is cls and (r := record_of(m)) is not None
                  and site_of(r) == site]
    every = bool(made_there) and all(id(m) in fixed for m in made_there)
    code = codes.pop()
    owner = record_of(made_there[0]).site_owner if made_there else None  # type: ignore[union-attr]
    nn_name = _nn_name(owner) if owner is not None else "nn"
    if nn_name != "nn":
        code = code.replace("nn.", f"{nn_name}.")
    return [ReplaceCall(site[0], site[1], cls.__name__, code, occurrence_of(site[0], site[1], site[2], cls.__name__))], every


def _bound(cls: type, code: str, record: Record | None = None) -> dict[str, Any]:
    """The constructor arguments the fix's code gives the layer. What it leaves out is the default
    (`stride` 1), except a None default (`AvgPool2d`'s stride: "the kernel size"): the layer keeps what
    it was made with there, so the user's positional arguments stay as written."""
    call = ast.parse(code, mode="eval").body
    if not isinstance(call, ast.Call):
        raise SolveError("not a constructor call")
    args = [ast.literal_eval(a) for a in call.args]
    kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
    signature = inspect.signature(cls.__init__)
    bound = signature.bind(None, *args, **kwargs)
    given = set(bound.arguments)
    bound.apply_defaults()
    made_with = record.arguments if record is not None else {}
    return {name: (made_with[name] if name not in given and value is None and name in made_with else value)
            for name, value in list(bound.arguments.items())[1:] if not name.startswith(("*",)) and name not in ("args", "kwargs")}


# -- helpers --------------------------------------------------------------------------------------------------


def _submodule(model: nn.Module, path: str) -> nn.Module | None:
    try:
        return model.get_submodule(path) if path else model
    except AttributeError:
        return None


def _abspath(path: str) -> str:
    return os.path.abspath(path)


def _source_file(cls: type) -> str | None:
    try:
        return os.path.abspath(inspect.getsourcefile(cls) or "")
    except TypeError:
        return None


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _class_node(tree: ast.Module, name: str) -> ast.ClassDef | None:
    found = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == name]
    return found[0] if len(found) == 1 else None


def _nn_name(cls: type) -> str:
    """How the class's module spells torch.nn: `nn` (or its alias), else `torch.nn`."""
    namespace = vars(sys.modules.get(cls.__module__) or object)
    for name, value in namespace.items():
        if value is nn:
            return name
    return "torch.nn"


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
