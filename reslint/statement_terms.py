"""A statement fix kept in the user's expressions: `(0, 0, 0, 0, extra, extra)` becomes
`(0, 0, 0, 0, extra // 2, extra // 2)`, not `(0, 0, 0, 0, 4, 4)`.

A size fix proves a statement in numbers. Where the proven statement differs from the user's only by
numbers standing in for the user's expressions, each number is written as that expression with one
small correction (`E // k`, `E * k`, `E - k`, `E + k`) that gives every instance running the statement
its number; the rest of the user's line stays as written. The expression's value per instance is read
from the module (`self.extra`, or a local bound to it in the same method) or, in `__init__`, from the
recorded constructor arguments (`planes // d`, reslint.statement_reach.value_of). Where an operand of the
expression is one number in every instance, that number is what changes (`planes // d` -> `planes // 4`).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from reslint.statement_reach import Unknown, value_of

_CORRECTIONS = [(f"// {k}", lambda v, k=k: v // k) for k in range(2, 9)] + \
    [(f"* {k}", lambda v, k=k: v * k) for k in range(2, 9)] + \
    [(f"- {k}", lambda v, k=k: v - k) for k in range(1, 9)] + \
    [(f"+ {k}", lambda v, k=k: v + k) for k in range(1, 9)]


@dataclass
class Written:
    """The statement as written, and each user sub-expression it replaced by a number (`d` -> 4 in
    `planes // d`), for checking what the change does where the lint did not look (reslint.source_fixes)."""

    text: str
    constants: list[tuple[ast.expr, int]] = field(default_factory=list)
    only_constants: bool = False  # every change is such a number (no `E // 2` correction)


def in_own_terms(source: str, line: int, end_line: int, codes: list[str], modules: list[nn.Module]) -> Written | None:
    """The fixes' statement (`codes[i]` proven for `modules[i]`) written once over the user's own, its
    expressions kept, or None when a fix differs from the user's statement otherwise than by numbers for
    expressions, or no one correction gives every instance its number."""
    lines = source.splitlines()
    old_text = "\n".join(lines[line - 1:end_line])
    try:
        old = ast.parse(old_text.strip()).body
        news = [ast.parse(code.strip()).body for code in codes]
    except SyntaxError:
        return None
    if len(old) != 1 or any(len(new) != 1 for new in news):
        return None
    numbers: dict[int, tuple[ast.expr, list[int]]] = {}
    for new in news:
        pairs: list[tuple[ast.expr, int]] = []
        if not _align(old[0], new[0], pairs) or not pairs:
            return None
        if numbers and set(numbers) != {id(e) for e, _ in pairs}:
            return None
        for expression, number in pairs:
            numbers.setdefault(id(expression), (expression, []))[1].append(number)
    method = _method_at(ast.parse(source), line)
    replacements, constants, only_constants = [], [], True
    for expression, wanted in numbers.values():
        found = _written(expression, wanted, method, modules, old_text.strip())
        if found is None:
            return None
        replacements.append((expression, found[0]))
        constants += found[1]
        only_constants = only_constants and bool(found[1])
    # splice right to left over the user's text, so positions stay valid
    text = old_text.strip().splitlines()
    for expression, replacement in sorted(replacements, key=lambda r: (r[0].lineno, r[0].col_offset), reverse=True):
        if expression.lineno != expression.end_lineno:
            return None
        row = text[expression.lineno - 1]
        encoded = row.encode()
        text[expression.lineno - 1] = (encoded[:expression.col_offset].decode() + replacement
                                       + encoded[expression.end_col_offset:].decode())
    return Written("\n".join(text), constants, only_constants)


def _written(expression: ast.expr, wanted: list[int], method: ast.FunctionDef | None, modules: list[nn.Module],
             old_text: str) -> tuple[str, list[tuple[ast.expr, int]]] | None:
    """The user's expression made to give each instance its number: `planes // 4` for `planes // d`
    (an operand that is one number everywhere changed, as a maintainer writes it), else `E // 2`."""
    written = ast.get_source_segment(old_text, expression)
    if written is None:
        return None
    if isinstance(expression, ast.BinOp) and type(expression.op) in _OPERATORS:
        left = [_value(expression.left, method, m) for m in modules]
        right = [_value(expression.right, method, m) for m in modules]
        left_text = ast.get_source_segment(old_text, expression.left)
        if _ints(left) and _ints(right) and len(set(right)) == 1 and left_text is not None \
                and not isinstance(expression.right, ast.Constant):
            operate = _OPERATORS[type(expression.op)]
            constant = next((c for c in range(1, 65) if all(_apply(operate, v, c) == n for v, n in zip(left, wanted))), None)
            if constant is not None:
                symbol = {ast.FloorDiv: "//", ast.Mult: "*", ast.Add: "+", ast.Sub: "-"}[type(expression.op)]
                wrap = not isinstance(expression.left, (ast.Name, ast.Attribute, ast.Subscript, ast.Call, ast.Constant))
                return f"{f'({left_text})' if wrap else left_text} {symbol} {constant}", [(expression.right, constant)]
    values = [_value(expression, method, m) for m in modules]
    if not _ints(values):
        return None
    correction = next((text for text, f in _CORRECTIONS if all(f(v) == n for v, n in zip(values, wanted))), None)
    if correction is None:
        return None
    needs_parens = not isinstance(expression, (ast.Name, ast.Attribute, ast.Subscript, ast.Call))
    return (f"({written}) {correction}" if needs_parens else f"{written} {correction}"), []


_OPERATORS = {ast.FloorDiv: lambda a, b: a // b, ast.Mult: lambda a, b: a * b, ast.Add: lambda a, b: a + b,
              ast.Sub: lambda a, b: a - b}


def _apply(operate, a: int, b: int) -> int | None:
    try:
        return operate(a, b)
    except ZeroDivisionError:
        return None


def _ints(values: list[Any]) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def _align(old: ast.AST, new: ast.AST, pairs: list[tuple[ast.expr, int]]) -> bool:
    """Same tree, except int constants in `new` where `old` has an expression (collected in `pairs`)."""
    if isinstance(new, ast.Constant) and type(new.value) is int and isinstance(old, ast.expr) and not isinstance(old, ast.Constant):
        pairs.append((old, new.value))
        return True
    if type(old) is not type(new):
        return False
    for field in old._fields:
        a, b = getattr(old, field, None), getattr(new, field, None)
        if isinstance(a, list) != isinstance(b, list):
            return False
        if isinstance(a, list):
            if len(a) != len(b) or not all(_align(x, y, pairs) if isinstance(x, ast.AST) else x == y for x, y in zip(a, b)):
                return False
        elif isinstance(a, ast.AST):
            if not isinstance(b, ast.AST) or not _align(a, b, pairs):
                return False
        elif a != b and field != "ctx":
            return False
    return True


def _method_at(tree: ast.Module, line: int) -> ast.FunctionDef | None:
    functions = [f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.lineno <= line <= (f.end_lineno or f.lineno)]
    return max(functions, key=lambda f: f.lineno) if functions else None


def _value(expression: ast.expr, method: ast.FunctionDef | None, module: nn.Module) -> Any:
    """The expression's value in this instance: `self.attr`, or a local assigned once from `self.attr`."""
    if isinstance(expression, ast.Attribute) and isinstance(expression.value, ast.Name) and expression.value.id == "self":
        return module.__dict__.get(expression.attr, getattr(type(module), expression.attr, None))
    if isinstance(expression, ast.Name) and method is not None:
        bound = [n for n in ast.walk(method) if isinstance(n, ast.Assign) and len(n.targets) == 1
                 and isinstance(n.targets[0], ast.Name) and n.targets[0].id == expression.id]
        if len(bound) == 1 and isinstance(bound[0].value, ast.Attribute):
            return _value(bound[0].value, None, module)
    if method is not None:  # a constructor parameter as recorded, or arithmetic of such values (`planes // d`)
        try:
            return value_of(expression, module, method)
        except Unknown:
            return None
    return None
