"""A layer's wrong argument fixed where its value comes from: the caller that passed it.

`self.conv = nn.Conv2d(cin, growth, 3, stride=stride)` is right as written; the DenseNet that builds
`DenseLayer(..., s) for i, s in enumerate(strides)` with `strides = [1, 1, 2, 1]` is not. When the
layer's argument is an expression of one parameter `p` of the block that made the layer (and `p` serves
nothing else in that `__init__`), the edit goes one level up, to the call that made each block:

  - `p`'s argument there is a name drawn from a literal list (`for s in strides`, `enumerate(strides)`,
    `zip(...)`): the list's wrong elements change (`[1, 1, 2, 1]` -> `[1, 1, 1, 1]`);
  - else a name of the calling scope that gives every block made there a right value (`out_dim=dim`);
  - else one literal that does (`stride=1`).

When neither the layer's call nor its block's caller has one expression that gives every layer made
there its value, the layer's argument becomes guarded (`guarded_argument`): `2 if dilation == 2 else 1`,
keeping the user's expression for the layers that were right.

A value is right for a block when the layer's own expression, evaluated with it, gives the layer the
number its proven fix needs (or, for a block whose layer was right, the number it has). Each block made
at the call is checked, so the blocks that were right keep their layers as they are.
"""

from __future__ import annotations

import ast
import inspect
import os
from typing import Any, Callable

from torch import nn

from reslint.constructor_args import Record, plain, record_of, site_of
from reslint.edits import Edit, SetArgument, SetElement

_SAFE_NODES = (ast.Expression, ast.Name, ast.Load, ast.Constant, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare,
               ast.IfExp, ast.Tuple, ast.operator, ast.unaryop, ast.boolop, ast.cmpop)
_RESLINT_DIR = os.path.dirname(os.path.abspath(__file__))


def lift_to_caller(model: nn.Module, cls: type, parameter: str, layers: list[nn.Module], records: list[Record],
                   wanted: list[Any], same: Callable[[Any, Any], bool]) -> list[Edit] | None:
    """Edits at the blocks' creating calls that give each layer made at one call its wanted `parameter`,
    or None when the value does not come from a block parameter (the layer's own call is then edited)."""
    site_path, site_line, site_column = site_of(records[0])
    found = call_argument(site_path, site_line, cls.__name__, parameter, _parameters(cls), site_column)
    owner_cls = records[0].site_owner
    if found is None or found[1] is None or owner_cls is None or any(r.site_owner is not owner_cls for r in records):
        return None
    _, expression, function = found
    names = {n.id for n in ast.walk(expression) if isinstance(n, ast.Name)}
    owner_parameters = _parameters(owner_cls)
    # the block parameter that serves only this argument (others, like `dim` in `out_dim or dim`, serve
    # more layers: changing them would change more than this one)
    lifted = [n for n in names if n in owner_parameters and _loads(function, n) == 1 and not _stores(function, n)]
    if len(lifted) != 1 or not all(isinstance(n, _SAFE_NODES) for n in ast.walk(expression)):
        return None
    p = lifted[0]
    code = compile(ast.Expression(expression), "<argument>", "eval")

    def value(record: Record, candidate: Any) -> Any:
        return eval(code, {"__builtins__": {}}, {**record.site_names, p: candidate})  # the user's own arithmetic

    owners = _owners(model, layers, owner_cls)
    if owners is None:
        return None
    by_site: dict[tuple[str, int, int], list[tuple[nn.Module, Record, Any]]] = {}
    for owner, record, want in zip(owners, records, wanted):
        owner_record = record_of(owner)
        if owner_record is None or p not in owner_record.arguments or not _user_file(owner_record.site_path):
            return None
        try:
            if not same(value(record, owner_record.arguments[p]), record.arguments.get(parameter)):
                return None  # the expression does not explain the layer's value: not what we think it is
        except Exception:  # noqa: BLE001
            return None
        by_site.setdefault(site_of(owner_record), []).append((owner, record, want))
    for key, members in by_site.items():  # every block made at the call must be among them
        made_there = [m for m in model.modules() if type(m) is owner_cls and (r := record_of(m)) and site_of(r) == key]
        if len(made_there) != len(members):
            return None

    def right(record: Record, want: Any, candidate: Any) -> bool:
        try:
            return same(value(record, candidate), want)
        except Exception:  # noqa: BLE001
            return False

    edits: list[Edit] = []
    default = inspect.signature(owner_cls.__init__).parameters[p].default
    for (path, line, column), members in by_site.items():
        members.sort(key=lambda m: record_of(m[0]).order)  # type: ignore[union-attr]
        checks = [(record_of(o), lambda c, r=r, w=w: right(r, w, c)) for o, r, w in members]
        literals = [w for _, _, w in members] + ([default] if default is not inspect.Parameter.empty else []) + [None]
        site_edits = _edit_at_call(path, line, column, owner_cls.__name__, p, owner_parameters, checks, literals, default)
        if site_edits is None:
            return None
        edits += site_edits
    return edits


