"""Parse a target string: `path/file.py:Name`, `pkg.module:Name`, optionally `Name(depth=20)`.

Arguments are Python literals parsed with `ast`, never evaluated.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from reslint.errors import TargetError


@dataclass(frozen=True)
class TargetSpec:
    source: str  # a file path or a dotted module name
    name: str | None  # attribute to build; None means "every buildable nn.Module class in source"
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    text: str = ""  # the target as the user wrote it

    @property
    def is_file(self) -> bool:
        return self.source.endswith(".py") or "/" in self.source or "\\" in self.source


def parse_target(text: str) -> TargetSpec:
    """Split `source:Name(args)` into its parts."""
    source, sep, call = _split_source(text)
    if not sep:
        return TargetSpec(source=text, name=None, text=text)
    if not call:
        raise TargetError(f"target {text!r} has nothing after ':'; write it as {source}:ClassName")
    try:
        expr = ast.parse(call, mode="eval").body
    except SyntaxError:
        raise TargetError(f"cannot parse {call!r} in target {text!r}; write Name or Name(arg=1, ...)") from None
    if isinstance(expr, ast.Call):
        name = _dotted_name(expr.func, text)
        args = tuple(_literal(a, text) for a in expr.args)
        kwargs = {}
        for kw in expr.keywords:
            if kw.arg is None:
                raise TargetError(f"target {text!r}: **kwargs are not supported; name each argument")
            kwargs[kw.arg] = _literal(kw.value, text)
        return TargetSpec(source=source, name=name, args=args, kwargs=kwargs, text=text)
    return TargetSpec(source=source, name=_dotted_name(expr, text), text=text)


def _split_source(text: str) -> tuple[str, str, str]:
    # The call may itself contain ':' (a dict literal), and Windows paths start with 'C:'.
    paren = text.find("(")
    head = text if paren < 0 else text[:paren]
    colon = head.rfind(":")
    if colon <= 1 and len(head) > 2 and head[1:3] in (":\\", ":/"):  # a drive letter, not a separator
        colon = -1
    if colon < 0:
        return text, "", ""
    return text[:colon], ":", text[colon + 1 :].strip()


def _dotted_name(node: ast.AST, text: str) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise TargetError(f"target {text!r}: expected a class or function name after ':'")
    parts.append(node.id)
    return ".".join(reversed(parts))


def _literal(node: ast.AST, text: str) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise TargetError(
            f"target {text!r}: argument {ast.unparse(node)!r} is not a Python literal "
            "(numbers, strings, tuples, lists, dicts, True/False/None)"
        ) from None
