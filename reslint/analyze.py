"""One target from module to findings: trace, settle substitutes, find joins, run the rules."""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.fx as fx
from torch import nn

from reslint import inputs as example_inputs
from reslint.consequences import attach_consequences
from reslint.errors import TargetError
from reslint.findings import Finding, Fix, TargetResult
from reslint.fixes import FixFinder
from reslint.grouping import group_findings
from reslint.guess import ArgumentFiller, InputPlan, guess_plan
from reslint.joins import JoinFinder, SkipJoin
from reslint.load import BuiltModel, NotBuildable
from reslint.noqa import is_suppressed
from reslint.rules import RULES, load_check, selected_codes
from reslint.settle import settle
from reslint.source_fixes import attach_source_edits
from reslint.trace import Traced, rerecorded, retrace, trace
from reslint.trace.propagate import Propagation
from reslint.where import display_path


@dataclass
class Analysis:
    """What the rules read: the propagated graph, its joins, and a fix finder."""

    target: str
    model: nn.Module
    inputs: tuple[Any, ...]
    traced: Traced
    join_finder: JoinFinder
    joins: list[SkipJoin]
    fixes: FixFinder
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def propagation(self) -> Propagation:
        return self.traced.propagation

    def failing_joins_at(self, inputs: tuple[Any, ...]) -> list[SkipJoin]:
        """The joins that fail when the model runs at other inputs (same frontend, new propagation)."""
        propagation = retrace(self.model, self.traced, inputs)
        return [j for j in JoinFinder(propagation).joins() if j.node in propagation.failures]

    def shape(self, node: fx.Node) -> list[int] | None:
        value = self.propagation.values.get(node)
        return list(value.shape) if isinstance(value, torch.Tensor) else None

    def joins_of(self, kind: str, failed: bool):
        """(join, skip shape, transform shape) for the joins of a kind whose op failed (or did not)."""
        failures = self.propagation.failures
        for join in self.joins:
            failure = failures.get(join.node)
            if join.kind != kind or (failure is not None) != failed or (failure is not None and failure.limitation):
                continue
            skip, transform = self.shape(join.skip), self.shape(join.transform)
            if skip is not None and transform is not None:
                yield join, skip, transform

    def join_finding(self, code: str, join: SkipJoin, message: str, skip: list[int], transform: list[int]) -> Finding:
        """A finding at a join, with both shapes and the best fix that could be proven."""
        fix = self.fixes.best_fix(join)
        return self.finding(code, join.node, message, {"skip": skip, "transform": transform}, fix)

    def finding(self, code: str, node: fx.Node, message: str, shapes: dict, fix: Fix | None = None) -> Finding:
        source = node.meta.get("source")
        return Finding(
            code=code,
            severity=RULES[code].severity,
            message=message,
            target=self.target,
            path=display_path(source.path) if source else "",
            line=source.line if source else 0,
            column=source.column if source else 0,
            module=node.meta.get("module_path", ""),
            module_type=node.meta.get("module_type", ""),
            shapes=shapes,
            fix=fix,
            end_column=source.end_column if source else 0,
        )


