"""Run each job in a forked child process, so that model code cannot take reslint down.

The parent has already imported torch and reslint's analysis, so a fork costs milliseconds and the
child starts warm. Model code runs only in children. Whatever it does, the parent gets one result per
job, in job order, and never waits without a bound:

- `sys.exit(3)`, an argparse error, KeyboardInterrupt: caught in the child, a one-line error
  (runner.lint_target does that);
- `os._exit(n)`, a segfault, an OOM kill: the child ends without answering; its exit status becomes
  the error;
- a hang: the job's deadline passes, the child's process group is killed, the error says where it was;
- a non-daemon thread, a leftover subprocess: the child ends with `os._exit` right after it answered,
  and its process group is killed.

Messages from child to parent are length-prefixed pickles on a pipe: `("phase", text)` while it works
(so a crash or a hang can say what it was doing) and one `("result", [TargetResult, ...])`.
"""

from __future__ import annotations

import faulthandler
import gc
import os
import pickle
import re
import select
import signal
import struct
import sys
import tempfile
import time
import traceback
import warnings
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from reslint.capture import Capture, flush_streams, read_file
from reslint.findings import TargetResult

HEADER = struct.Struct(">Q")
POLL = 0.2  # seconds between checks on children that may have died without closing their pipe
GRACE = 0.5  # seconds a child gets to exit by itself after it answered
STACK_WAIT = 0.3  # seconds to wait for a hung child's stack dump before killing it


def fork_available() -> bool:
    return hasattr(os, "fork") and sys.platform != "win32"


@dataclass
class Worker:
    index: int
    job: Any
    pid: int
    fd: int  # reading end of the pipe
    capture: Capture  # the file the child's fds 1 and 2 write to
    stacks: Any  # the file faulthandler writes a crash's (or a hang's) Python stack to
    deadline: float | None
    buffer: bytearray = field(default_factory=bytearray)
    phase: str = ""
    result: list[TargetResult] | None = None
    status: int | None = None  # from waitpid, once reaped


def run_forked(
    jobs: list[Any],
    work: Callable[[Any, "Channel"], list[TargetResult]],
    label: Callable[[Any], str],
    argv0: Callable[[Any], str],
    workers: int,
    timeout: float | None,
    on_done: Callable[[Any], None] | None = None,
) -> list[list[TargetResult]]:
    """Run `work(job, channel)` for every job in a child, `workers` at a time; results in job order."""
    results: list[list[TargetResult] | None] = [None] * len(jobs)
    waiting = deque(enumerate(jobs))
    running: dict[int, Worker] = {}

    def finish(worker: Worker, outcome: list[TargetResult]) -> None:
        del running[worker.fd]
        os.close(worker.fd)
        worker.capture.file.close()
        worker.stacks.close()
        results[worker.index] = outcome
        if on_done:
            on_done(worker.job)

    try:
        while waiting or running:
            while waiting and len(running) < max(workers, 1):
                index, job = waiting.popleft()
                worker = _start(index, job, work, argv0(job), timeout)
                running[worker.fd] = worker
            now = time.monotonic()
            deadlines = [w.deadline for w in running.values() if w.deadline is not None]
            wait = min([POLL, *(max(0.0, d - now) for d in deadlines)])
            readable, _, _ = select.select(list(running), [], [], wait)
            for fd in readable:
                _read(running[fd])
            for worker in list(running.values()):
                if worker.result is not None:
                    _end(worker)
                    finish(worker, worker.result)
                elif _exited(worker):
                    _read(worker)  # what it wrote just before it ended
                    if worker.result is None:
                        finish(worker, [_died(worker, label(worker.job))])
                    else:
                        _end(worker)
                        finish(worker, worker.result)
                elif worker.deadline is not None and time.monotonic() >= worker.deadline:
                    stack = _stack_of(worker)
                    _end(worker, grace=0)
                    finish(worker, [_timed_out(worker, label(worker.job), timeout, stack)])
    finally:
        for worker in running.values():  # interrupted (Ctrl-C): no child outlives reslint
            _end(worker, grace=0)
    return [r or [] for r in results]


def _start(index: int, job: Any, work, argv0: str, timeout: float | None) -> Worker:
    capture, stacks = Capture(), tempfile.TemporaryFile()
    reader, writer = os.pipe()
    flush_streams()  # nothing buffered in the parent may be written twice
    # The child's garbage collector would otherwise write to every object the parent made (torch and
    # all), copying most of the parent's memory page by page; frozen, they are left alone.
    gc.freeze()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads running
        pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(reader)
        _child(job, work, writer, capture, stacks.fileno(), argv0)
    os.close(writer)
    try:
        os.setpgid(pid, pid)  # also done by the child; whichever runs first
    except OSError:
        pass
    os.set_blocking(reader, False)
    deadline = time.monotonic() + timeout if timeout else None
    return Worker(index, job, pid, reader, capture, stacks, deadline)


class Channel:
    """The child's side: tell the parent what it is doing, hand back the result, and what was printed."""

    def __init__(self, fd: int, capture: Capture) -> None:
        self.fd = fd
        self.capture = capture
        self.current = ""

    def phase(self, text: str) -> None:
        self.current = text
        self._send(("phase", text))

    def output(self) -> str:
        return self.capture.take()

    def result(self, results: list[TargetResult]) -> None:
        try:
            self._send(("result", results))
        except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as error:
            message = f"{results[0].target if results else '?'}: internal error: cannot send the result ({error}); report it"
            self._send(("result", [TargetResult(target=results[0].target if results else "?", status="error", error=message)]))

    def _send(self, message: tuple) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(HEADER.pack(len(data)) + data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]


