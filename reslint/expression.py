"""The arguments a target may pass: literals and calls of names its module defines or imports.

`model.py:GPT(GPTConfig(n_layer=2))` and `transformers:LlamaModel(LlamaConfig(num_hidden_layers=2))` are
how most model code is built, so a target's arguments may call classes and functions. The expression is
parsed with `ast` and checked when the target is parsed (no torch, nothing imported); it is evaluated
only later, against the imported module, by the tiny evaluator below, which knows these nodes and
nothing else:

- literals: numbers, strings, bytes, None/True/False, tuples, lists, sets, dicts, `-1` / `+1`;
- a name: a global of the target's module (a class, function, constant or imported module);
- attributes of those (`configs.Small`, `nn.GELU`, `Config.from_preset`), never dunder ones;
- calls of those, with literal or nested arguments (no `*args` / `**kwargs`).

Anything else (lambdas, subscripts, operators, comprehensions, f-strings, ...) is a one-line error
naming the piece and what is allowed. Builtins are not names of the module, so `open(...)` or
`__import__(...)` cannot be called.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any, Callable

from reslint.errors import TargetError

ALLOWED = "literals (numbers, strings, None/True/False, tuples, lists, dicts) and calls of names the module defines or imports"


@dataclass(frozen=True, eq=False)
class Expression:
    """An argument that is not a plain literal: evaluated when the target's module is imported.

    It stands in `TargetSpec.args` / `kwargs` for the value, so callers can still count and name the
    arguments (which parameters a target supplies) before anything is imported.
    """

    node: ast.expr

    @property
    def text(self) -> str:
        return ast.unparse(self.node)

    def __repr__(self) -> str:
        return self.text


def check(node: ast.expr, target: str) -> Any:
    """The literal value of an argument, or an `Expression` if it calls or names something.

    Raises a one-line TargetError for any piece that is neither.
    """
    _check(node, target)
    try:
        return ast.literal_eval(node)
    except ValueError:
        return Expression(node)


def _check(node: ast.AST, target: str) -> None:
    if isinstance(node, ast.Constant):
        return
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) and _is_number(node.operand):
        return
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        for element in node.elts:
            if isinstance(element, ast.Starred):
                _forbidden(element, "*unpacking", target)
            _check(element, target)
        return
    if isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values):
            if key is None:
                _forbidden(value, "**unpacking", target)
            _check(key, target)
            _check(value, target)
        return
    if isinstance(node, (ast.Name, ast.Attribute)):
        dotted_name(node, target)
        return
    if isinstance(node, ast.Call):
        dotted_name(node.func, target)
        check_call_arguments(node, target)
        return
    _forbidden(node, _describe(node), target)


def check_call_arguments(call: ast.Call, target: str) -> None:
    seen = set()
    for arg in call.args:
        if isinstance(arg, ast.Starred):
            _forbidden(arg, "*args", target)
        _check(arg, target)
    for keyword in call.keywords:
        if keyword.arg is None:
            raise TargetError(f"target {target!r}: **kwargs are not supported; name each argument")
        if keyword.arg in seen:
            raise TargetError(f"target {target!r}: keyword argument {keyword.arg!r} is given twice in {ast.unparse(call)}")
        seen.add(keyword.arg)
        _check(keyword.value, target)


def dotted_name(node: ast.AST, target: str) -> str:
    """`a.b.c` for a Name with attributes; dunder parts (`__class__`) are refused."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        _forbidden(node, _describe(node), target, what="only a name or a dotted name (module.Class) can be called or used")
    parts.append(node.id)
    for part in parts:
        if part.startswith("__"):
            raise TargetError(f"target {target!r}: {part!r} is not allowed in a target (no dunder names); use {ALLOWED}")
    return ".".join(reversed(parts))


def _is_number(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, (int, float, complex)) and not isinstance(node.value, bool)


def _forbidden(node: ast.AST, piece: str, target: str, what: str = "") -> None:
    allowed = what or f"a target's arguments may only be {ALLOWED}"
    raise TargetError(f"target {target!r}: {piece} {ast.unparse(node)!r} is not allowed; {allowed}")


def _describe(node: ast.AST) -> str:
    names = {
        ast.Lambda: "a lambda", ast.Subscript: "a subscript", ast.BinOp: "an operator", ast.BoolOp: "an operator",
        ast.Compare: "a comparison", ast.UnaryOp: "an operator", ast.ListComp: "a comprehension",
        ast.SetComp: "a comprehension", ast.DictComp: "a comprehension", ast.GeneratorExp: "a generator",
        ast.JoinedStr: "an f-string", ast.IfExp: "a conditional expression", ast.NamedExpr: "an assignment",
        ast.Await: "an await", ast.Yield: "a yield", ast.Starred: "unpacking", ast.Slice: "a slice",
    }
    return names.get(type(node), f"a {type(node).__name__}")


class Evaluator:
    """Evaluates a checked argument against a module's globals: its names, their attributes, calls."""

    def __init__(self, lookup: Callable[[str], Any], where: str, label: str) -> None:
        self._lookup = lookup  # name -> value; raises KeyError for names the module does not have
        self._where = where  # "model.py", "transformers": said in the error for an unknown name
        self._label = label

    def value(self, argument: Any) -> Any:
        return self._eval(argument.node) if isinstance(argument, Expression) else argument

    def _eval(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.UnaryOp):
            operand = self._eval(node.operand)
            return -operand if isinstance(node.op, ast.USub) else +operand
        if isinstance(node, ast.Tuple):
            return tuple(self._eval(e) for e in node.elts)
        if isinstance(node, ast.List):
            return [self._eval(e) for e in node.elts]
        if isinstance(node, ast.Set):
            return {self._eval(e) for e in node.elts}
        if isinstance(node, ast.Dict):
            return {self._eval(k): self._eval(v) for k, v in zip(node.keys, node.values)}
        if isinstance(node, ast.Name):
            try:
                return self._lookup(node.id)
            except KeyError:
                raise TargetError(
                    f"{self._label}: {node.id!r} is not defined in {self._where}; a target can call the classes and "
                    "functions its module defines or imports"
                ) from None
        if isinstance(node, ast.Attribute):
            owner = self._eval(node.value)
            try:
                return getattr(owner, node.attr)
            except AttributeError:
                raise TargetError(f"{self._label}: {ast.unparse(node.value)} has no attribute {node.attr!r}") from None
        if isinstance(node, ast.Call):
            function = self._eval(node.func)
            args = [self._eval(a) for a in node.args]
            kwargs = {k.arg: self._eval(k.value) for k in node.keywords}
            return function(*args, **kwargs)
        raise TargetError(f"{self._label}: {ast.unparse(node)!r} cannot be evaluated")  # _check refused it already

    def resolve_names(self, argument: Any) -> None:
        """Look every name up without calling anything: unknown names are errors before any build attempt."""
        if isinstance(argument, Expression):
            for node in ast.walk(argument.node):
                if isinstance(node, (ast.Name, ast.Attribute)):
                    self._eval(node)


def has_expressions(args: tuple, kwargs: dict) -> bool:
    return any(isinstance(a, Expression) for a in (*args, *kwargs.values()))