def analyze_model(
    model: nn.Module,
    inputs: tuple[Any, ...],
    target: str,
    select: list[str] | None = None,
    ignore: list[str] | None = None,
    frontend: str = "auto",
    options: dict[str, Any] | None = None,
) -> TargetResult:
    result = TargetResult(target=target, status="ok", inputs=example_inputs.describe(inputs))
    started = time.perf_counter()
    traced = trace(model, inputs, frontend or "auto")
    result.frontend = traced.frontend
    if traced.fx_error:
        result.notes.append(f"torch.fx cannot trace it ({traced.fx_error}); analyzed its eager run on meta tensors instead")
    result.timings["trace"] = round(time.perf_counter() - started, 4)

    started = time.perf_counter()
    traced, join_finder, joins = settled(model, inputs, traced)
    propagation = traced.propagation
    propagation.annotate()
    analysis = Analysis(target, model, inputs, traced, join_finder, joins, FixFinder(propagation, join_finder), options or {})
    for code in selected_codes(select, ignore):
        result.findings.extend(f for f in load_check(code)(analysis) if not is_suppressed(f))
    attach_consequences(propagation, result.findings)  # what fails only because of a finding: a note on it
    attach_source_edits(model, result.findings, propagation)  # each fix as an edit of the user's source (--diff, --fix)
    result.findings.sort(key=lambda f: (f.path, f.line, f.column, f.code))
    result.findings = group_findings(result.findings, model)  # one per (path, line, code), listing its instances
    result.joins = len(joins)
    if (options or {}).get("join-sites"):  # asked by `reslint server`, for hover (reslint.join_sites)
        from reslint.join_sites import join_sites

        result.join_sites = join_sites(analysis)
    result.notes.extend(f"assumed: {note}" for note in traced.assumptions)  # data-dependent points, one per line
    result.incomplete.extend(truncation_notes(propagation))
    if not any(node.op.startswith("call_") for node in propagation.graph.nodes) and any(True for _ in model.parameters()):
        # A forward that returns a generator (or only its input) ran nothing: a clean verdict would be a lie.
        result.incomplete.append(f"{type(model).__name__}.forward ran no tensor operation on its inputs, so nothing was checked")
    result.finish()
    result.timings["analyze"] = round(time.perf_counter() - started, 4)
    return result


def settled(model: nn.Module, inputs: tuple[Any, ...], traced: Traced, rerecordings: int = 3) -> tuple[Traced, JoinFinder, list[SkipJoin]]:
    """Joins found and substitutes settled; an eager recording is redone until it ran on the settled ones."""
    while True:
        join_finder = JoinFinder(traced.propagation)
        joins = list(join_finder.joins())
        settle(traced.propagation, joins)
        again = rerecorded(model, traced, inputs) if rerecordings else None
        if again is None:
            return traced, join_finder, joins
        traced, rerecordings = again, rerecordings - 1


def truncation_notes(propagation: Propagation) -> list[str]:
    """Where the analysis could not go on: ops that failed with nothing to stand in for their result."""
    notes = []
    for node, failure in propagation.failures.items():
        if failure.candidates and not failure.limitation:
            continue
        if not any(user for user in node.users if user.op != "output"):
            unchecked = "nothing after it was recorded" if failure.limitation else "the model's run could not go on"
        else:
            unchecked = "joins after it were not checked"
        why = "torch cannot run it on meta tensors" if failure.limitation else "nothing could stand in for its result"
        notes.append(f"shapes are unknown after {describe_node(node)} ({failure.message}): {why}; {unchecked}")
    return notes


def describe_node(node: fx.Node) -> str:
    source = node.meta.get("source")
    module = node.meta.get("module_path")
    at = f"{display_path(source.path)}:{source.line}" if source else node.name
    return f"{at} in {module}" if module else at


def analyze_built(
    build: Callable[[], BuiltModel],
    label: str,
    input_specs: list[str],
    select: list[str] | None = None,
    ignore: list[str] | None = None,
    frontend: str = "auto",
    options: dict[str, Any] | None = None,
    discovered: bool = False,
) -> TargetResult:
    """Build a target, work out its inputs, analyze it; a TargetError becomes an error result.

    A `discovered` model (found in a file, not named by the user) that cannot be built, or under
    none of whose guessed inputs it runs without a failure outside a join, is `skipped` with a hint
    to configure it: a pre-commit hook must not fail on a helper module it was never told how to call.
    """
    started = time.perf_counter()
    plan: InputPlan | None = None
    try:
        built = build()
        build_time = time.perf_counter() - started
        plan = resolve_inputs(built.module, input_specs, label)
        result = analyze_plan(built.module, plan, label, select, ignore, frontend, options)
        result.notes[:0] = built.notes
        result.timings = {"build": round(build_time, 4), **result.timings}
        if built.opaque:  # scripted submodules made elsewhere: not looked into
            result.incomplete[:0] = built.opaque
            result.finish()
    except TargetError as error:
        cause = error.__context__ or error  # the model's own exception, for --debug
        used = plan.candidates[0].labels if plan and plan.candidates else list(input_specs)
        result = TargetResult(
            target=label, status="skipped" if isinstance(error, NotBuildable) else "error", error=str(error), inputs=used,
            traceback="".join(traceback.format_exception(cause)),
        )
    guessed = plan.guessed if plan is not None else not input_specs
    if discovered and guessed and result.status == "error":
        reason = result.error or ""
        if "[[tool.reslint.targets]]" not in reason:
            reason += "; to lint it, add it to [[tool.reslint.targets]] in pyproject.toml with its inputs"
        result = TargetResult(target=label, status="skipped", inputs=result.inputs, frontend=result.frontend, error=reason)
    return result


