"""The user's source around a node, for fixes that rewrite a line of it.

A fix is code that can replace the user's statement as is: it is built from the statement's own
expressions (`ast`), evaluates each of them once, parses, and uses only names the statement's scope
has (the enclosing function's arguments and assignments, the module's globals, builtins).
"""

from __future__ import annotations

import ast
import builtins
import linecache
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator

import torch.fx as fx


@dataclass
class Statement:
    """The statement a node's source line belongs to, parsed, and where it is."""

    path: str
    line: int  # first line of the statement
    end_line: int
    node: ast.stmt  # a fresh copy: rewrite it freely
    scope: frozenset[str]  # names the statement can read


def _tree(path: str) -> ast.Module | None:
    try:
        stat = os.stat(path)
        key = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        key = None
    linecache.checkcache(path)
    return _module_tree(path, key)


NOWHERE = Statement("", 0, 0, ast.Pass(), frozenset())
"""The scope of code with no source to go into: nothing in it is pasteable."""


@lru_cache(maxsize=64)
def _module_tree(path: str, key) -> ast.Module | None:
    text = "".join(linecache.getlines(path))
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError):
        return None


def statement_of(node: fx.Node) -> Statement | None:
    source = node.meta.get("source")
    if source is None or not source.path:
        return None
    return statement_at(source.path, source.line)


def statement_at(path: str, line: int) -> Statement | None:
    tree = _tree(path)
    if tree is None:
        return None
    found = _innermost(tree, line, [])
    if found is None:
        return None
    statement, chain = found
    return Statement(path, statement.lineno, statement.end_lineno or statement.lineno, _copy(statement), _scope(tree, chain))


def _innermost(parent: ast.AST, line: int, chain: list[ast.AST]) -> tuple[ast.stmt, list[ast.AST]] | None:
    """The smallest simple statement spanning `line`, with the functions and classes around it."""
    for child in ast.iter_child_nodes(parent):
        if not isinstance(child, ast.stmt) or not (child.lineno <= line <= (child.end_lineno or child.lineno)):
            continue
        body_holder = any(isinstance(getattr(child, f, None), list) and getattr(child, f) and isinstance(getattr(child, f)[0], ast.stmt)
                          for f in ("body", "orelse", "finalbody", "handlers"))
        if body_holder:
            inner = _innermost(child, line, [*chain, child])
            if inner is not None:
                return inner
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                return None
        return child, chain
    return None


def _copy(statement: ast.stmt) -> ast.stmt:
    return ast.parse(ast.unparse(statement)).body[0]


def _scope(tree: ast.Module, chain: list[ast.AST]) -> frozenset[str]:
    names = set(dir(builtins)) | _bound_names(tree.body)
    for holder in chain:
        if isinstance(holder, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            arguments = holder.args
            names |= {a.arg for a in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]}
            names |= {a.arg for a in (arguments.vararg, arguments.kwarg) if a is not None}
        if isinstance(holder, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names |= _bound_names(holder.body, deep=True)
    return frozenset(names)


def _bound_names(body: list[ast.stmt], deep: bool = False) -> set[str]:
    names: set[str] = set()
    nodes = (n for statement in body for n in (ast.walk(statement) if deep else [statement]))
    for node in nodes:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For, ast.With, ast.NamedExpr)):
            for target in ast.walk(node):
                if isinstance(target, ast.Name) and isinstance(target.ctx, ast.Store):
                    names.add(target.id)
        elif deep and isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif deep and isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def free_names(code: str) -> set[str] | None:
    """Names the code reads and does not bind itself; None when it does not parse."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    bound = _bound_names(tree.body, deep=True)
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - bound


def pasteable(code: str, statement: Statement | None) -> bool:
    """The code parses and reads only names the statement's scope has."""
    names = free_names(code)
    if names is None:
        return False
    return statement is None or names <= statement.scope


def fresh_name(statement: Statement, wanted: str) -> str:
    name, number = wanted, 2
    while name in statement.scope:
        name, number = f"{wanted}{number}", number + 1
    return name


def functional_prefix(statement: Statement) -> str:
    """How the user's module spells torch.nn.functional: `F` (or their alias), else the full path."""
    tree = _tree(statement.path)
    for node in tree.body if tree is not None else []:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "torch.nn.functional" and alias.asname:
                    return alias.asname
        if isinstance(node, ast.ImportFrom) and node.module == "torch.nn":
            for alias in node.names:
                if alias.name == "functional":
                    return alias.asname or "functional"
    return "torch.nn.functional" if "torch" in statement.scope else "F"


def calls(tree: ast.AST) -> Iterator[ast.Call]:
    yield from (n for n in ast.walk(tree) if isinstance(n, ast.Call))


def call_name(call: ast.Call) -> str:
    """`pad` for `F.pad(...)`, `conv` for `self.conv(...)`."""
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def module_call_path(call: ast.Call) -> str | None:
    """'down.0' for `self.down[0](x)`, 'conv' for `self.conv(x)`; None for anything else."""
    parts: list[str] = []
    func = call.func
    while True:
        if isinstance(func, ast.Attribute):
            parts.append(func.attr)
            func = func.value
        elif isinstance(func, ast.Subscript) and isinstance(func.slice, ast.Constant):
            parts.append(str(func.slice.value))
            func = func.value
        elif isinstance(func, ast.Name) and func.id == "self":
            return ".".join(reversed(parts))
        else:
            return None


def is_simple(expression: ast.expr) -> bool:
    """Reading it twice costs nothing and changes nothing: a name or an attribute of one."""
    while isinstance(expression, ast.Attribute):
        expression = expression.value
    return isinstance(expression, ast.Name)


def add_operands(statement: ast.stmt) -> tuple[ast.AST, str, str] | None:
    """The residual add in a statement: (the node holding it, left field, right field).

    `a + b` -> (BinOp, 'left', 'right'); `out += x` -> (AugAssign, 'target', 'value');
    `torch.add(a, b)` -> handled as a Call with args[0], args[1] (fields 'args.0', 'args.1').
    """
    for node in ast.walk(statement):
        if isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add):
            return node, "target", "value"
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return node, "left", "right"
        if isinstance(node, ast.Call) and call_name(node) in ("add", "add_") and len(node.args) >= 1:
            if call_name(node) == "add_" and isinstance(node.func, ast.Attribute):
                return None  # x.add_(y) writes into x: rewriting its receiver would write into a temporary
            if len(node.args) == 1 and isinstance(node.func, ast.Attribute):
                return node, "func.value", "args.0"  # x.add(y): the receiver is the left operand
            if len(node.args) == 1:
                return None
            return node, "args.0", "args.1"
    return None


def get_field(holder: ast.AST, field: str) -> ast.expr:
    if field.startswith("args."):
        return holder.args[int(field[5:])]
    if field == "func.value":
        return holder.func.value
    return getattr(holder, field)


def set_field(holder: ast.AST, field: str, value: ast.expr) -> None:
    if field.startswith("args."):
        holder.args[int(field[5:])] = value
    elif field == "func.value":
        holder.func.value = value
    else:
        setattr(holder, field, value)


def expression(text: str) -> ast.expr:
    return ast.parse(text, mode="eval").body


def statement_code(statement: ast.stmt) -> str:
    return ast.unparse(ast.fix_missing_locations(statement))