def _child(job: Any, work, writer: int, capture: Capture, stacks: int, argv0: str) -> None:
    code = 0
    try:
        try:
            os.setpgid(0, 0)  # its own process group: a timeout kills whatever the model started too
        except OSError:
            pass
        _die_with_parent()
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # the parent handles Ctrl-C and kills its children
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        sys.stdin = open(0, encoding="utf-8", closefd=False)
        capture.start(keep_originals=False)
        # A segfault's Python stack, and the stack the parent asks for (SIGUSR1) when it times out.
        faulthandler.enable(file=stacks, all_threads=False)
        if hasattr(signal, "SIGUSR1"):
            faulthandler.register(signal.SIGUSR1, file=stacks, all_threads=True)
        sys.argv = [argv0]  # a model's own argparse at import sees its file, not reslint's flags
        channel = Channel(writer, capture)
        results = work(job, channel)
        channel.result(results)
    except BaseException:  # reslint's own failure in the child: the parent says the worker ended
        code = 70
        try:
            os.write(2, traceback.format_exc().encode("utf-8", "replace"))
        except BaseException:
            pass
    finally:
        os._exit(code)  # now: no atexit handler, no non-daemon thread of the model can keep it alive


def _die_with_parent() -> None:
    """Linux: the kernel kills the child if reslint itself is killed (it is in its own process group)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _read(worker: Worker) -> None:
    while True:
        try:
            chunk = os.read(worker.fd, 1 << 20)
        except BlockingIOError:
            break
        except OSError:
            break
        if not chunk:
            break
        worker.buffer += chunk
    while len(worker.buffer) >= HEADER.size:
        (size,) = HEADER.unpack_from(worker.buffer)
        if len(worker.buffer) < HEADER.size + size:
            break
        data = bytes(worker.buffer[HEADER.size:HEADER.size + size])
        del worker.buffer[:HEADER.size + size]
        try:
            kind, payload = pickle.loads(data)
        except Exception:  # noqa: BLE001  a garbled message: treated as no answer
            continue
        if kind == "phase":
            worker.phase = payload
        elif kind == "result":
            worker.result = payload


def _exited(worker: Worker) -> bool:
    if worker.status is not None:
        return True
    try:
        pid, status = os.waitpid(worker.pid, os.WNOHANG)
    except ChildProcessError:
        worker.status = 0
        return True
    if pid == 0:
        return False
    worker.status = status
    return True


def _end(worker: Worker, grace: float = GRACE) -> None:
    """Let the child exit by itself for a moment, then kill its process group and reap it."""
    stop = time.monotonic() + grace
    while not _exited(worker) and time.monotonic() < stop:
        time.sleep(0.005)
    try:
        os.killpg(worker.pid, signal.SIGKILL)  # the child if still there, and whatever it started
    except (ProcessLookupError, PermissionError):
        pass
    if worker.status is None:
        try:
            _, worker.status = os.waitpid(worker.pid, 0)
        except ChildProcessError:
            worker.status = 0


def _stack_of(worker: Worker) -> str:
    """Where a hung child is: its Python stacks, which faulthandler dumps on SIGUSR1."""
    if not hasattr(signal, "SIGUSR1"):
        return ""
    fd = worker.stacks.fileno()
    before = os.fstat(fd).st_size
    try:
        os.kill(worker.pid, signal.SIGUSR1)
    except ProcessLookupError:
        return ""
    stop = time.monotonic() + STACK_WAIT
    size = before
    while time.monotonic() < stop:
        time.sleep(0.02)
        grown = os.fstat(fd).st_size
        if grown > before and grown == size:  # written, and done growing
            break
        size = grown
    return read_file(fd, before)


FRAME = re.compile(r'^\s*File "(?P<path>[^"]+)", line (?P<line>\d+) in (?P<function>\S+)', re.M)


def _user_frame(dump: str) -> str:
    """' at m.py:12' from a faulthandler dump (innermost frame first), or ''."""
    from reslint.where import display_path, is_user_file

    for match in FRAME.finditer(dump):
        if is_user_file(match["path"]):
            return f" at {display_path(match['path'])}:{match['line']}"
    return ""


def _output(worker: Worker) -> str:
    try:
        return read_file(worker.capture.fd)
    except (OSError, ValueError):
        return ""


def _doing(worker: Worker) -> str:
    return f" while {worker.phase}" if worker.phase else ""


def _died(worker: Worker, target: str) -> TargetResult:
    status = worker.status or 0
    output = _output(worker)
    stack = read_file(worker.stacks.fileno())
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        name = _signal_name(number)
        hint = {"SIGSEGV": "a crash in native code", "SIGBUS": "a crash in native code", "SIGABRT": "native code aborted",
                "SIGKILL": "out of memory?", "SIGFPE": "a crash in native code", "SIGILL": "a crash in native code"}.get(name, "a signal")
        where = _user_frame(stack) if name in ("SIGSEGV", "SIGBUS", "SIGABRT", "SIGFPE", "SIGILL") else ""
        message = f"{target}: the worker analyzing it was killed by {name} ({hint}){_doing(worker)}{where}"
    else:
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
        cause = "reslint failed in the worker; rerun with --debug and report it" if code == 70 and "Traceback" in output else f"model code called os._exit({code})?"
        message = f"{target}: the worker analyzing it ended with exit code {code} before it answered{_doing(worker)}: {cause}"
    return TargetResult(target=target, status="error", error=message, output=output, traceback=stack or None)


def _timed_out(worker: Worker, target: str, timeout: float | None, stack: str) -> TargetResult:
    return TargetResult(
        target=target, status="error", output=_output(worker), traceback=stack or None,
        error=f"{target}: timed out after {timeout:g} s{_doing(worker)}{_user_frame(stack)}; raise --timeout if it is just slow",
    )


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
