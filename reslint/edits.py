"""Source edits a fix makes, as plain data, applied with LibCST so formatting and comments survive.

An edit names what it changes by its place in the user's code (a file, a line, a class), not by a
text offset, so several edits to one file apply one after the other, each to the text the previous one
left, and an edit already made is not made twice. No torch here: the parent process applies the edits
its workers computed.

  ReplaceStatement  the statement at `line` becomes `code` (a statement fix: a pad call, a cat)
  SetArgument       one argument of the constructor call at `line` becomes `expression` (a layer fix);
                    an argument set to its default is removed where it can be (`nn.ReLU()`)
  ReplaceCall       the constructor call of `callee` at `line` becomes `code` (a layer replaced by another:
                    a pooling that should not be there becomes `nn.Identity()`)
  SetElement        one element of the literal list assigned to `name` at `line` becomes `expression`
                    (a value the fixed layers' callers draw from: `strides = [1, 1, 2, 1]`)
  AddShortcut       the class's `__init__` gets `self.<attribute> = <init_code>` and the join at
                    `join_line` reads `self.<attribute>(<skip>)` instead of `<skip>` (a projection)
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider


class EditError(Exception):
    """The source is not what the edit expects (it changed, or the edit does not fit it)."""


@dataclass(frozen=True)
class ReplaceStatement:
    path: str
    line: int
    end_line: int
    code: str

    def apply(self, text: str) -> str:
        module, positions = _parsed(text)
        target = next(
            (n for n, p in positions.items() if isinstance(n, cst.SimpleStatementLine) and p.start.line == self.line and p.end.line >= self.end_line),
            None,
        )
        if target is None:
            raise EditError(f"no statement at line {self.line}")
        try:
            body = cst.parse_module(self.code.strip() + "\n").body
        except cst.ParserSyntaxError as error:
            raise EditError(f"the fix does not parse: {error}") from None
        if not body or not all(isinstance(b, cst.SimpleStatementLine) for b in body):
            raise EditError("the fix is not simple statements")
        wanted = [line.strip() for line in self.code.strip().splitlines()]
        have = [line.split("#")[0].strip() for line in text.splitlines()[self.line - 1:self.line - 1 + len(wanted)]]
        if have == wanted:
            return text  # made already
        if len(body) == 1:
            return module.deep_replace(target, target.with_changes(body=body[0].body)).code
        # several statements (`skip = skips.pop()` then the cat): the first keeps the line's comments
        first = target.with_changes(body=body[0].body)

        class Replace(cst.CSTTransformer):
            def leave_SimpleStatementLine(self, original, updated):
                return cst.FlattenSentinel([first, *body[1:]]) if original is target else updated

        return module.visit(Replace()).code


@dataclass(frozen=True)
class SetArgument:
    path: str
    line: int
    callee: str  # the called name's last part: `Conv2d` for `nn.Conv2d(...)`
    position: int  # the parameter's position in the constructor's signature (after self)
    keyword: str
    expression: str
    occurrence: int = -1  # which call of `callee` starting on `line`, left to right (-1: the innermost there)
    is_default: bool = False  # `expression` is the parameter's default: the argument goes, where it can

    def apply(self, text: str) -> str:
        module, positions = _parsed(text)
        call = _call_at(positions, self.callee, self.line, self.occurrence)
        if self.is_default:
            try:
                return module.deep_replace(call, _without(call, self.keyword, self.position)).code
            except EditError:
                pass  # passed by position before others: written out
        value = cst.parse_expression(self.expression)
        args = list(call.args)
        for index, arg in enumerate(args):
            if arg.keyword is not None and arg.keyword.value == self.keyword:
                args[index] = arg.with_changes(value=value)
                break
        else:
            positional = [i for i, a in enumerate(args) if a.keyword is None and not a.star]
            if any(a.star for a in args):
                raise EditError(f"{self.callee}(...) at line {self.line} passes *args: not edited")
            if self.position < len(positional):
                index = positional[self.position]
                args[index] = args[index].with_changes(value=value)
            else:
                if args:
                    args[-1] = args[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
                args.append(cst.Arg(keyword=cst.Name(self.keyword), value=value,
                                    equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace(""))))
        return module.deep_replace(call, call.with_changes(args=args)).code


def _call_at(positions: dict, callee: str, line: int, occurrence: int) -> cst.Call:
    """The `occurrence`-th call of `callee` that starts on `line` (several on one line: counted, not
    placed by column, so an earlier edit on the line does not lose it), or with -1 the innermost one
    spanning `line`."""
    calls = [(n, p) for n, p in positions.items()
             if isinstance(n, cst.Call) and _callee(n) == callee and p.start.line <= line <= p.end.line]
    if occurrence >= 0:
        starting = sorted(((n, p) for n, p in calls if p.start.line == line), key=lambda np: np[1].start.column)
        calls = starting[occurrence:occurrence + 1]
    if not calls:
        raise EditError(f"no call of {callee} at line {line}")
    return min(calls, key=lambda np: (np[1].end.line - np[1].start.line, -np[1].start.column))[0]


def _without(call: cst.Call, keyword: str, position: int) -> cst.Call:
    """The call without the argument (its default applies): a keyword, or the last positional one."""
    args = list(call.args)
    positional = [i for i, a in enumerate(args) if a.keyword is None and not a.star]
    index = next((i for i, a in enumerate(args) if a.keyword is not None and a.keyword.value == keyword), None)
    if index is None and position < len(positional):
        if position != len(positional) - 1 or any(a.star for a in args):
            raise EditError(f"the argument {keyword} is passed by position before others: not removed")
        index = positional[position]
    if index is None:
        return call  # not passed: the default applies already
    last = args[-1]
    del args[index]
    if args and index == len(args):  # the removed one was last: the new last keeps its trailing style
        args[-1] = args[-1].with_changes(comma=last.comma)
    return call.with_changes(args=args)


@dataclass(frozen=True)
class ReplaceCall:
    path: str
    line: int
    callee: str
    code: str
    occurrence: int = -1

    def apply(self, text: str) -> str:
        module, positions = _parsed(text)
        try:
            call = _call_at(positions, self.callee, self.line, self.occurrence)
        except EditError:
            if any(isinstance(n, cst.Call) and module.code_for_node(n) == self.code and p.start.line <= self.line <= p.end.line
                   for n, p in positions.items()):
                return text  # made already
            raise
        return module.deep_replace(call, cst.parse_expression(self.code)).code


@dataclass(frozen=True)
class SetElement:
    path: str
    line: int
    name: str
    index: int
    expression: str

    def apply(self, text: str) -> str:
        module, positions = _parsed(text)
        found = [
            n for n, p in positions.items()
            if isinstance(n, cst.Assign) and p.start.line == self.line and len(n.targets) == 1
            and isinstance(n.targets[0].target, cst.Name) and n.targets[0].target.value == self.name
            and isinstance(n.value, (cst.List, cst.Tuple))
        ]
        if len(found) != 1 or self.index >= len(found[0].value.elements):
            raise EditError(f"no list {self.name} with an element {self.index} at line {self.line}")
        literal = found[0].value
        elements = list(literal.elements)
        elements[self.index] = elements[self.index].with_changes(value=cst.parse_expression(self.expression))
        return module.deep_replace(literal, literal.with_changes(elements=elements)).code


@dataclass(frozen=True)
class AddShortcut:
    path: str
    class_name: str
    attribute: str
    init_code: str  # the expression assigned to self.<attribute> at the end of __init__
    join_line: int
    skip: str  # the name the join adds as its skip
    helper: str = ""  # the join is in this function, which the class calls with the skip at join_line

    def apply(self, text: str) -> str:
        module, positions = _parsed(text)
        classes = [n for n in positions if isinstance(n, cst.ClassDef) and n.name.value == self.class_name]
        if len(classes) != 1:
            raise EditError(f"class {self.class_name} not found once")
        init = _init_of(classes[0], self.class_name)
        if f"self.{self.attribute} =" in module.code_for_node(init):
            return text  # made already (by another finding of the same class)
        join = next(
            (n for n, p in positions.items() if isinstance(n, cst.SimpleStatementLine) and p.start.line <= self.join_line <= p.end.line),
            None,
        )
        if join is None:
            raise EditError(f"no statement at line {self.join_line}")
        # the join first (found by its line), then __init__ (found by name, whatever lines moved)
        module = cst.parse_module(module.deep_replace(join, _wrap_skip(join, self.skip, f"self.{self.attribute}", self.helper)).code)
        init = _init_of(_find_class(module, self.class_name), self.class_name)
        assignment = cst.parse_statement(f"self.{self.attribute} = {self.init_code}\n")
        new_init = init.with_changes(body=init.body.with_changes(body=[*init.body.body, assignment]))
        return module.deep_replace(init, new_init).code


def _find_class(module: cst.Module, name: str) -> cst.ClassDef:
    found: list[cst.ClassDef] = []

    class Find(cst.CSTVisitor):
        def visit_ClassDef(self, node: cst.ClassDef) -> None:
            if node.name.value == name:
                found.append(node)

    module.visit(Find())
    if len(found) != 1:
        raise EditError(f"class {name} not found once")
    return found[0]


def _init_of(cls: cst.ClassDef, name: str) -> cst.FunctionDef:
    init = next((n for n in cls.body.body if isinstance(n, cst.FunctionDef) and n.name.value == "__init__"), None)
    if init is None:
        raise EditError(f"{name} has no __init__")
    return init


Edit = ReplaceStatement | SetArgument | ReplaceCall | SetElement | AddShortcut


def _parsed(text: str) -> tuple[cst.Module, dict]:
    try:
        wrapper = MetadataWrapper(cst.parse_module(text), unsafe_skip_copy=True)
    except cst.ParserSyntaxError as error:
        raise EditError(f"the file does not parse: {error}") from None
    return wrapper.module, dict(wrapper.resolve(PositionProvider))


def _callee(call: cst.Call) -> str:
    func = call.func
    if isinstance(func, cst.Attribute):
        return func.attr.value
    return func.value if isinstance(func, cst.Name) else ""


def _wrap_skip(statement: cst.SimpleStatementLine, skip: str, callee: str, helper: str = "") -> cst.SimpleStatementLine:
    """The statement with the add's operand `skip` replaced by `callee(skip)` (only that operand); an
    argument of a call of `helper` counts as an operand (the add is in that function)."""

    class Wrap(cst.CSTTransformer):
        done = False

        def _wrapped(self, node: cst.BaseExpression) -> cst.BaseExpression:
            if not self.done and isinstance(node, cst.Name) and node.value == skip:
                self.done = True
                return cst.parse_expression(f"{callee}({skip})")
            return node

        def leave_AugAssign(self, original, updated):
            return updated.with_changes(value=self._wrapped(updated.value)) if isinstance(updated.operator, cst.AddAssign) else updated

        def leave_BinaryOperation(self, original, updated):
            if not isinstance(updated.operator, cst.Add):
                return updated
            return updated.with_changes(left=self._wrapped(updated.left), right=self._wrapped(updated.right))

        def leave_Call(self, original, updated):
            if _callee(updated) not in ("add", "add_", *([helper] if helper else [])) or not updated.args:
                return updated
            args = [a.with_changes(value=self._wrapped(a.value)) if a.keyword is None else a for a in updated.args]
            return updated.with_changes(args=args)

    wrap = Wrap()
    result = statement.visit(wrap)
    if not wrap.done:
        raise EditError(f"the join does not add {skip!r} as an operand")
    return result


def apply_all(text: str, edits: list[Edit]) -> str:
    """The edits applied from the end of the file up, so that one that adds lines (a projection in
    __init__, two statements for one) does not move the lines the others name; each distinct edit once."""
    for edit in sorted(dict.fromkeys(edits), key=lambda e: getattr(e, "join_line", None) or e.line, reverse=True):
        text = edit.apply(text)
    return text


def unified_diff(label: str, before: str, after: str) -> str:
    lines = difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True), f"{label}", f"{label}")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)
