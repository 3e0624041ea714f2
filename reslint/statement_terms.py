"""A statement fix kept in the user's expressions: `(0, 0, 0, 0, extra, extra)` becomes
`(0, 0, 0, 0, extra // 2, extra // 2)`, not `(0, 0, 0, 0, 4, 4)`.

A size fix proves a statement in numbers. Where the proven statement differs from the user's only by
numbers standing in for the user's expressions, each number is written as that expression with one
small correction (`E // k`, `E * k`, `E - k`, `E + k`) that gives every instance running the statement
its number; the rest of the user's line stays as written. The expression's value per instance is read
from the module (`self.extra`, or a local bound to it in the same method).
"""

from __future__ import annotations

import ast
from typing import Any

from torch import nn

_CORRECTIONS = [(f"// {k}", lambda v, k=k: v // k) for k in range(2, 9)] + \
    [(f"* {k}", lambda v, k=k: v * k) for k in range(2, 9)] + \
    [(f"- {k}", lambda v, k=k: v - k) for k in range(1, 9)] + \
    [(f"+ {k}", lambda v, k=k: v + k) for k in range(1, 9)]


def in_own_terms(source: str, line: int, end_line: int, code: str, modules: list[nn.Module]) -> str | None:
    """The fix's statement written over the user's own (its expressions kept), or None when it differs
    from the user's statement otherwise than by numbers for expressions, or no correction fits."""
    lines = source.splitlines()
    old_text = "\n".join(lines[line - 1:end_line])
    try:
        old = ast.parse(old_text.strip()).body
        new = ast.parse(code.strip()).body
    except SyntaxError:
        return None
    if len(old) != 1 or len(new) != 1:
        return None
    pairs: list[tuple[ast.expr, int]] = []
    if not _align(old[0], new[0], pairs) or not pairs:
        return None
    method = _method_at(ast.parse(source), line)
    replacements = []
    for expression, number in pairs:
        values = [_value(expression, method, m) for m in modules]
        if any(not isinstance(v, int) or isinstance(v, bool) for v in values):
            return None
        correction = next((text for text, f in _CORRECTIONS if all(f(v) == number for v in values)), None)
        if correction is None:
            return None
        written = ast.get_source_segment(old_text.strip(), expression)
        if written is None:
            return None
        needs_parens = not isinstance(expression, (ast.Name, ast.Attribute, ast.Subscript, ast.Call))
        replacements.append((expression, f"({written}) {correction}" if needs_parens else f"{written} {correction}"))
    # splice right to left over the user's text, so positions stay valid
    text = old_text.strip().splitlines()
    for expression, replacement in sorted(replacements, key=lambda r: (r[0].lineno, r[0].col_offset), reverse=True):
        if expression.lineno != expression.end_lineno:
            return None
        row = text[expression.lineno - 1]
        encoded = row.encode()
        text[expression.lineno - 1] = (encoded[:expression.col_offset].decode() + replacement
                                       + encoded[expression.end_col_offset:].decode())
    return "\n".join(text)


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
    return None
