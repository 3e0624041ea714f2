"""Whether one instance of a module class runs a statement of its method, read from the `if`s around it.

A statement fix rewrites a line that every instance of the class shares. An instance the lint found right
is left as it was when it never runs that line: `if self.downsample: x = F.avg_pool2d(x, 2, ...)` in a
block built with `downsample=False`, or `if stride != 1 or in_planes != planes: self.shortcut = ...` in an
`__init__` called with `stride=1, in_planes=planes=16`. Each enclosing test is evaluated with what the
instance holds: its plain attributes (`self.downsample`), the constructor's arguments as recorded
(reslint.constructor_args) in `__init__`, and locals bound once from either. A test that reads anything
else (a tensor, a call, a name bound twice) is unknown, and the instance is taken to run the statement.
"""

from __future__ import annotations

import ast
from typing import Any

from torch import nn

from reslint.constructor_args import plain, record_of

_READABLE = (ast.Expression, ast.Name, ast.Load, ast.Constant, ast.Attribute, ast.Compare, ast.BoolOp, ast.UnaryOp,
             ast.BinOp, ast.IfExp, ast.Tuple, ast.operator, ast.unaryop, ast.boolop, ast.cmpop)


class Unknown(Exception):
    """The test reads something the instance's plain values do not give."""


def runs_statement(module: nn.Module, method: ast.FunctionDef, statement: ast.stmt) -> bool:
    """False only when some `if` around the statement provably takes the other branch in this instance."""
    for test, in_body in _enclosing_tests(method, statement):
        try:
            holds = bool(value_of(test, module, method))
        except Unknown:
            continue
        if holds != in_body:
            return False
    return True


def _enclosing_tests(method: ast.FunctionDef, statement: ast.stmt) -> list[tuple[ast.expr, bool]]:
    """(test, whether the statement is in its body rather than its else) for each `if` around it."""
    found = []
    for node in ast.walk(method):
        if isinstance(node, ast.If):
            if any(statement is s or _contains(s, statement) for s in node.body):
                found.append((node.test, True))
            elif any(statement is s or _contains(s, statement) for s in node.orelse):
                found.append((node.test, False))
    return found


def _contains(tree: ast.AST, target: ast.AST) -> bool:
    return any(n is target for n in ast.walk(tree))


def value_of(test: ast.expr, module: nn.Module, method: ast.FunctionDef) -> Any:
    """The expression's value in this instance, from its plain values only (else Unknown)."""
    expression = ast.Expression(test)
    if not all(isinstance(n, _READABLE) for n in ast.walk(expression)):
        raise Unknown("not plain arithmetic")
    names = {n.id for n in ast.walk(test) if isinstance(n, ast.Name)} - {"self"}
    scope = {name: _name_value(name, module, method) for name in names}
    for node in ast.walk(test):
        if isinstance(node, ast.Attribute):
            if not (isinstance(node.value, ast.Name) and node.value.id == "self"):
                raise Unknown("an attribute of something else")
            scope.setdefault("__self__", {})[node.attr] = _attribute(module, node.attr, method)
    renamed = _SelfToDict().visit(ast.parse(ast.unparse(test), mode="eval"))
    ast.fix_missing_locations(renamed)
    try:
        return eval(compile(renamed, "<test>", "eval"), {"__builtins__": {}}, scope)  # names and plain values only
    except Exception as error:  # noqa: BLE001
        raise Unknown(str(error)) from error


class _SelfToDict(ast.NodeTransformer):
    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        return ast.Subscript(ast.Name("__self__", ast.Load()), ast.Constant(node.attr), ast.Load())


def _attribute(module: nn.Module, name: str, method: ast.FunctionDef) -> Any:
    """A plain attribute the method does not set before it reads it (its value now is its value then)."""
    if name in _assigned_attributes(method):
        raise Unknown(f"self.{name} is set in the method")
    if method.name == "__init__" and name in module.__dict__:
        raise Unknown(f"self.{name} may have been set after __init__ read it")
    if name in module.__dict__:
        value = module.__dict__[name]
    elif hasattr(type(module), name):
        value = getattr(type(module), name)
    else:
        raise Unknown(f"no plain attribute {name}")
    if not plain(value):
        raise Unknown(f"self.{name} is not a plain value")
    return value


def _name_value(name: str, module: nn.Module, method: ast.FunctionDef) -> Any:
    """A parameter of `__init__` as recorded, or a local bound once from `self.<attr>` or such a parameter."""
    parameters = {a.arg for a in [*method.args.posonlyargs, *method.args.args, *method.args.kwonlyargs]}
    stores = [n for n in ast.walk(method) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store) and n.id == name]
    if name in parameters:
        record = record_of(module)
        if method.name != "__init__" or stores or record is None or name not in record.arguments:
            raise Unknown(f"{name} is not a recorded constructor argument")
        return record.arguments[name]
    binds = [n for n in ast.walk(method) if isinstance(n, ast.Assign) and len(n.targets) == 1
             and isinstance(n.targets[0], ast.Name) and n.targets[0].id == name]
    if len(stores) != 1 or len(binds) != 1:
        raise Unknown(f"{name} is not bound once")
    return value_of(binds[0].value, module, method)


def _assigned_attributes(method: ast.FunctionDef) -> set[str]:
    if method.name == "__init__":
        return set()  # __init__ reads only class attributes the instance never set (see _attribute)
    return {t.attr for n in ast.walk(method) for t in (n.targets if isinstance(n, ast.Assign) else
            [n.target] if isinstance(n, (ast.AugAssign, ast.AnnAssign)) else [])
            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"}