def _edit_at_call(path: str, line: int, column: int, callee: str, p: str, parameters: list[str],
                  checks: list[tuple[Record, Callable[[Any], bool]]], literals: list[Any], default: Any) -> list[Edit] | None:
    """The edit at one call that made blocks: a list element, a name, a literal (none: the default)."""
    found = call_argument(path, line, callee, p, parameters, column)
    if found is None:
        return None
    _, argument, function = found
    if argument is not None and all(ok(r.arguments[p]) for r, ok in checks):
        return None  # already right here: the bug is not at this call
    if isinstance(argument, ast.Name):
        elements = _list_elements(function, argument.id, [r for r, _ in checks], p, checks, literals)
        if elements is not None:
            return elements
    scopes = [r.site_names for r, _ in checks]
    names = [n for n in scopes[0] if all(n in s and ok(s[n]) for s, (_, ok) in zip(scopes, checks))]
    names.sort(key=lambda n: (n != p, p not in n and n not in p))
    if names:
        return [SetArgument(path, line, callee, parameters.index(p), p, names[0], occurrence_of(path, line, column, callee))]
    for literal in literals:
        if plain(literal) and all(ok(literal) for _, ok in checks):
            is_default = literal is default or (type(literal) is type(default) and literal == default)
            return [SetArgument(path, line, callee, parameters.index(p), p, repr(literal), occurrence_of(path, line, column, callee), is_default)]
    return None


def _list_elements(function: ast.AST, name: str, owner_records: list[Record], p: str,
                   checks: list[tuple[Record, Callable[[Any], bool]]], literals: list[Any]) -> list[Edit] | None:
    """`name` iterates a literal list of the same function: the edits of its wrong elements."""
    loop = _loop_over(function, name)
    if loop is None:
        return None
    list_name, index_name = loop
    assigns = [n for n in ast.walk(function) if isinstance(n, ast.Assign) and len(n.targets) == 1
               and isinstance(n.targets[0], ast.Name) and n.targets[0].id == list_name]
    if len(assigns) != 1 or _stores(function, list_name) != 1 or _loads(function, list_name) != 1:
        return None
    literal = assigns[0].value
    if not isinstance(literal, (ast.List, ast.Tuple)) or not all(isinstance(e, ast.Constant) for e in literal.elts):
        return None
    if index_name is not None:
        indices = [r.site_names.get(index_name) for r in owner_records]
    else:
        indices = list(range(len(owner_records)))  # made in the loop's order
        if len(indices) != len(literal.elts):
            return None
    if sorted(i for i in indices if isinstance(i, int)) != list(range(len(literal.elts))):
        return None
    edits: list[Edit] = []
    for index, (record, ok) in zip(indices, checks):
        current = literal.elts[index].value  # type: ignore[attr-defined]
        if current != record.arguments[p]:
            return None
        if ok(current):
            continue
        fixed = next((v for v in literals if plain(v) and ok(v)), None)
        if fixed is None:
            return None
        edits.append(SetElement(os.path.abspath(_file_of(function)), assigns[0].lineno, list_name, index, repr(fixed)))
    return edits or None


def _loop_over(function: ast.AST, name: str) -> tuple[str, str | None] | None:
    """(list name, index name or None) when `name` is a loop target over a named list."""
    for node in ast.walk(function):
        if not isinstance(node, (ast.comprehension, ast.For)):
            continue
        target, iterable = node.target, node.iter
        if isinstance(target, ast.Name) and target.id == name and isinstance(iterable, ast.Name):
            return iterable.id, None
        if not (isinstance(target, ast.Tuple) and isinstance(iterable, ast.Call) and isinstance(iterable.func, ast.Name)):
            continue
        slots = [e.id if isinstance(e, ast.Name) else None for e in target.elts]
        if name not in slots:
            continue
        position = slots.index(name)
        if iterable.func.id == "enumerate" and len(slots) == 2 and position == 1 and iterable.args and isinstance(iterable.args[0], ast.Name):
            return iterable.args[0].id, slots[0]
        if iterable.func.id == "zip" and position < len(iterable.args) and isinstance(iterable.args[position], ast.Name):
            return iterable.args[position].id, None
    return None


# -- where things are ---------------------------------------------------------------------------------------

_TREES: dict[str, tuple[float, ast.Module]] = {}


def _tree(path: str) -> ast.Module | None:
    try:
        stamp = os.path.getmtime(path)
        if path not in _TREES or _TREES[path][0] != stamp:
            with open(path, encoding="utf-8") as handle:
                tree = ast.parse(handle.read())
            for node in ast.walk(tree):
                node._reslint_file = path  # type: ignore[attr-defined]
            _TREES[path] = (stamp, tree)
        return _TREES[path][1]
    except (OSError, SyntaxError, ValueError):
        return None


def _file_of(node: ast.AST) -> str:
    return getattr(node, "_reslint_file", "")


