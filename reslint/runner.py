"""Run lint jobs: in this process, or isolated in worker processes with a timeout and -j parallelism.

A target that hangs or kills its worker becomes an error result; the other targets are still analyzed,
and results come back in the order the targets were given.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from reslint.findings import TargetResult


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


def lint_target(job: Job) -> list[TargetResult]:
    """All results for one target string (a bare file can name several models)."""
    from reslint.analyze import analyze_built
    from reslint.errors import TargetError
    from reslint.load import load_targets
    from reslint.target import parse_target

    try:
        entries = load_targets(parse_target(job.target))
    except TargetError as error:
        return [_error(job.target, str(error), error.__context__ or error)]
    results = []
    select = list(job.select) if job.select else None
    ignore = list(job.ignore) if job.ignore else None
    for label, build in entries:
        if label.rpartition(":")[2] in job.exclude:
            continue
        try:
            results.append(
                analyze_built(build, label, list(job.inputs), select, ignore, job.frontend, dict(job.options), job.discovered)
            )
        except Exception as error:  # a bug in reslint or an exotic model: one target's error, not a crash
            message = f"{label}: internal error {type(error).__name__}: {error}; rerun with --debug and report it"
            results.append(_error(label, message, error))
    return results


def _error(target: str, message: str, cause: BaseException | None = None) -> TargetResult:
    trace = "".join(traceback.format_exception(cause)) if cause is not None else None
    return TargetResult(target=target, status="error", error=message, traceback=trace)


def run_jobs(
    jobs: list[Job],
    workers: int = 1,
    timeout: float | None = None,
    on_done: Callable[[Job], None] | None = None,
) -> list[list[TargetResult]]:
    if workers <= 1 and timeout is None:
        results = []
        for job in jobs:
            results.append(lint_target(job))
            if on_done:
                on_done(job)
        return results
    return _run_isolated(jobs, max(workers, 1), timeout, on_done)


def _worker(job: Job, conn) -> None:
    try:
        conn.send(lint_target(job))
    finally:
        conn.close()


def _run_isolated(jobs, workers, timeout, on_done) -> list[list[TargetResult]]:
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    if context.get_start_method() == "fork":
        import reslint.analyze  # noqa: F401  (workers inherit torch instead of importing it each)
    results: list[list[TargetResult] | None] = [None] * len(jobs)
    waiting = list(enumerate(jobs))[::-1]
    running: dict = {}  # receiving end -> (index, process, deadline)
    while waiting or running:
        while waiting and len(running) < workers:
            index, job = waiting.pop()
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(target=_worker, args=(job, sender), daemon=True)
            process.start()
            sender.close()
            deadline = time.monotonic() + timeout if timeout else None
            running[receiver] = (index, process, deadline)
        deadlines = [d for _, _, d in running.values() if d is not None]
        wait_for = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        for receiver in multiprocessing.connection.wait(list(running), timeout=wait_for):
            index, process, _ = running.pop(receiver)
            try:
                results[index] = receiver.recv()
            except EOFError:  # the worker died without answering (segfault, os._exit, OOM kill)
                process.join()
                results[index] = [_error(jobs[index].target, f"{jobs[index].target}: the worker analyzing it died (exit code {process.exitcode})")]
            process.join()
            if on_done:
                on_done(jobs[index])
        now = time.monotonic()
        for receiver, (index, process, deadline) in list(running.items()):
            if deadline is not None and now >= deadline:
                process.kill()
                process.join()
                del running[receiver]
                results[index] = [_error(jobs[index].target, f"{jobs[index].target}: timed out after {timeout:g} s (--timeout)")]
                if on_done:
                    on_done(jobs[index])
    return [r or [] for r in results]
