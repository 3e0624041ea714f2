"""Run lint jobs: each in a forked child process by default, or in this process where fork is missing.

reslint imports and runs the user's model code. Isolated, a target that exits, hangs, crashes or
prints cannot take reslint (or the other targets' results) down: it becomes one error line, and the
results come back in the order the targets were given. `lint_target` itself turns what model code
raises (including `SystemExit` and `KeyboardInterrupt`) into an error for that target, and keeps
what the model printed in `TargetResult.output`.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass
from typing import Any, Callable

import reslint.quiet_torch  # noqa: F401  (before anything imports torch)
from reslint.findings import TargetResult

DEFAULT_TIMEOUT = 600.0  # seconds per target; a bound, not an estimate (a 70B decoder takes ~20 s)


@dataclass(frozen=True)
class Job:
    target: str
    inputs: tuple[str, ...] = ()
    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] | None = None
    frontend: str = "auto"
    options: tuple[tuple[str, Any], ...] = ()
    discovered: bool = False  # models found in a file rather than named: skipped when they cannot be run
    exclude: tuple[str, ...] = ()  # discovered class names linted elsewhere (configured targets)
    lenient: bool = False  # a bare file that defines no buildable model is not an error (pre-commit, folders)
    root: str | None = None  # the pyproject.toml's folder: a module target (pkg.models:Net) also resolves from it


class Watch:
    """What lint_target tells whoever runs it: the phase it is in, and what model code printed."""

    def __init__(self) -> None:
        self.current = ""

    def phase(self, text: str) -> None:
        self.current = text

    def output(self) -> str:
        return ""


def lint_target(job: Job, watch: Watch | Any = None, in_worker: bool = False) -> list[TargetResult]:
    """All results for one target string (a bare file can name several models).

    `in_worker`: running in a child process, where a KeyboardInterrupt can only come from model code
    (Ctrl-C goes to the parent); in this process it still stops reslint.
    """
    from reslint.errors import TargetError
    from reslint.load import load_targets
    from reslint.target import parse_target

    watch = watch or Watch()
    catch = BaseException if in_worker else _ALL_BUT_INTERRUPT
    try:
        spec = parse_target(job.target)
    except TargetError as error:
        return [_error(job.target, str(error), error.__context__ or error)]
    watch.phase(f"importing {spec.source}")
    try:
        entries = load_targets(spec, root=job.root, discovered=job.lenient)
    except TargetError as error:
        return [_error(job.target, str(error), error.__context__ or error, watch.output())]
    except catch as error:
        return [_model_error(job.target, error, watch.current, watch.output())]
    imported_output = watch.output()
    results = []
    for label, build in entries:
        if label.rpartition(":")[2].split("(")[0] in job.exclude:  # `GPT(GPTConfig())` for a config model
            continue
        result = _lint_one(job, label, build, watch, catch)
        result.output = watch.output()
        results.append(result)
    if results and imported_output:
        results[0].output = imported_output + results[0].output
    return results


_ALL_BUT_INTERRUPT = (Exception, SystemExit, GeneratorExit)


def _lint_one(job: Job, label: str, build: Callable, watch, catch) -> TargetResult:
    from reslint.analyze import analyze_built

    name = label.rpartition(":")[2]

    def watched_build():
        watch.phase(f"building {name}")
        built = build()
        watch.phase(f"running the forward of {name}")  # the frontends run it on meta tensors
        return built

    select = list(job.select) if job.select else None
    ignore = list(job.ignore) if job.ignore else None
    try:
        return analyze_built(watched_build, label, list(job.inputs), select, ignore, job.frontend, dict(job.options), job.discovered)
    except Exception as error:  # a bug in reslint or an exotic model: one target's error, not a crash
        if _from_model_code(error):
            return _model_error(label, error, watch.current)
        message = f"{label}: internal error {type(error).__name__}: {error}; rerun with --debug and report it"
        return _error(label, message, error)
    except catch as error:
        return _model_error(label, error, watch.current)


def _from_model_code(error: BaseException) -> bool:
    """Raised in the user's own code (its frame is the innermost user frame of the traceback)."""
    from reslint.where import is_user_file

    tb = error.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    return last is not None and is_user_file(last.tb_frame.f_code.co_filename)


