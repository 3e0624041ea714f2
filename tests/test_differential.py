"""Differential testing: reslint's findings against eager execution of the same random models.

tests/generated_models.py draws random residual models and writes each as a Python file, so every
join has a real line. The ground truth comes from running the model eagerly on small real CPU tensors:
the first crash and its line (the innermost frame of the traceback in the generated file), and, once
it runs, every line where an add broadcasts its operands (a TorchFunctionMode watching the adds). Eager
stops at the first crash while reslint reports every broken join, so the generator also knows, by
construction, which joins are broken; the two are cross-checked by repairing each crashing block with
the layer its author meant and running again, until the model runs. A disagreement there is a bug in
the generator (GeneratorBug); after it, a disagreement is reslint's.

Properties, on models with at most one root cause (exact) and with any number:
- reslint's findings for RL001/RL002/RL003 are the ground truth's root causes: one finding per (line, code)
  of a broken join (identical blocks, or blocks sharing a helper's add, are one root cause whose finding
  lists each module as an instance), so the number of findings equals the number of planted root
  causes; what fails downstream only because of a root cause is a note on it, never a finding; and zero
  findings for a correct model (the models have no error outside their joins).
- every validated fix is pasted as the user would and run eagerly, with the model's other root causes
  repaired: a statement fix (`fix.line` > 0: fix-pad, permute-back, crop, resize-to-skip, a functional
  pool's ceil_mode or padding) replaces lines fix.line..fix.end_line of the file at that statement's
  indent, and the file is imported and built again; a layer fix (`fix.line` == 0: project-skip, which goes
  after the block's `shortcut`, restride-skip, resize-transform, remove-reduction, repad-conv, repad-pool,
  ceil-mode-pool) is evaluated with `nn` in scope and put at `fix.module` in every instance of the
  finding. The model must then run without broadcasting.
- in a model with one root cause, the RL001 or RL002 finding comes with a validated fix (one always exists;
  KNOWN_GAPS lists reslint's gaps that have an xfail regression in tests/test_regressions_13.py).
- the fix a maintainer would write for each planted bug (expected_fix) is compared with reslint's: an
  event, and a `fix-kind` note in the survey file, not a failure.
The bug classes of real code (issue 13) are in tests/generated_models.py: ConvNeXt blocks missing their
permute back, Swin windows reversed with H and W swapped, causal convs not cropped, dilated convs whose
padding is not their dilation, ResNet-D avg-pool shortcuts without ceil_mode (a layer or an F.avg_pool2d
call), option-A F.pad shortcuts with the wrong amount or axis, U-Net decoders popping a skip list, nested
cats of 3 tensors, identical repeated blocks.
Below them, regressions the properties found, minimized by hand: each one failed before its fix.

Profiles: a short one by default (CI: 25 examples per property, derandomized, not shrunk), a long one with
RESLINT_LONG=1 (3000 examples per property) or RESLINT_LONG=N (N per property); RESLINT_SURVEY=out.jsonl
records every disagreement instead of stopping at the first (see run_property):

    .venv/bin/python -m pytest tests/test_differential.py
    RESLINT_LONG=1 .venv/bin/python -m pytest tests/test_differential.py --hypothesis-show-statistics
    RESLINT_LONG=1 RESLINT_SURVEY=/tmp/survey.jsonl .venv/bin/python -m pytest tests/test_differential.py
"""

from __future__ import annotations

import importlib.util
import dataclasses
import itertools
import json
import os
import re
import sys
import tempfile
import textwrap
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import pytest
import torch
from generated_models import (
    Block, CausalConv, ConvNeXt, ConvRes, Dilated, ModelSpec, Nested, OptionA, PoolShortcut, PopUNet, TokenRes, WindowAttn, Wrap,
    models,
)
from hypothesis import HealthCheck, Phase, event, given, note, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from torch.overrides import TorchFunctionMode

import reslint
from reslint.trace.ops import ADD_NAMES

_LONG = os.environ.get("RESLINT_LONG", "")
_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile(
    # No shrinking in CI, to stay fast when a property fails: the failing model is printed whole (rerun
    # with RESLINT_LONG=1, which shrinks, for a minimal one).
    "reslint-ci", max_examples=25, deadline=None, derandomize=True, database=None, print_blob=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate], suppress_health_check=_HEALTH,
)
settings.register_profile(
    "reslint-long", max_examples=int(_LONG) if _LONG.isdigit() and int(_LONG) > 1 else 3000, deadline=None,
    # Failures are replayed first on the next run; kept out of the repository.
    database=DirectoryBasedExampleDatabase(os.path.join(tempfile.gettempdir(), "reslint-differential-db")),
    print_blob=True, suppress_health_check=_HEALTH,
)
PROFILE = settings.get_profile("reslint-long" if _LONG else "reslint-ci")

JOIN_CODES = ("RL001", "RL002", "RL003")
# Layer fixes (`fix.line == 0`): `fix.module` names the layer (the block, for project-skip), `fix.code` is
# the layer's constructor (or `path = layer` lines); pasted into the built model at that path.
MODULE_FIXES = ("project-skip", "restride-skip", "resize-transform", "remove-reduction", "repad-conv", "repad-pool", "ceil-mode-pool")
# Statement fixes (`fix.line > 0`): `fix.code` replaces lines fix.line..fix.end_line of the file, at that
# statement's indent; pasted into the source, which is imported and run again.
STATEMENT_FIXES = ("fix-pad", "permute-back", "crop", "resize-to-skip", "repad-pool", "ceil-mode-pool")
_DIR = tempfile.mkdtemp(prefix="reslint-differential-")
_COUNTER = itertools.count()


class GeneratorBug(AssertionError):
    """Eager execution disagrees with the generator's construction: the test's bug, not reslint's."""


# -- a generated model, built and run -----------------------------------------------------------------


@dataclass
class Case:
    spec: ModelSpec
    path: str
    module: ModuleType

    def build(self) -> torch.nn.Module:
        torch.manual_seed(0)
        model = self.module.Net()
        model.eval()
        return model

    def example(self) -> torch.Tensor:
        return torch.randn(*self.spec.input_shape, generator=torch.Generator().manual_seed(0))

    def run(self, model: torch.nn.Module) -> torch.Tensor:
        with torch.no_grad():
            return model(self.example())

    def owners(self, model: torch.nn.Module) -> dict[int, Block]:
        """Built module id -> the block spec it was generated from (blocks that hold a join)."""
        return {id(model.get_submodule(b.path)): b for b in self.spec.joins()}

    def numbered_source(self) -> str:
        return "\n".join(f"{i:4d}  {line}" for i, line in enumerate(self.spec.source.splitlines(), 1))


