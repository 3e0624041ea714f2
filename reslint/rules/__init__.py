"""The rules: one module per code; its docstring is the rule's documentation.

This file must not import torch: `reslint rule CODE` reads the docstrings with `ast`.
"""

from __future__ import annotations

import ast
import importlib
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class RuleInfo:
    code: str
    name: str
    module: str  # file stem under reslint/rules
    severity: str
    default: bool  # selected when the user does not --select


RULES = {
    rule.code: rule
    for rule in [
        RuleInfo("RL000", "shape-error", "rl000_shape_error", "error", True),
        RuleInfo("RL001", "residual-add-mismatch", "rl001_residual_add_mismatch", "error", True),
        RuleInfo("RL002", "broadcast-residual-add", "rl002_broadcast_add", "warning", True),
        RuleInfo("RL003", "concat-skip-mismatch", "rl003_concat_skip_mismatch", "error", True),
        RuleInfo("RL004", "size-dependent-skip", "rl004_size_constraints", "warning", False),
        RuleInfo("RL005", "deep-plain-stack", "rl005_deep_plain_stack", "warning", True),
        RuleInfo("RL006", "inplace-skip", "rl006_inplace_skip", "warning", True),
    ]
}


# What every rule with fixes says about their safety: its docstring's "## Fix safety" section gives
# only what is its own (its fix kinds), and rule_doc puts it between this introduction and these kinds.
FIX_SAFETY_INTRO = """`reslint --diff` shows each fix as an edit of your source; `reslint --fix` writes the safe ones and
lints again; `--unsafe-fixes` also writes the others. A fix is safe when it is validated on every
instance of the class that the linted targets build and leaves the instances that were right
unchanged."""
FIX_SAFETY_KINDS = """- A layer fix (`resize-transform`, `restride-skip`, a conv's padding, a pool's `ceil_mode` or padding)
  edits the argument of the constructor call that made the layer, as a name of that scope whose value
  is right for every layer made there (`padding=dilation`, `nn.Linear(hidden, dim)`), else a literal;
  it is written for every layer made alike at that call, as it was validated. Safe when it is validated
  and every layer made there that the lint proved right computes what it did at the inputs it saw (a
  layer that only ran downstream of a failure was never proven right: the validation is its proof).
- A statement fix (a pad's amounts or axes, a permute back, a crop, a cat with `F.interpolate`)
  replaces the statement. Safe when it is validated and every built instance that runs the line needs
  it (an instance whose `if`s skip the line does not count), or when it provably changes nothing in the
  right ones: a cat operand resized to its neighbour's size, a pad whose reordered amounts are the
  ones the right instances already pad by. Not safe when a subclass in your code that the targets do
  not build inherits the method and overrides what the line reads (the edit would change it unseen).
- A fix that cannot be written in the code's own terms (no name gives every instance its number, the
  join is outside the block's class) or that would edit a file outside the project (site-packages)
  is shown in the report only."""


def rule_doc(code: str) -> str | None:
    rule = RULES.get(code.upper())
    if rule is None:
        return None
    path = os.path.join(os.path.dirname(__file__), f"{rule.module}.py")
    with open(path, encoding="utf-8") as handle:
        doc = ast.get_docstring(ast.parse(handle.read())) or ""
    if "## Fix safety" not in doc:
        return doc
    head, _, own = doc.partition("## Fix safety")  # the section is the docstring's last
    section = [FIX_SAFETY_INTRO, own.strip("\n"), FIX_SAFETY_KINDS]
    return head + "## Fix safety\n" + "\n".join(part for part in section if part)


def selected_codes(select: list[str] | None, ignore: list[str] | None) -> list[str]:
    """Codes to run: --select (prefixes like RL00 allowed) or the defaults, minus --ignore."""
    def matches(code: str, patterns: list[str]) -> bool:
        return any(code.startswith(p.upper()) or p.upper() == "ALL" for p in patterns)

    codes = [c for c, r in RULES.items() if (matches(c, select) if select else r.default)]
    return [c for c in codes if not (ignore and matches(c, ignore))]


def unknown_codes(patterns: list[str]) -> list[str]:
    return [p for p in patterns if p.upper() != "ALL" and not any(c.startswith(p.upper()) for c in RULES)]


def load_check(code: str):
    """The rule's `check(analysis)` function (imports the rule module, and with it torch)."""
    return importlib.import_module(f"reslint.rules.{RULES[code].module}").check
