"""`reslint --fix` against eager execution, on random residual models (tests/generated_models.py).

For a generated model (every bug is in its own file), the fixes are applied as `reslint --fix
--unsafe-fixes` would (reslint.apply, in this process), and then:

  (a) the edited file runs eagerly on CPU tensors and no add broadcasts;
  (b) a second reslint on it reports nothing (exit 0);
  (c) every block that was right before computes the same output as before, with the same weights on the
      same input, when every fix applied was safe (an unsafe fix may change a right block: that is what
      unsafe means);
  (d) every validated fix could be written into the source (none is left report-only).

A model with a finding that has no validated fix is left out (counted in the statistics): there is
nothing for --fix to write, and the fix finder (reslint/fixes.py) is tested elsewhere.

--unsafe-fixes is used so that (a) and (b) hold for every model; the share of models fixed by safe
fixes alone is shown with --hypothesis-show-statistics.

    .venv/bin/python -m pytest tests/test_fix_differential.py                     # CI: 10 models
    RESLINT_LONG=500 .venv/bin/python -m pytest tests/test_fix_differential.py --hypothesis-show-statistics
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import sys
import tempfile

import torch
from hypothesis import HealthCheck, Phase, event, given, note, settings
from torch.overrides import TorchFunctionMode

from generated_models import ModelSpec, models
from reslint.apply import fixes_of, plan_fixes, write
from reslint.findings import Report
from reslint.runner import Job, lint_target
from reslint.trace.ops import ADD_NAMES

_LONG = os.environ.get("RESLINT_LONG", "")
_COUNT = int(_LONG) if _LONG.isdigit() and int(_LONG) > 1 else (1000 if _LONG else 10)
_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
PROFILE = settings(
    max_examples=_COUNT, deadline=None, derandomize=not _LONG, database=None, print_blob=True,
    phases=[Phase.explicit, Phase.generate] if not _LONG else [Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=_HEALTH,
)
_COUNTER = itertools.count()


def _import(path: str):
    name = f"reslint_fixdiff_{next(_COUNTER)}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build(path: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return _import(path).Net().eval()


def _lint(path: str, spec: ModelSpec) -> Report:
    for key, module in list(sys.modules.items()):  # the file changed: import it again
        if os.path.abspath(getattr(module, "__file__", None) or "") == path:
            del sys.modules[key]
    return Report(lint_target(Job(f"{path}:Net", inputs=(",".join(map(str, spec.input_shape)),))))


class _Broadcasts(TorchFunctionMode):
    """Counts adds in the model's file whose operands differ in shape (parameters aside: `x + self.pos`)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        tensors = [a for a in args[:2] if isinstance(a, torch.Tensor)]
        if getattr(func, "__name__", "") in ADD_NAMES and len(tensors) == 2 and tensors[0].shape != tensors[1].shape:
            if not any(isinstance(t, torch.nn.Parameter) for t in tensors):
                self.count += 1
        return func(*args, **(kwargs or {}))


def _inputs_of(model: torch.nn.Module, paths: list[str], x: torch.Tensor) -> dict[str, tuple]:
    """What each block received when the model ran on x."""
    seen: dict[str, tuple] = {}
    hooks = [model.get_submodule(p).register_forward_pre_hook(lambda m, a, p=p: seen.setdefault(p, tuple(t.clone() for t in a)))
             for p in paths]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def check_fix(spec: ModelSpec) -> None:
    directory = tempfile.mkdtemp(prefix="reslint-fixdiff-")
    path = os.path.join(directory, "model.py")
    with open(path, "w") as handle:
        handle.write(spec.source)
    note(spec.source)
    report = _lint(path, spec)
    assert all(r.status in ("ok", "findings") for r in report.targets), [(r.status, r.error, r.incomplete) for r in report.targets]
    assert bool(report.findings) == bool(spec.broken()), "reslint and the generator disagree (tests/test_differential.py's job)"
    if not report.findings:
        event("no bug")
        return
    fixes = [fix for f in report.findings for fix in fixes_of(f)]  # every instance's
    if not all(fix is not None and fix.validated for fix in fixes):
        event("a finding without a validated fix: nothing for --fix to write (the fix finder's job)")
        return
    before = _build(path)
    plan = plan_fixes(report, unsafe=True, root=directory)
    note(plan.diff)
    assert not plan.notes, plan.notes  # (d)
    all_safe = all(fix.safe for fix in fixes)
    event("every fix safe" if all_safe else "some fix unsafe")
    write(plan)

    after = _build(path)
    x = torch.randn(*spec.input_shape, generator=torch.Generator().manual_seed(0))
    counter = _Broadcasts()
    with torch.no_grad(), counter:
        after(x)  # (a) runs
    assert counter.count == 0, "an add still broadcasts"
    again = _lint(path, spec)
    assert again.exit_code == 0, [(f.code, f.line, f.message) for f in again.findings]  # (b)

    if not all_safe:
        return
    # right blocks: not broken, and neither inside a broken one nor holding one
    right = [b.path for b in spec.joins() if not b.broken
             and not any(b.path.startswith(o.path + ".") or o.path.startswith(b.path + ".") for o in spec.broken())]
    now = after.state_dict()
    old_state = before.state_dict()
    for block in right:  # a right block keeps its parameters, by name and shape
        mine = {k for k in old_state if k.startswith(block + ".")}
        assert mine == {k for k in now if k.startswith(block + ".")}, block
        assert all(old_state[k].shape == now[k].shape for k in mine), block
    after.load_state_dict({k: v for k, v in old_state.items() if k in now and now[k].shape == v.shape}, strict=False)
    inputs = _inputs_of(after, right, x)
    for block in right:
        if block not in inputs:
            continue
        with torch.no_grad():
            old, new = before.get_submodule(block)(*inputs[block]), after.get_submodule(block)(*inputs[block])
        assert torch.equal(old, new), f"{block} was right and computes something else after --fix"  # (c)


@PROFILE
@given(spec=models(max_bugs=None))
def test_fix_makes_generated_models_run_clean_and_keeps_right_blocks(spec):
    check_fix(spec)