def load(spec: ModelSpec, directory: str = _DIR) -> Case:
    name = f"reslint_generated_{next(_COUNTER)}"
    path = os.path.join(directory, f"{name}.py")
    with open(path, "w") as handle:
        handle.write(spec.source)
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    module_spec.loader.exec_module(module)
    return Case(spec, path, module)


def unload(case: Case, keep_file: bool) -> None:
    sys.modules.pop(case.module.__name__, None)
    if not keep_file:
        os.remove(case.path)


def crash_site(error: BaseException, path: str, owners: dict[int, Block]) -> tuple[int | None, Block | None]:
    """The innermost line of the generated file in the traceback, and the innermost block on the stack."""
    frames = []
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == path:
            frames.append(tb)
        tb = tb.tb_next
    if not frames:
        return None, None
    owner = None
    for tb in reversed(frames):
        me = tb.tb_frame.f_locals.get("self")
        if me is not None and id(me) in owners:
            owner = owners[id(me)]
            break
    return frames[-1].tb_lineno, owner


class BroadcastRecorder(TorchFunctionMode):
    """Records the lines of the generated file where an add broadcasts its operands (parameters aside:
    `x + self.pos` broadcasts over the batch on purpose)."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.lines: Counter = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", "")
        tensors = [a for a in args[:2] if isinstance(a, torch.Tensor)]
        if name in ADD_NAMES and len(tensors) == 2 and tensors[0].shape != tensors[1].shape:
            if not any(isinstance(t, torch.nn.Parameter) for t in tensors):
                frame = sys._getframe(1)
                while frame is not None and frame.f_code.co_filename != self.path:
                    frame = frame.f_back
                self.lines[frame.f_lineno if frame else None] += 1
        return result


def broadcasts(case: Case, model: torch.nn.Module) -> Counter:
    """Lines where the model's adds broadcast, running eagerly (the model must run)."""
    recorder = BroadcastRecorder(case.path)
    with recorder:
        case.run(model)
    return recorder.lines


def eager_crashes(case: Case) -> tuple[list[tuple[int, Block, str]], Counter]:
    """Run eagerly; at each crash, repair the crashing block as its author meant, and run again.

    Returns the crashes, and the lines where the model, once it runs, broadcasts."""
    model = case.build()
    owners = case.owners(model)
    crashes: list[tuple[int, Block, str]] = []
    for _ in range(len(case.spec.joins()) + 1):
        try:
            return crashes, broadcasts(case, model)
        except Exception as error:
            line, owner = crash_site(error, case.path, owners)
            message = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            if owner is None or not owner.crashes or any(owner is b for _, b, _ in crashes):
                raise GeneratorBug(
                    f"eager crashed at line {line} ({message}), in block {owner and owner.path!r}, "
                    f"which the generator does not know as broken\n{case.numbered_source()}"
                ) from error
            crashes.append((line, owner, message))
            owner.repair(model.get_submodule(owner.path))
    raise GeneratorBug("the repaired model still crashes")


def ground_truth(case: Case) -> Counter:
    """(line, code) of every broken join: by construction, cross-checked against eager runs."""
    crashes, broadcast_lines = eager_crashes(case)
    by_construction = Counter((b.line, b.code) for b in case.spec.broken())
    by_eager = Counter((line, b.code) for line, b, _ in crashes) + Counter({(line, "RL002"): n for line, n in broadcast_lines.items()})
    if by_eager != by_construction or len(crashes) != sum(b.crashes for b in case.spec.broken()):
        raise GeneratorBug(
            f"eager crashes {sorted(by_eager.elements())} != construction {sorted(by_construction.elements())}\n"
            f"{case.numbered_source()}"
        )
    for line, block, message in crashes:
        note(f"eager: line {line} in {block.path} ({type(block).__name__}, {block.bug}): {message}")
    return by_construction


# -- applying reslint's fixes ---------------------------------------------------------------------------


