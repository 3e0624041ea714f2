"""Parse a target string: `path/file.py:Name`, `pkg.module:Name`, optionally called: `Name(depth=20)`,
`GPT(GPTConfig(n_layer=2))`.

Arguments are parsed with `ast`: literals are kept as values; calls and names (of what the target's
module defines or imports) are kept as checked `Expression`s that the loader evaluates against the
imported module (see reslint/expression.py). Nothing is imported or evaluated here.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from reslint.errors import TargetError
from reslint.expression import check, check_call_arguments, dotted_name


@dataclass(frozen=True)
class TargetSpec:
    source: str  # a file path or a dotted module name
    name: str | None  # attribute to build; None means "every buildable nn.Module class in source"
    # Literal values, or `Expression`s for arguments that call or name something (evaluated on load).
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
        name = dotted_name(expr.func, text)
        check_call_arguments(expr, text)  # one-line errors for *args, repeats, lambdas, operators, ...
        args = tuple(check(a, text) for a in expr.args)
        kwargs = {kw.arg: check(kw.value, text) for kw in expr.keywords}
        return TargetSpec(source=source, name=name, args=args, kwargs=kwargs, text=text)
    return TargetSpec(source=source, name=dotted_name(expr, text), text=text)


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