def resolve_inputs(model: nn.Module, specs: list[str], label: str) -> InputPlan:
    """The inputs to analyze with: the user's (bound to the forward by name), the model's own, or guesses."""
    if specs:
        return InputPlan([example_inputs.make_inputs(specs, model, ArgumentFiller(model))])
    declared = example_inputs.model_inputs(model)
    if declared is not None:
        return InputPlan([example_inputs.Inputs(declared, example_inputs.describe(declared))])
    return guess_plan(model, label)


def analyze_plan(
    model: nn.Module,
    plan: InputPlan,
    label: str,
    select: list[str] | None,
    ignore: list[str] | None,
    frontend: str,
    options: dict[str, Any] | None,
) -> TargetResult:
    """Analyze at the plan's inputs; for guesses, the first under which nothing fails outside a join.

    A guess that only shows skip-join findings (RL001-RL003) is kept: those are the model's. An
    RL000 or an error means the model cannot run at that input, which is the guess's fault as
    likely as the model's, so the next candidate is tried. RL000 is looked for even when not
    selected (and then not reported).
    """
    if not plan.guessed:
        inputs = plan.candidates[0]
        result = analyze_model(model, inputs.values, label, select, ignore, frontend, options)
        result.inputs = inputs.labels
        result.notes[:0] = inputs.notes
        return result
    codes = selected_codes(select, ignore)
    codes = codes if "RL000" in codes else [*codes, "RL000"]  # never reported unless selected: none is kept
    tried: list[str] = []
    for inputs in plan.candidates:
        used = " ".join(inputs.labels) or "no inputs"
        try:
            result = analyze_model(model, inputs.values, label, codes, None, frontend, options)
        except TargetError as error:
            tried.append(f"{used} ({_shortened(str(error).removeprefix(label + ': '))})")
            continue
        except Exception as error:  # reslint's own trouble at an odd input: the next guess may do
            tried.append(f"{used} (internal error {type(error).__name__}: {_shortened(str(error))})")
            continue
        failed = [f for f in result.findings if f.code == "RL000"]
        if failed:
            tried.append(f"{used} (RL000 at {failed[0].path}:{failed[0].line})")
            continue
        result.inputs = inputs.labels
        attempts = f"tried {', '.join(tried)}, used {used} from" if tried else f"used {used}, guessed from"
        result.notes[:0] = [f"no --input given; {attempts} {plan.source}", *plan.notes, *inputs.notes]
        return result
    raise TargetError(
        f"{label}: no --input given, and no guessed input ran without a shape error outside the skips "
        f"(guessed from {plan.source}; tried {', '.join(tried)}); give the input it takes: --input {plan.hint} "
        f"(one per forward argument, name=SIZES for a named one), or inputs = [\"{plan.hint}\"] in its "
        "[[tool.reslint.targets]] entry of pyproject.toml"
    )


def _shortened(text: str, limit: int = 100) -> str:
    text = text.splitlines()[0] if text else text
    return text if len(text) <= limit else text[: limit - 1] + "…"