def set_module(model: torch.nn.Module, path: str, module: torch.nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(model.get_submodule(parent), name, module)


def rerooted(fix, finding, instance):
    """The finding's fix for another instance of identical blocks: the same layer at that instance's path."""
    if instance.fix is not None:
        return instance.fix
    if instance.module == finding.module or not finding.module:
        return fix
    root, other = finding.module + ".", instance.module + "."
    module = other + fix.module[len(root):] if fix.module.startswith(root) else instance.module if fix.module == finding.module else fix.module
    code = "\n".join(other + line[len(root):] if line.startswith(root) else line for line in fix.code.splitlines())
    return dataclasses.replace(fix, module=module, code=code)


def apply_fix(model: torch.nn.Module, fix) -> None:
    """Paste a layer fix as the user would: its code is evaluated with `nn` in scope and put in place.
    project-skip passes the block's skip (its `shortcut`'s output) through the projection."""
    scope = {"nn": torch.nn, "torch": torch}
    if fix.kind == "project-skip":
        block = model.get_submodule(fix.module)
        block.shortcut = torch.nn.Sequential(block.shortcut, eval(fix.code, scope)) if hasattr(block, "shortcut") else eval(fix.code, scope)
        return
    assignments = [re.match(r"^([\w.]+) = (.+)$", line) for line in fix.code.splitlines()]
    if all(assignments) and assignments:
        for match in assignments:
            set_module(model, match.group(1), eval(match.group(2), scope))
    else:
        set_module(model, fix.module, eval(fix.code, scope))


def paste_statement(source: str, fix) -> str:
    """The file with `fix.code` in place of lines fix.line..fix.end_line, at the first line's indent."""
    lines = source.splitlines()
    first = lines[fix.line - 1]
    indent = first[: len(first) - len(first.lstrip())]
    code = textwrap.dedent(fix.code).splitlines()
    lines[fix.line - 1 : fix.end_line] = [indent + line if line.strip() else line for line in code]
    return "\n".join(lines) + "\n"


# -- the properties ----------------------------------------------------------------------------------------


def describe(findings) -> str:
    return "\n".join(
        f"  {f.code} line {f.line} module {f.module!r}: {f.message}"
        + (f"\n      fix {f.fix.kind} at {f.fix.module!r} validated={f.fix.validated}: {f.fix.code!r}" if f.fix else "")
        for f in findings
    ) or "  (none)"


# The fix a maintainer would write for each planted bug class (issue 13): reported as an event, and in
# survey mode as a `fix-kind` note (not a disagreement) when reslint's validated fix is another.
EXPECTED_FIX = {ConvNeXt: "permute-back", CausalConv: "crop", Dilated: "repad-conv", PoolShortcut: "ceil-mode-pool",
                OptionA: "fix-pad", PopUNet: "resize-to-skip", Nested: "resize-to-skip",
                WindowAttn: "swap window_reverse's h and w"}  # no fix kind says that yet
RESIDUAL_FIX = {"missing": "project-skip", "proj_stride": "restride-skip", "proj_width": "restride-skip",
                "proj_width_one": "restride-skip", "transform_width": "resize-transform",
                "transform_width_one": "resize-transform", "pooled": "remove-reduction"}


def expected_fix(block: Block) -> str | None:
    if isinstance(block, (ConvRes, TokenRes, Wrap)):
        return RESIDUAL_FIX.get(block.bug)
    return EXPECTED_FIX.get(type(block))


# Classes whose broken join always has a validated fix (a swapped window reverse may have none).
NEEDS_FIX = (ConvRes, TokenRes, Wrap, ConvNeXt, CausalConv, Dilated, PoolShortcut, OptionA)
FIX_KIND_NOTES: list[dict] = []
# reslint gaps with an xfail(strict=True) regression in tests/test_regressions_13.py: (class, add form) whose
# missing validated fix is an event, not a failure. Drop an entry when its regression passes.
KNOWN_GAPS = {
    (ConvNeXt, form): "test_convnext_missing_permute_back_method_forms" for form in ("method", "method-on-skip", "in-place method")
}


def root_causes(spec: ModelSpec) -> dict[tuple[int, str], set[str]]:
    """Planted root causes: one per (line, code) of a broken join, with the modules where it occurs
    (identical blocks, or blocks sharing a helper's add, are one root cause at one line)."""
    roots: dict[tuple[int, str], set[str]] = {}
    for block in spec.broken():
        roots.setdefault((block.line, block.code), set()).add(block.path)
    return roots


def label(block: Block) -> str:
    return f"{type(block).__name__} {block.bug if block.bug else 'size'}"


def check_against_eager(spec: ModelSpec, require_validated_fix: bool = False) -> None:
    case = load(spec)
    passed = False
    try:
        note(f"model source ({case.path}):\n{spec.source}")
        truth = ground_truth(case)
        roots = root_causes(spec)
        event(f"broken joins: {sum(truth.values())}, root causes: {len(roots)}")
        event(f"model: {spec.domain}, {len(spec.joins())} joins" + (", shape branch" if spec.shape_branch else ""))
        for block in spec.broken():
            event(f"broken: {label(block)}")
        report = reslint.check(case.build(), case.example())
        target = report.targets[0]
        event(f"frontend: {target.frontend}")
        findings = report.findings
        context = (
            f"\nreslint said:\n{describe(findings)}\nground truth (line, code): {sorted(truth.elements())}\n"
            f"{case.numbered_source()}"
        )
        assert target.status != "error", f"reslint could not analyze the model: {target.error}{context}"
        found = Counter((f.line, f.code) for f in findings if f.code in JOIN_CODES)
        assert set(found) == set(roots), f"reslint's broken joins differ from eager execution{context}"
        assert sum(found.values()) == len(roots), f"{sum(found.values())} findings for {len(roots)} root causes{context}"
        for finding in (f for f in findings if f.code in JOIN_CODES):
            modules = {i.module for i in finding.instances} or {finding.module}
            assert modules == roots[(finding.line, finding.code)], (
                f"line {finding.line}: instances {sorted(modules)}, broken blocks {sorted(roots[(finding.line, finding.code)])}{context}")
        assert all(os.path.realpath(f.path) == os.path.realpath(case.path) for f in findings), f"wrong file{context}"
        others = [f for f in findings if f.code not in JOIN_CODES]
        assert not others, f"findings besides the broken joins (the model has no other error){context}"

        for finding in findings:
            owners = [b for b in spec.broken() if (b.line, b.code) == (finding.line, finding.code)]
            gap = any((type(b), getattr(b, "form", "")) in KNOWN_GAPS for b in owners)
            if require_validated_fix and any(isinstance(b, NEEDS_FIX) for b in owners) and not gap:
                assert finding.fix is not None and finding.fix.validated, f"no validated fix for line {finding.line}{context}"
            if finding.fix is None or not finding.fix.validated:
                event(f"{finding.code} without a validated fix" + (" (known gap)" if gap else ""))
                continue
            event(f"{finding.code} fix: {finding.fix.kind}" + (" (statement)" if finding.fix.line else ""))
            expected = {expected_fix(b) for b in owners} - {None}
            if "restride-skip" in expected and finding.fix.line == 0 and ".shortcut" in f".{finding.fix.module}":
                if finding.fix.kind != "restride-skip":  # the right layer (the skip's projection), another name
                    event(f"skip projection resized, named {finding.fix.kind}")
            elif expected and finding.fix.kind not in expected:
                event(f"not the maintainer's fix: {label(owners[0])} got {finding.fix.kind}")
                FIX_KIND_NOTES.append({"kind": "fix-kind", "block": label(owners[0]), "expected": sorted(expected),
                                       "got": finding.fix.kind, "code": finding.fix.code})
            paste_and_run(case, finding, context)
        passed = True
    finally:
        unload(case, keep_file=not passed)  # a failing model's file stays, for the note above


def paste_and_run(case: Case, finding, context: str) -> None:
    """Paste a validated fix as the user would, with the model's other broken joins repaired, and run it
    eagerly: it must run, without broadcasting. A statement fix is pasted into the file, which is imported
    again; a layer fix is put into the built model, in every instance of the finding."""
    spec, fix = case.spec, finding.fix
    others = [b for b in spec.broken() if (b.line, b.code) != (finding.line, finding.code)]
    pasted = None
    if fix.line > 0:
        assert fix.kind in STATEMENT_FIXES, f"a statement fix of an unknown kind {fix.kind}{context}"
        try:
            source = paste_statement(spec.source, fix)
            compile(source, "pasted", "exec")
        except SyntaxError as error:
            raise AssertionError(f"the fix for line {finding.line} ({fix.kind}: {fix.code!r}) does not parse once pasted: {error}{context}") from error
        pasted = load(dataclasses.replace(spec, source=source))
        run_case, model = pasted, pasted.build()
    elif fix.kind in MODULE_FIXES and not fix.code.startswith("#"):
        run_case, model = case, case.build()
    else:
        event(f"not pasteable: {fix.kind}")
        return
    passed = False
    try:
        for block in others:
            block.repair(model.get_submodule(block.path))
        try:
            if pasted is None:
                for instance in finding.instances or [None]:
                    apply_fix(model, fix if instance is None else rerooted(fix, finding, instance))
            broadcast_lines = broadcasts(run_case, model)
        except Exception as error:
            line, _ = crash_site(error, run_case.path, run_case.owners(model))
            raise AssertionError(
                f"the validated fix for line {finding.line} ({fix.kind} at {fix.module!r}, lines {fix.line}-{fix.end_line}: "
                f"{fix.code!r}) does not make the model run once pasted: {type(error).__name__} at line {line}: "
                f"{str(error).splitlines()[0] if str(error) else ''}{context}"
            ) from error
        assert not broadcast_lines, (
            f"with the validated fix for line {finding.line} ({fix.kind} at {fix.module!r}: "
            f"{fix.code!r}) pasted, the model runs, but broadcasts at lines {sorted(broadcast_lines)}{context}"
        )
        passed = True
    finally:
        if pasted is not None:
            unload(pasted, keep_file=not passed)


# Survey mode (RESLINT_SURVEY=file.jsonl, with either profile): the properties record each disagreement
# in the file and go on instead of stopping at the first (no shrinking then), so one long run lists them
# all; test_survey_found_no_disagreements, which runs after them, then fails if any was recorded.
SURVEY = os.environ.get("RESLINT_SURVEY")
SURVEYED: Counter = Counter()  # examples run, per property
DISAGREEMENTS: list[dict] = []


def diagnose(spec: ModelSpec) -> str:
    """For a model with several broken joins: does reslint agree on each of them alone (the others repaired)?"""
    broken = spec.broken()
    label = ", ".join(f"{type(b).__name__}:{b.bug}:{getattr(b, 'form', getattr(b, 'cat', ''))}" for b in broken)
    if any(getattr(b, "form", "") == "in-place method" for b in spec.joins()):
        label += " [model has an in-place add_]"
    if len(broken) < 2:
        return f"{len(broken)} broken join(s): {label}"
    case = load(spec)
    try:
        alone = []
        for block in broken:
            model = case.build()
            for other in broken:
                if other is not block:
                    other.repair(model.get_submodule(other.path))
            try:
                found = sorted((f.line, f.code) for f in reslint.check(model, case.example()).findings)
            except Exception as error:  # noqa: BLE001
                found = [type(error).__name__]
            if found != [(block.line, block.code)]:
                alone.append(f"{type(block).__name__}:{block.bug}:{getattr(block, 'form', getattr(block, 'cat', ''))}")
        if not alone:
            return f"each broken join alone agrees: the broken joins interact ({label})"
        return "disagrees on a broken join alone: " + ", ".join(alone) + (" [model has an in-place add_]" if "[" in label else "")
    finally:
        unload(case, keep_file=False)


def run_property(name: str, spec: ModelSpec, require_validated_fix: bool) -> None:
    if not SURVEY:
        check_against_eager(spec, require_validated_fix)
        return
    SURVEYED[name] += 1
    try:
        check_against_eager(spec, require_validated_fix)
    except Exception as error:  # noqa: BLE001 - recorded, and failed on by test_survey_found_no_disagreements
        kind = "generator" if isinstance(error, GeneratorBug) else "reslint"
        record = {
            "property": name, "kind": kind, "summary": str(error).splitlines()[0] if str(error) else type(error).__name__,
            "diagnosis": diagnose(spec) if kind == "reslint" and isinstance(error, AssertionError) else "",
            "broken": sorted(label(b) for b in spec.broken()),
            "input_shape": spec.input_shape, "source": spec.source, "details": f"{type(error).__name__}: {error}",
        }
        DISAGREEMENTS.append(record)
        with open(SURVEY, "a") as handle:
            handle.write(json.dumps(record) + "\n")


@PROFILE
@given(spec=models(max_bugs=1))
def test_models_with_at_most_one_broken_join(spec):
    run_property("at most one broken join", spec, require_validated_fix=True)


@PROFILE
@given(spec=models(max_bugs=None))
def test_models_with_any_number_of_broken_joins(spec):
    run_property("any number of broken joins", spec, require_validated_fix=False)


@pytest.mark.skipif(not SURVEY, reason="survey mode only (RESLINT_SURVEY=file.jsonl)")
def test_survey_found_no_disagreements():
    summary = Counter((d["property"], d["kind"], re.sub(r"line \d+", "line N", d["summary"])[:80], d["diagnosis"]) for d in DISAGREEMENTS)
    lines = [f"{count:5d}  {prop} | {kind} | {text} | {why}" for (prop, kind, text, why), count in summary.most_common()]
    with open(SURVEY, "a") as handle:
        for record in FIX_KIND_NOTES:
            handle.write(json.dumps(record) + "\n")
        handle.write(json.dumps({"examples": dict(SURVEYED), "disagreements": len(DISAGREEMENTS),
                                 "not the maintainer's fix": len(FIX_KIND_NOTES)}) + "\n")
    assert not DISAGREEMENTS, f"{len(DISAGREEMENTS)} disagreements in {dict(SURVEYED)} examples (see {SURVEY}):\n" + "\n".join(lines)


# -- regressions: models the properties above found reslint wrong on, fixed since --------------------------
#
# Hand-minimized from models the properties generated. Lines marked `# expect: CODE` are the broken joins:
# eager execution crashes there, one after the other as `repairs` puts in the layers the author meant
# (test_regression_ground_truth checks that). reslint must report exactly those, and each validated fix,
# pasted into the model with the model's other broken joins repaired, must make the model run eagerly.

EAGER_BRANCH = "if x.shape[0] == 0:  # torch.fx cannot trace this: reslint's eager frontend runs\n                return x"

SETTLE_LOOKAHEAD = """
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.mlp = nn.Sequential(nn.Linear(2, 4), nn.GELU(), nn.Linear(4, 2))
            self.inner_shortcut = nn.Linear(2, 3)  # should be nn.Linear(2, 2)
            self.outer_shortcut = nn.Linear(2, 3)  # should be nn.Linear(2, 2)
            self.head = nn.Linear(2, 10)
            self.aux = nn.Linear(2, 10)

        def forward(self, x):
            out = self.mlp(x)
            out = out + self.inner_shortcut(x)  # expect: RL001
            out = {outer}  # expect: RL001
            return self.head(out), self.aux(out)
"""
SETTLE_REPAIRS = {
    16: lambda model: setattr(model, "inner_shortcut", torch.nn.Linear(2, 2)),
    17: lambda model: setattr(model, "outer_shortcut", torch.nn.Linear(2, 2)),
}

STRIDED_DENSE_LAYER = """
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, 2, 1)  # a DenseNet layer with a stray stride
            self.next = nn.Conv2d(8, 8, 3)

        def forward(self, x):
            {branch}
            new = self.conv(x)
            x = torch.cat([new, x], dim=1)  # expect: RL003
            return self.next(x)
"""
STRIDED_DENSE_REPAIRS = {14: lambda model: setattr(model, "conv", torch.nn.Conv2d(4, 4, 3, 1, 1))}

INPLACE_ADD_WRONG_TRANSFORM = """
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.mlp = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 6))  # should end in 8
            self.norm = nn.LayerNorm(8)

        def forward(self, x):
            {branch}
            out = self.mlp(x)
            {join}  # expect: RL001
            return self.norm(out)
"""

HIDDEN_ODD_SIZE_UNET = """
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.dense = nn.Conv2d(2, 8, 3, 2, 1)  # a DenseNet layer with a stray stride
            self.enc = nn.Conv2d(10, 6, 3, 1, 1)
            self.down = nn.Conv2d(6, 6, 3, 2, 1)
            self.up = nn.ConvTranspose2d(6, 6, 2, stride=2)  # 8x7 -> 4x4 -> 8x8: wrong for an odd size

        def forward(self, x):
            x = torch.cat([x, self.dense(x)], dim=1)  # expect: RL003
            skip = self.enc(x)
            y = self.up(self.down(skip))
            return torch.cat([skip, y], dim=1)  # expect: RL003
"""

UNKNOWN_HIDES_FAILURES = """
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.mlp = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 6))  # should end in 8
            self.attn = nn.MultiheadAttention(8, 1, batch_first=True)
            self.proj = nn.Linear(8, 4)
            self.shortcut = nn.Identity()  # the block narrows 8 -> 4: should be nn.Linear(8, 4)

        def forward(self, x):
            x = x + self.mlp(x)  # expect: RL001
            out = self.proj(self.attn(x, x, x, need_weights=False)[0])
            return self.shortcut(x) + out  # expect: RL001
"""

INPLACE_ADD_THEN_JOIN = """
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, 1, 1)
            self.shortcut = nn.Conv2d(4, 4, 1)
            self.next = nn.Conv2d(4, 4, 3, 1, 1)

        def forward(self, x):
            out = self.conv(x)
            out.add_(self.shortcut(x))  # a residual add written in place: correct
            return {join}  # a DenseNet layer, or another residual block, on the block's output: correct
"""

IDENTITY_INSIDE_A_WRAPPED_BLOCK = """
    import torch
    from torch import nn


    class Inner(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, 1, 1)
            self.shortcut = nn.Identity()

        def forward(self, x):
            return self.conv(x) + self.shortcut(x)


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = Inner()
            self.shortcut = nn.Conv2d(4, 4, 1, stride=2)  # should have stride 1

        def forward(self, x):
            {branch}
            out = self.inner(x)
            return out + self.shortcut(x)  # expect: RL001
"""

TRANSPOSED_CONV_PINS_THE_WIDTH = """
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 10, 3, 1, 1)  # should output 9 channels
            self.shortcut = nn.Conv2d(4, 9, 1)
            self.up = nn.ConvTranspose2d(9, 4, 2, stride=2)

        def forward(self, x):
            out = self.conv(x) + self.shortcut(x)  # expect: RL001
            return self.up(out)
"""

TRANSPOSED_CONV_WRONG_IN_CHANNELS = """
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.down = nn.Conv2d(4, 8, 3, 2, 1)
            self.up = nn.ConvTranspose2d(6, 4, 2, stride=2)  # should take 8 channels

        def forward(self, x):
            y = self.up(self.down(x))  # expect: RL000
            return torch.cat([x, y], dim=1)
"""

NARROW_TRANSFORM_IN_PLACE = """
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner_proj = nn.Linear(8, 1)  # should be nn.Linear(8, 4)
            self.inner_shortcut = nn.Linear(8, 4)
            self.outer_shortcut = nn.Linear(8, 4)

        def forward(self, x):
            out = self.inner_proj(x)
            out += self.inner_shortcut(x)  # expect: RL001
            return self.outer_shortcut(x).add(out)
"""

POOLED_TRANSFORM_IN_PLACE = """
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, 1, 1)
            self.pool = nn.AdaptiveMaxPool2d((1, 1))  # pools away what the skip keeps
            self.next = nn.Conv2d(4, 4, 3, 1, 1)

        def forward(self, x):
            out = self.pool(self.conv(x))
            out += x  # expect: RL001
            return out + self.next(out)
"""

EAGER_RUN_DERAILED_BY_A_SUBSTITUTE = """
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.dense = nn.Conv2d(4, 4, 3, 4, 1)  # a DenseNet layer with a stray stride: 8x8 -> 2x2
            self.next = nn.Conv2d(8, 6, 3)  # needs at least 3x3
            self.body = nn.Conv2d(6, 6, 3, 1, 1)
            self.shortcut = nn.Conv2d(6, 5, 1)  # should be nn.Conv2d(6, 6, 1)

        def forward(self, x):
            if x.shape[0] == 0:  # torch.fx cannot trace this: reslint's eager frontend runs
                return x
            x = torch.cat([self.dense(x), x], dim=1)  # expect: RL003
            y = self.next(x)
            return self.body(y) + self.shortcut(y)  # expect: RL001
"""

ATTENTION_ON_THE_WRONG_WIDTH = """
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(8, 6)  # should be nn.Linear(8, 8)
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
            self.mlp = nn.Linear(8, 8)
            self.shortcut = nn.Linear(8, 4)  # should be nn.Linear(8, 8)

        def forward(self, x):
            h = self.embed(x)
            y = self.attn(h, h, h, need_weights=False)[0]  # expect: RL000
            return self.mlp(y) + self.shortcut(y)  # expect: RL001
"""

A_LATER_JOIN_LINES_UP_WITH_THE_WRONG_FIX = """
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body1 = nn.Conv2d(4, 4, 3, 1, 1)
            self.shortcut1 = nn.Conv2d(4, 4, 1, stride=2)  # should have stride 1
            self.body2 = nn.Conv2d(4, 4, 3, 2, 1)
            self.shortcut2 = nn.Conv2d(4, 4, 1, stride=4)  # should have stride 2

        def forward(self, x):
            a = self.body1(x) + self.shortcut1(x)  # expect: RL001
            return self.body2(a) + self.shortcut2(x)  # expect: RL001
"""

DENSE_BLOCK_WITH_A_STRAY_STRIDE = """
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([
                nn.Conv2d(4, 3, 3, 2, 1),  # should have stride 1
                nn.Conv2d(7, 3, 3, 1, 1),
                nn.Conv2d(10, 3, 3, 1, 1),
            ])

        def forward(self, x):
            features = [x]
            for layer in self.layers:
                features.append(torch.relu(layer(torch.cat(features, 1))))  # expect: RL003
            return torch.cat(features, 1)
"""

A_FIX_JUDGED_PAST_THE_NEXT_BROKEN_JOIN = """
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.mlp = nn.Sequential(nn.Linear(10, 2), nn.GELU(), nn.Linear(2, 2))  # should end in 4
            self.inner_shortcut = nn.Linear(10, 4)
            self.shortcut = nn.Identity()  # should be nn.Linear(10, 4)
            self.norm = nn.LayerNorm(4)

        def forward(self, x):
            out = self.mlp(x) + self.inner_shortcut(x)  # expect: RL001
            out += self.shortcut(x)  # expect: RL001
            return self.norm(out)
"""

A_FIX_THAT_MAKES_THE_NEXT_BROKEN_JOIN_BROADCAST = """
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(3, 1)  # should be nn.Linear(3, 2)
            self.inner_shortcut = nn.Linear(3, 2)
            self.shortcut = nn.Identity()  # should be nn.Linear(3, 2)
            self.norm = nn.LayerNorm(2)

        def forward(self, x):
            out = self.proj(x)
            out += self.inner_shortcut(x)  # expect: RL001
            out = self.shortcut(x) + out  # expect: RL001
            return self.norm(out)
"""

TWO_BROKEN_JOINS_THAT_LINE_UP_WITH_THE_WRONG_FIX = """
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(4, 6)  # should be nn.Linear(4, 3)
            self.inner_shortcut = nn.Linear(4, 3)
            self.shortcut = nn.Linear(4, 6)  # should be nn.Linear(4, 3)
            self.norm = nn.LayerNorm(3)

        def forward(self, x):
            out = self.proj(x) + self.inner_shortcut(x)  # expect: RL001
            out = self.shortcut(x) + out  # expect: RL001
            return self.norm(out)
"""

REGRESSIONS = {
    "wrong-fix-lines-up-the-next-broken-join": (TWO_BROKEN_JOINS_THAT_LINE_UP_WITH_THE_WRONG_FIX, (2, 5, 4), {
        14: lambda model: setattr(model, "proj", torch.nn.Linear(4, 3)),
        15: lambda model: setattr(model, "shortcut", torch.nn.Linear(4, 3)),
    }),
    "fix-judged-past-the-next-broken-join": (A_FIX_JUDGED_PAST_THE_NEXT_BROKEN_JOIN, (2, 3, 10), {
        14: lambda model: model.mlp.__setitem__(2, torch.nn.Linear(2, 4)),
        15: lambda model: setattr(model, "shortcut", torch.nn.Linear(10, 4)),
    }),
    "fix-makes-the-next-broken-join-broadcast": (A_FIX_THAT_MAKES_THE_NEXT_BROKEN_JOIN_BROADCAST, (2, 3, 3), {
        15: lambda model: setattr(model, "proj", torch.nn.Linear(3, 2)),
        16: lambda model: setattr(model, "shortcut", torch.nn.Linear(3, 2)),
    }),
    "dense-block-stray-stride": (DENSE_BLOCK_WITH_A_STRAY_STRIDE, (2, 4, 8, 8), {
        17: lambda model: model.layers.__setitem__(0, torch.nn.Conv2d(4, 3, 3, 1, 1)),
    }),
    "later-join-lines-up-with-the-wrong-fix": (A_LATER_JOIN_LINES_UP_WITH_THE_WRONG_FIX, (2, 4, 8, 8), {
        14: lambda model: setattr(model, "shortcut1", torch.nn.Conv2d(4, 4, 1)),
        15: lambda model: setattr(model, "shortcut2", torch.nn.Conv2d(4, 4, 1, stride=2)),
    }),
    "narrow-transform-in-place": (NARROW_TRANSFORM_IN_PLACE, (2, 3, 8), {
        14: lambda model: setattr(model, "inner_proj", torch.nn.Linear(8, 4)),
    }),
    "pooled-transform-in-place": (POOLED_TRANSFORM_IN_PLACE, (2, 4, 6, 6), {
        14: lambda model: setattr(model, "pool", torch.nn.Identity()),
    }),
    "eager-run-derailed": (EAGER_RUN_DERAILED_BY_A_SUBSTITUTE, (2, 4, 8, 8), {
        16: lambda model: setattr(model, "dense", torch.nn.Conv2d(4, 4, 3, 1, 1)),
        18: lambda model: setattr(model, "shortcut", torch.nn.Conv2d(6, 6, 1)),
    }),
    "attention-on-the-wrong-width": (ATTENTION_ON_THE_WRONG_WIDTH, (2, 5, 8), {
        15: lambda model: setattr(model, "embed", torch.nn.Linear(8, 8)),
        16: lambda model: setattr(model, "shortcut", torch.nn.Linear(8, 8)),
    }),
    # name: (source, input shape, {line of a broken join: repair of a built model})
    "settle-lookahead-control": (SETTLE_LOOKAHEAD.replace("{outer}", "out + self.outer_shortcut(x)"), (2, 5, 2), SETTLE_REPAIRS),
    "settle-lookahead": (SETTLE_LOOKAHEAD.replace("{outer}", "self.outer_shortcut(x) + out"), (2, 5, 2), SETTLE_REPAIRS),
    "strided-dense-fx": (STRIDED_DENSE_LAYER.replace("{branch}", "pass"), (2, 4, 4, 4), STRIDED_DENSE_REPAIRS),
    "strided-dense-eager": (STRIDED_DENSE_LAYER.replace("{branch}", EAGER_BRANCH), (2, 4, 4, 4), {15: STRIDED_DENSE_REPAIRS[14]}),
    "augmented-add-control": (
        INPLACE_ADD_WRONG_TRANSFORM.replace("{branch}", "pass").replace("{join}", "out += x"), (2, 5, 8),
        {14: lambda model: model.mlp.__setitem__(2, torch.nn.Linear(16, 8))},
    ),
    "inplace-add-fx": (
        INPLACE_ADD_WRONG_TRANSFORM.replace("{branch}", "pass").replace("{join}", "out.add_(x)"), (2, 5, 8),
        {14: lambda model: model.mlp.__setitem__(2, torch.nn.Linear(16, 8))},
    ),
    "inplace-add-eager": (
        INPLACE_ADD_WRONG_TRANSFORM.replace("{branch}", EAGER_BRANCH).replace("{join}", "out.add_(x)"), (2, 5, 8),
        {15: lambda model: model.mlp.__setitem__(2, torch.nn.Linear(16, 8))},
    ),
    "inplace-add-then-cat": (INPLACE_ADD_THEN_JOIN.replace("{join}", "torch.cat([out, self.next(out)], dim=1)"), (2, 4, 6, 6), {}),
    "inplace-add-then-add": (INPLACE_ADD_THEN_JOIN.replace("{join}", "out + self.next(out)"), (2, 4, 6, 6), {}),
    "identity-inside-fx": (IDENTITY_INSIDE_A_WRAPPED_BLOCK.replace("{branch}", "pass"), (2, 4, 8, 8), {
        24: lambda model: setattr(model, "shortcut", torch.nn.Conv2d(4, 4, 1)),
    }),
    "identity-inside-eager": (IDENTITY_INSIDE_A_WRAPPED_BLOCK.replace("{branch}", EAGER_BRANCH), (2, 4, 8, 8), {
        25: lambda model: setattr(model, "shortcut", torch.nn.Conv2d(4, 4, 1)),
    }),
    "transposed-conv-pins-width": (TRANSPOSED_CONV_PINS_THE_WIDTH, (2, 4, 8, 8), {
        13: lambda model: setattr(model, "conv", torch.nn.Conv2d(4, 9, 3, 1, 1)),
    }),
    "transposed-conv-in-channels": (TRANSPOSED_CONV_WRONG_IN_CHANNELS, (2, 4, 8, 8), {
        12: lambda model: setattr(model, "up", torch.nn.ConvTranspose2d(8, 4, 2, stride=2)),
    }),
    "hidden-odd-size-unet": (HIDDEN_ODD_SIZE_UNET, (2, 2, 8, 7), {
        14: lambda model: setattr(model, "dense", torch.nn.Conv2d(2, 8, 3, 1, 1)),
        17: lambda model: setattr(model, "up", torch.nn.Sequential(torch.nn.Upsample(size=(8, 7)), torch.nn.Conv2d(6, 6, 1))),
    }),
    "unknown-hides-failures": (UNKNOWN_HIDES_FAILURES, (2, 5, 8), {
        14: lambda model: model.mlp.__setitem__(2, torch.nn.Linear(16, 8)),
        16: lambda model: setattr(model, "shortcut", torch.nn.Linear(8, 4)),
    }),
}


def load_regression(name: str) -> tuple[ModuleType, str, list[tuple[int, str]], torch.Tensor, dict[int, Callable]]:
    source, input_shape, repairs = REGRESSIONS[name]
    source = textwrap.dedent(source).lstrip("\n")
    module_name = f"reslint_regression_{next(_COUNTER)}"
    path = os.path.join(_DIR, f"{module_name}.py")
    with open(path, "w") as handle:
        handle.write(source)
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    expected = sorted(
        (i, code) for i, line in enumerate(source.splitlines(), 1) for code in re.findall(r"# expect: (RL\d{3})", line)
    )
    example = torch.randn(*input_shape, generator=torch.Generator().manual_seed(0))
    return module, source, expected, example, repairs


@pytest.mark.parametrize("name", REGRESSIONS)
def test_regression_ground_truth(name):
    """The test's side of each regression: eager crashes at each marked line in turn, and runs once all are repaired."""
    module, _, expected, example, repairs = load_regression(name)
    path = module.__file__
    model = module.Net().eval()
    crashed = []
    for _ in range(len(expected) + 1):
        try:
            with torch.no_grad():
                model(example)
            break
        except Exception as error:  # noqa: BLE001
            line, _ = crash_site(error, path, {})
            crashed.append(line)
            assert line in repairs, f"eager crashed at unexpected line {line}: {error}"
            repairs[line](model)
    assert crashed == [line for line, _ in expected]


def check_regression(name: str) -> None:
    module, source, expected, example, repairs = load_regression(name)
    report = reslint.check(module.Net().eval(), example)
    numbered = "\n".join(f"{i:4d}  {line}" for i, line in enumerate(source.splitlines(), 1))
    context = f"\nreslint said:\n{describe(report.findings)}\n{numbered}"
    assert sorted((f.line, f.code) for f in report.findings) == expected, context
    for finding in report.findings:
        if finding.fix is None or not finding.fix.validated or finding.fix.kind not in MODULE_FIXES or finding.fix.line:
            continue
        model = module.Net().eval()
        for line, repair in repairs.items():
            if line != finding.line:
                repair(model)
        apply_fix(model, finding.fix)
        recorder = BroadcastRecorder(module.__file__)
        with torch.no_grad(), recorder:
            model(example)  # raises if the validated fix does not make the model run
        assert not recorder.lines, f"the fix for line {finding.line} makes the model broadcast at {sorted(recorder.lines)}{context}"


def test_two_wrong_skips_transform_first_later_join():
    """The control for the next test: with the later join written `out + skip`, both broken joins are found."""
    check_regression("settle-lookahead-control")


def test_two_wrong_skips_skip_first_later_join():
    """Only the operand order of the second add differs. settle used to rank the first add's substitutes with
    the second add on its default substitute (its left operand, the skip, width 3): both heads failed, and
    reslint reported two RL000, missed the second add, and 'validated' a fix that left the model crashing.
    Now later failing joins take their preferred side during the trials, and do not count as evidence."""
    check_regression("settle-lookahead")


def test_strided_dense_layer_fx():
    check_regression("strided-dense-fx")


def test_strided_dense_layer_eager_frontend():
    """The eager frontend runs the model on the cat's substitute (the strided `new`'s 2x2) and `next` fails
    on it twice (as is, and on adapt_input's retry). The second error used to escape the recorder as a
    plain RuntimeError, and reslint.check raised TargetError instead of reporting RL003."""
    check_regression("strided-dense-eager")


def test_augmented_add_with_wrong_transform_width():
    """The control: `out += x` is found, fixed by resize-transform, and nothing else is reported."""
    check_regression("augmented-add-control")


@pytest.mark.parametrize("frontend", ["fx", "eager"])
def test_inplace_add_method_with_wrong_transform_width(frontend):
    """`out.add_(x)` with its result dropped: later code reads `out`. The graph used to keep `out` as the
    mlp's output (width 6), so the add's settled shape (8) never reached `norm`: a false RL000, and a
    'validated' fix under which the model still crashed."""
    check_regression(f"inplace-add-{frontend}")


def test_a_wrong_substitute_hides_a_later_broken_concat():
    """Eager, with the dense layer fixed, crashes at the U-Net cat (8x7 vs 8x8). reslint used to settle the first
    cat on the strided operand's 4x4 (4x4 -> 2x2 -> 4x4 lines up by chance: fewer failures), missing the
    second. A later join that works, or fails, is no evidence for a substitute: only layers that reject it are."""
    check_regression("hidden-odd-size-unet")


def test_a_substitute_that_stops_propagation_hides_later_failures():
    """Settling the first add on the transform's width 6 makes `attn` fail with no substitute, so everything
    after is unknown. Counting only failures, that tied with the right choice (width 8); unknown nodes now
    count against a substitute."""
    check_regression("unknown-hides-failures")


@pytest.mark.parametrize("join", ["cat", "add"])
def test_inplace_add_before_the_next_join_is_not_rl006(join):
    """`out.add_(sc)` happens before the next join reads `out` on both of its paths, so the join gets the
    value the code means: not RL006 (the add_'s result now reaches later reads of `out`, and RL006 needs the
    transform to have read the skip before the in-place op, or through it)."""
    check_regression(f"inplace-add-then-{join}")


def test_identity_shortcut_inside_the_transform_fx():
    """The control: fx finds the outer add, with the shortcut as its skip and a restride-skip fix."""
    check_regression("identity-inside-fx")


def test_identity_shortcut_inside_the_transform_eager_frontend():
    """nn.Identity returns its input object. The eager recorder used to rebind that tensor to the Identity
    node, so the outer `self.shortcut(x)` read x through Inner's Identity: skip and transform were swapped,
    and the 'validated' fix left the model crashing."""
    check_regression("identity-inside-eager")


def test_a_transposed_conv_after_the_join_pins_its_width():
    """torch's meta kernel for conv_transpose accepts any number of input channels (CPU raises); reslint
    checks them itself, so `up` rejects the transform's 10 channels and the fix gives the skip 9."""
    check_regression("transposed-conv-pins-width")


def test_a_transposed_conv_with_the_wrong_in_channels_is_rl000():
    """The same gap outside any join: the model cannot run, and reslint reports RL000 there."""
    check_regression("transposed-conv-in-channels")


def test_a_narrow_transform_added_in_place_takes_the_broadcast_shape():
    """`out += sc` with out [.., 1] cannot grow out. Its substitute used to be out's shape (the transform's),
    under which the outer add broadcast silently: the 'validated' fix narrowed the inner shortcut to 1 and
    moved the bug on. The substitute is now what the written add computes (the broadcast shape), and a fix
    that makes another join broadcast is not validated."""
    check_regression("narrow-transform-in-place")


def test_a_pooled_transform_added_in_place_is_fixed_by_removing_the_pooling():
    """The fix used to project the skip with stride (6, 6) down to 1x1, moving the bug to the next add."""
    check_regression("pooled-transform-in-place")


def test_the_eager_recording_reruns_on_the_settled_substitute():
    """The eager recorder hands the model's code the cat's first substitute (the strided 2x2); `next` cannot
    run on it and the recording used to end there, missing the add. settle prefers the skip's 8x8, and
    the model is now recorded again on it."""
    check_regression("eager-run-derailed")


def test_attention_on_the_wrong_width_does_not_end_the_analysis():
    """MultiheadAttention had no substitute: everything after it was unknown and the add was missed."""
    check_regression("attention-on-the-wrong-width")


def test_a_fix_is_not_judged_by_a_later_broken_join():
    """The right fix for the first add (shortcut1 at stride 1) leaves the second add failing: its own bug.
    The wrong one (body1 at stride 2) lines the second add up by chance, and used to be the fix reported as
    validated, since only failures under every substitute of the first add were forgiven. Joins that fail
    as settled are now bugs of their own, whatever a fix elsewhere does to them."""
    check_regression("later-join-lines-up-with-the-wrong-fix")


def test_a_dense_layer_with_a_stray_stride_is_one_finding():
    """The strided layer's output is concatenated again by every later layer and by the block's last cat:
    that used to be three RL003 for one bug (two of them comparing the skip with a tensor of its own size)."""
    check_regression("dense-block-stray-stride")


@pytest.mark.parametrize("name", ["fix-judged-past-the-next-broken-join", "fix-makes-the-next-broken-join-broadcast"])
def test_a_fix_is_judged_through_the_next_broken_join(name):
    """Fix validation stops at a later broken join that a fix lines up by chance (1,000 broken blocks in
    seconds), but not at one that still fails: its substitute, here the wrong width the fix gave the
    first block, must reach `norm`. A later broken join that the fix makes broadcast rejects the fix."""
    check_regression(name)


def test_a_fix_must_give_the_join_its_settled_shape():
    """Widening inner_shortcut to 6 lines the second add up (6 + 6), past which a fix used to be judged no
    further: 'validated', and the model crashed at `norm`. settle found the block's width to be 3 (what
    `norm` takes); a fix must now give the join that shape."""
    check_regression("wrong-fix-lines-up-the-next-broken-join")