def call_argument(path: str, line: int, callee: str, parameter: str, parameters: list[str], column: int = -1
                  ) -> tuple[ast.Call, ast.expr | None, ast.AST] | None:
    """The call of `callee` at `line`, the expression it passes for `parameter` (None: not passed), and
    the function around it; None when there is no such call or it passes *args/**kwargs."""
    tree = _tree(path)
    if tree is None:
        return None
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _name(n.func) == callee
             and n.lineno <= line <= (n.end_lineno or n.lineno)]
    if column >= 0:
        calls = [c for c in calls if (c.lineno, c.col_offset) == (line, column)]
    if not calls:
        return None
    call = min(calls, key=lambda c: (c.end_lineno or c.lineno) - c.lineno)
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        return None
    argument = next((k.value for k in call.keywords if k.arg == parameter), None)
    if argument is None and parameter in parameters and parameters.index(parameter) < len(call.args):
        argument = call.args[parameters.index(parameter)]
    functions = [f for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                 and f.lineno <= call.lineno and call.lineno <= (f.end_lineno or f.lineno)]
    function = max(functions, key=lambda f: f.lineno) if functions else tree
    return call, argument, function


def occurrence_of(path: str, line: int, column: int, callee: str) -> int:
    """Which call of `callee` starting on `line` starts at `column`, left to right (-1: unknown)."""
    tree = _tree(path)
    if tree is None or column < 0:
        return -1
    starts = sorted(c.col_offset for c in ast.walk(tree) if isinstance(c, ast.Call) and _name(c.func) == callee and c.lineno == line)
    return starts.index(column) if column in starts else -1


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _parameters(cls: type) -> list[str]:
    try:
        return [n for n, q in inspect.signature(cls.__init__).parameters.items()
                if q.kind in (q.POSITIONAL_OR_KEYWORD, q.KEYWORD_ONLY)][1:]
    except (TypeError, ValueError):
        return []


def _loads(function: ast.AST, name: str) -> int:
    return sum(1 for n in ast.walk(function) if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load))


def _stores(function: ast.AST, name: str) -> int:
    return sum(1 for n in ast.walk(function) if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, (ast.Store, ast.Del)))


def _owners(model: nn.Module, layers: list[nn.Module], owner_cls: type) -> list[nn.Module] | None:
    """Each layer's nearest enclosing module of the class whose __init__ made it (one layer each)."""
    paths = {id(m): p for p, m in model.named_modules(remove_duplicate=False)}
    owners = []
    for layer in layers:
        path = paths.get(id(layer))
        if path is None:
            return None
        parts = path.split(".")
        owner = next((o for k in range(len(parts) - 1, -1, -1)
                      if type(o := model.get_submodule(".".join(parts[:k]))) is owner_cls), None)
        if owner is None:
            return None
        owners.append(owner)
    return owners if len({id(o) for o in owners}) == len(owners) else None


def _user_file(path: str) -> bool:
    path = os.path.abspath(path or "")
    parts = path.split(os.sep)
    return os.path.isfile(path) and not path.startswith(_RESLINT_DIR + os.sep) and "site-packages" not in parts and "dist-packages" not in parts


def guarded_argument(site: tuple[str, int, int], cls: type, parameter: str, parameters: list[str], wanted: list[Any],
                     current: list[Any], scopes: list[dict[str, Any]]) -> str | None:
    """`<new> if <name> == <value> else <the user's expression>`: the layers made at the call that need
    the new value are exactly those where a name of the calling scope has one value, and the others
    keep what they have. None when no such name or more than one new value."""
    changed = [i for i, (w, c) in enumerate(zip(wanted, current)) if repr(w) != repr(c)]
    new_values = {repr(wanted[i]) for i in changed}
    if not changed or len(new_values) != 1 or not plain(wanted[changed[0]]):
        return None
    found = call_argument(site[0], site[1], cls.__name__, parameter, parameters, site[2])
    if found is None:
        return None
    call, argument, _ = found
    tree = _tree(site[0])
    source = ast.get_source_segment(_source_of(site[0]), argument) if argument is not None and tree is not None else None
    if argument is not None and source is None:
        return None
    kept = source if source is not None else repr(current[[i for i in range(len(wanted)) if i not in changed][0]]) \
        if len(changed) < len(wanted) else None
    if kept is None:
        return None
    needs = set(changed)
    for name in scopes[0]:
        values = [s.get(name, _MISSING) for s in scopes]
        chosen = {repr(values[i]) for i in needs}
        if len(chosen) != 1 or any(v is _MISSING for v in values) or isinstance(values[changed[0]], (str, tuple)):
            continue
        marker = values[changed[0]]
        if all((repr(v) == repr(marker)) == (i in needs) for i, v in enumerate(values)):
            if isinstance(argument, (ast.IfExp, ast.BoolOp, ast.Lambda)):
                kept = f"({kept})"
            condition = (name if marker is True else f"not {name}" if marker is False
                         else f"{name} is None" if marker is None else f"{name} == {marker!r}")
            return f"{wanted[changed[0]]!r} if {condition} else {kept}"
    return None


_MISSING = object()


def _source_of(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()