def _model_error(target: str, error: BaseException, phase: str, output: str = "") -> TargetResult:
    """One line for what model code raised: `model code called sys.exit(3) while importing m.py at m.py:5`."""
    from reslint.where import display_path, traceback_user_location

    if isinstance(error, SystemExit):
        what = f"model code called sys.exit({error.code!r})" if error.code is not None else "model code called sys.exit()"
    else:
        text = str(error).strip().splitlines()
        what = f"model code raised {type(error).__name__}" + (f": {text[0]}" if text else "")
    where = traceback_user_location(error.__traceback__)
    at = f" at {display_path(where.path)}:{where.line}" if where else ""
    doing = f" while {phase}" if phase else ""
    return _error(target, f"{target}: {what}{doing}{at}", error, output)


def _error(target: str, message: str, cause: BaseException | None = None, output: str = "") -> TargetResult:
    trace = "".join(traceback.format_exception(cause)) if cause is not None else None
    return TargetResult(target=target, status="error", error=message, traceback=trace, output=output)


def run_jobs(
    jobs: list[Job],
    workers: int = 1,
    timeout: float | None = DEFAULT_TIMEOUT,
    on_done: Callable[[Job], None] | None = None,
    isolate: bool = True,
) -> list[list[TargetResult]]:
    """Results per job, in job order: each job in a forked child (`workers` at a time) unless
    `isolate` is off or fork is missing; then in this process, with output still captured."""
    from reslint.isolated import fork_available, run_forked

    if isolate and fork_available():
        _warm_up()
        return run_forked(jobs, _work_in_child, lambda job: job.target, _argv0, workers, timeout, on_done)
    results = []
    for job in jobs:
        results.append(_lint_captured(job))
        if on_done:
            on_done(job)
    return results


_warmed_up = False  # once per process: a daemon's or server's forked children inherit it


def _warm_up() -> None:
    """Import torch and the analysis, and let torch do its lazy imports (sympy, dynamo: seconds) here,
    on a tiny model of reslint's own: every child inherits them instead of paying for them again."""
    global _warmed_up
    if _warmed_up:
        return
    _warmed_up = True
    import warnings

    import reslint.analyze  # noqa: F401

    try:
        import torch

        from reslint.analyze import analyze_model

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.device("meta"):
                block = _tiny_residual_block()
            example = (torch.empty(2, 4, device="meta"),)
            for frontend in ("fx", "eager"):
                analyze_model(block, example, "warm-up", frontend=frontend)
        from reslint.no_downloads import weights_not_downloaded

        with weights_not_downloaded():  # searches the imported libraries' globals once, for every child
            pass
    except Exception:  # noqa: BLE001  only a head start; the children do without it
        pass


def _tiny_residual_block():
    from torch import nn

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm = nn.LayerNorm(4)
            self.mix = nn.Linear(4, 4)

        def forward(self, x):
            return x + self.mix(self.norm(x).relu())

    return Block()


def _work_in_child(job: Job, channel) -> list[TargetResult]:
    return lint_target(job, channel, in_worker=True)


def _argv0(job: Job) -> str:
    """What the model sees in sys.argv[0]: its file (or module), as when it is run itself."""
    from reslint.errors import TargetError
    from reslint.target import parse_target

    try:
        spec = parse_target(job.target)
    except TargetError:
        return job.target
    return os.path.abspath(spec.source) if spec.is_file else spec.source


class _CapturedWatch(Watch):
    def __init__(self, capture) -> None:
        super().__init__()
        self.capture = capture

    def output(self) -> str:
        return self.capture.take()


def _lint_captured(job: Job) -> list[TargetResult]:
    """The in-process path: what model code prints is captured all the same; argv is the target's."""
    import sys

    from reslint.capture import Capture

    capture = Capture().start()
    argv = sys.argv
    sys.argv = [_argv0(job)]
    try:
        return lint_target(job, _CapturedWatch(capture))
    finally:
        sys.argv = argv
        capture.restore()
