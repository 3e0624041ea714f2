"""A warm reslint per project, as mypy's dmypy: `reslint daemon start|stop|status`.

Most of a cold `reslint` is importing torch (and torchvision, transformers). The daemon imports them
once and waits on a unix socket under the project (`.reslint/daemon.sock`, described by
`.reslint/daemon.json`). While it is up, `reslint ...` in that project connects, hands the daemon its
argv, working directory, environment and its own stdin/stdout/stderr (the file descriptors, passed over
the socket), and waits for the exit code. The daemon forks a child that runs the ordinary CLI on those
descriptors, so the output, colors, progress and exit code are the cold run's, byte for byte; that
child forks one grandchild per target as the cold CLI does (runner.run_jobs), so the user's modules are
imported fresh every time and never in the daemon itself.

A daemon is stale when it was started by another Python (another venv), or reslint's version, its
source files or the installed packages changed since: the CLI then ignores it (one note on stderr)
and runs cold, and `reslint daemon start` replaces it.

No torch in the client half of this module: `reslint` checks for a daemon before importing anything
(reslint.entry), and what only starting or serving needs (subprocess, hashlib, the config's TOML
reader) is imported there, not by every client.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
import time

from reslint.findings import VERSION

STATE_DIR = ".reslint"
STATE_FILE = "daemon.json"
SOCKET_FILE = "daemon.sock"
LOG_FILE = "daemon.log"
START_WAIT = 180.0  # seconds `daemon start` waits for the new daemon to answer (torch import on a busy machine)
CONNECT_TIMEOUT = 2.0
NOT_FORWARDED = {"daemon", "server", "rule", "rules", "--version", "-V", "--help", "-h"}


# ---- where and who ----


def project_root(start: str | None = None) -> str:
    """The project a daemon serves: the folder of the nearest pyproject.toml, else the folder itself
    (config.find_pyproject's walk, without importing the config module and its TOML reader)."""
    folder = os.path.realpath(start or os.getcwd())
    candidate = folder
    while not os.path.isfile(os.path.join(candidate, "pyproject.toml")):
        parent = os.path.dirname(candidate)
        if parent == candidate:
            return folder
        candidate = parent
    return candidate


def state_path(root: str) -> str:
    return os.path.join(root, STATE_DIR, STATE_FILE)


def socket_path(root: str) -> str:
    """Under the project; in the temp folder when that path is too long for a unix socket (108 bytes)."""
    path = os.path.join(root, STATE_DIR, SOCKET_FILE)
    if len(os.fsencode(path)) < 100:
        return path
    import hashlib
    import tempfile

    digest = hashlib.sha1(os.fsencode(root)).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"reslint-{digest}.sock")


def source_stamp() -> str:
    """Changes when reslint's version or any of its source files change."""
    package = os.path.dirname(os.path.abspath(__file__))
    latest = 0
    for folder, subfolders, files in os.walk(package):
        subfolders[:] = [d for d in subfolders if d != "__pycache__"]
        for name in files:
            if name.endswith(".py"):
                try:
                    latest = max(latest, os.stat(os.path.join(folder, name)).st_mtime_ns)
                except OSError:
                    pass
    return f"{VERSION}:{latest}"


def packages_stamp() -> str:
    """Changes when a package is installed, upgraded or removed (site-packages gains or loses a folder)."""
    stamps = []
    for entry in sys.path:
        if entry.endswith(("site-packages", "dist-packages")) and os.path.isdir(entry):
            try:
                stamps.append(str(os.stat(entry).st_mtime_ns))
            except OSError:
                pass
    return ",".join(stamps)


def identity() -> dict:
    """What a daemon must share with the reslint that wants to use it."""
    return {"python": sys.executable, "prefix": sys.prefix, "version": VERSION, "source": source_stamp(), "packages": packages_stamp()}


def stale_reason(state: dict, me: dict | None = None) -> str | None:
    """Why a daemon (its state file) cannot serve this reslint; None when it can."""
    me = me or identity()
    if state.get("python") != me["python"] or state.get("prefix") != me["prefix"]:
        return f"it runs another Python ({state.get('python')})"
    if state.get("version") != me["version"]:
        return f"it runs reslint {state.get('version')}, this is {me['version']}"
    if state.get("source") != me["source"]:
        return "reslint's source changed since it started"
    if state.get("packages") != me["packages"]:
        return "installed packages changed since it started"
    return None


def read_state(root: str) -> dict | None:
    try:
        with open(state_path(root), encoding="utf-8") as handle:
            state = json.load(handle)
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and isinstance(state.get("pid"), int) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(*paths: str) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except OSError:
            pass


# ---- the client side: `reslint ...` through a running daemon ----


def forward(argv: list[str]) -> int | None:
    """Run `reslint argv` in this project's daemon: its exit code, or None to run cold (no usable daemon)."""
    if os.environ.get("RESLINT_NO_DAEMON") == "1" or (argv and argv[0] in NOT_FORWARDED):
        return None
    if any(a in ("--help", "-h", "--version", "-V") for a in argv):
        return None
    try:
        root = project_root()
    except OSError:
        return None
    state = read_state(root)
    if state is None:
        return None
    if not _alive(state["pid"]):
        _remove(state_path(root))
        return None
    problem = stale_reason(state)
    if problem:
        sys.stderr.write(f"note: ignoring the reslint daemon of this project: {problem}; `reslint daemon start` restarts it\n")
        return None
    try:
        connection = _connect(state.get("socket") or socket_path(root))
    except OSError:
        return None
    with connection:
        request = {"command": "run", "argv": list(argv), "cwd": os.getcwd(), "env": dict(os.environ)}
        try:
            _send(connection, request, fds=[0, 1, 2])
            answer = _receive(connection)
        except OSError:
            return None
        if not answer or not answer.get("accepted"):
            return None  # stale by its own account, or busy shutting down: run cold
        try:
            done = _receive(connection, timeout=None)
        except KeyboardInterrupt:
            return 130  # closing the connection tells the daemon to stop the run
        except OSError:
            done = None
    if not done or not isinstance(done.get("exit"), int):
        sys.stderr.write("error: the reslint daemon ended the run without an exit code; `reslint daemon stop` and rerun\n")
        return 2
    return done["exit"]


def _connect(path: str) -> socket.socket:
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(CONNECT_TIMEOUT)
    try:
        connection.connect(path)
    except OSError:
        connection.close()
        raise
    return connection


def _send(connection: socket.socket, message: dict, fds: list[int] | None = None) -> None:
    data = (json.dumps(message) + "\n").encode("utf-8")
    if fds:
        sent = socket.send_fds(connection, [data], fds)
        data = data[sent:]
    if data:
        connection.sendall(data)


def _receive(connection: socket.socket, timeout: float | None = CONNECT_TIMEOUT * 5, with_fds: bool = False):
    """One newline-terminated JSON message (and the descriptors that came with it, when asked)."""
    connection.settimeout(timeout)
    buffer = b""
    fds: list[int] = []
    while not buffer.endswith(b"\n"):
        if with_fds and not fds:
            chunk, received, _, _ = socket.recv_fds(connection, 1 << 16, 8)
            fds += received
        else:
            chunk = connection.recv(1 << 16)
        if not chunk:
            break
        buffer += chunk
    try:
        message = json.loads(buffer.decode("utf-8")) if buffer.strip() else None
    except ValueError:
        message = None
    return (message, fds) if with_fds else message


def ping(root: str) -> dict | None:
    state = read_state(root)
    if state is None or not _alive(state["pid"]):
        return None
    try:
        with _connect(state.get("socket") or socket_path(root)) as connection:
            _send(connection, {"command": "ping"})
            return _receive(connection)
    except OSError:
        return None


# ---- `reslint daemon start|stop|status` ----


def status(root: str) -> tuple[int, str]:
    state = read_state(root)
    if state is None:
        return 2, f"no reslint daemon for {root}"
    if not _alive(state["pid"]):
        _remove(state_path(root))
        return 2, f"no reslint daemon for {root} (removed the state of one that is gone)"
    problem = stale_reason(state)
    answer = ping(root)
    if answer is None:
        return 2, f"the reslint daemon (pid {state['pid']}) does not answer; `reslint daemon stop` ends it"
    if problem:
        return 2, f"the reslint daemon (pid {state['pid']}) is stale: {problem}; `reslint daemon start` restarts it"
    started = time.strftime("%H:%M:%S", time.localtime(state.get("started", 0)))
    return 0, f"reslint daemon running for {root} (pid {state['pid']}, since {started}, {answer.get('served', 0)} runs)"


def stop(root: str) -> tuple[int, str]:
    state = read_state(root)
    if state is None or not _alive(state["pid"]):
        if state is not None:
            _remove(state_path(root))
        return 0, f"no reslint daemon for {root}"
    pid = state["pid"]
    try:
        with _connect(state.get("socket") or socket_path(root)) as connection:
            _send(connection, {"command": "stop"})
            _receive(connection)
    except OSError:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
        _reap(pid)
    if _alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _remove(state_path(root))
    return 0, f"stopped the reslint daemon (pid {pid})"


def _reap(pid: int) -> None:
    """A daemon this very process started is its child: reap it, or it stays a zombie that looks alive."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def start(root: str) -> tuple[int, str]:
    """Start the project's daemon (replacing a stale one) and wait until it answers."""
    state = read_state(root)
    replaced = ""
    if state is not None and _alive(state["pid"]):
        problem = stale_reason(state)
        if problem is None and ping(root) is not None:
            return 0, f"reslint daemon already running for {root} (pid {state['pid']})"
        stop(root)
        replaced = f" (replaced a stale one: {problem})" if problem else " (replaced one that did not answer)"
    folder = os.path.join(root, STATE_DIR)
    os.makedirs(folder, exist_ok=True)
    ignore = os.path.join(folder, ".gitignore")
    if not os.path.exists(ignore):
        with open(ignore, "w", encoding="utf-8") as handle:
            handle.write("# created by reslint: its daemon's state\n*\n")
    import subprocess

    with open(os.path.join(folder, LOG_FILE), "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "reslint.daemon", root], cwd=root, stdin=subprocess.DEVNULL,
            stdout=log, stderr=log, start_new_session=True, close_fds=True,
        )
    deadline = time.monotonic() + START_WAIT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return 2, f"the reslint daemon exited with code {process.returncode} while starting; see {os.path.join(folder, LOG_FILE)}"
        state = read_state(root)
        if state is not None and state.get("pid") == process.pid and ping(root) is not None:
            return 0, f"reslint daemon started for {root} (pid {process.pid}){replaced}"
        time.sleep(0.1)
    process.kill()
    return 2, f"the reslint daemon did not answer within {START_WAIT:g} s; see {os.path.join(folder, LOG_FILE)}"


# ---- the daemon itself ----


def warm_parent(config=None) -> None:
    """Import torch, reslint's analysis and the CLI, let torch do its lazy imports on a tiny model, and
    import the installed libraries the configured targets import (torchvision, transformers): every
    fork starts with them. Never the project's own modules: children import those fresh."""
    import contextlib
    import io

    import reslint.cli
    import reslint.report.full  # noqa: F401  (rich, for the default format)
    from reslint import runner

    # typer imports its parameter adapters (and pydantic) on the first parse: pay for it here, once.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            reslint.cli.app(args=["check", "--select", "RL999"], prog_name="reslint", standalone_mode=False)
        except BaseException:  # noqa: BLE001  only a head start
            pass

    warm = getattr(runner, "_warm_up", None)
    if warm is not None:
        warm()
    if config is not None:
        preload(installed_imports(config))
    learn_imports()


def preload(names) -> None:
    """Import installed packages in the warm parent, so that the children forked from it have them."""
    import importlib

    for name in names:
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except BaseException:  # noqa: BLE001  only a head start: the child imports it again and reports
            pass


def learn_imports() -> None:
    """In the children forked from here, note the installed packages a lint imported (transformers for
    a model whose file imports it through a helper): `learned_imports` on its first result, so the warm
    parent can import them before the next lint. What static reading of the targets cannot see."""
    from reslint import runner

    if getattr(runner, "_imports_learned", False):
        return
    lint_target = runner.lint_target

    def learning_lint_target(job, *args, **kwargs):
        before = set(sys.modules)
        results = lint_target(job, *args, **kwargs)
        try:
            learned = installed_packages(set(sys.modules) - before)
            if results and learned:
                results[0].learned_imports = learned
        except Exception:  # noqa: BLE001  a nicety
            pass
        return results

    runner.lint_target = learning_lint_target
    runner._imports_learned = True


def learned_from(results) -> list[str]:
    return sorted({name for result in results for name in getattr(result, "learned_imports", ())})


def installed_packages(modules) -> list[str]:
    """The installed modules (site-packages, not the project's) among module names, submodules
    included: `import transformers` alone is lazy, the model's classes are in its submodules."""
    found = []
    for name in sorted(modules):
        if name.split(".")[0] in ("reslint", "torch", "__main__"):
            continue
        origin = getattr(sys.modules.get(name), "__file__", None) or ""
        if "site-packages" in origin or "dist-packages" in origin:
            found.append(name)
    return found


def installed_imports(config) -> list[str]:
    """Top-level installed packages (not the project's) that the configured targets import."""
    import ast
    import importlib.util

    names: list[str] = []
    for target in config.targets:
        found: list[str] = []
        if target.file and os.path.isfile(target.file):
            try:
                with open(target.file, "rb") as handle:
                    tree = ast.parse(handle.read())
            except (OSError, SyntaxError, ValueError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    found += [alias.name.split(".")[0] for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.append(node.module.split(".")[0])
        else:
            found.append(target.model.split(":")[0].split(".")[0])
        for name in found:
            if name in names or name in sys.modules:
                continue
            try:
                spec = importlib.util.find_spec(name)
            except (ImportError, ValueError):
                continue
            origin = getattr(spec, "origin", None) or ""
            if spec is not None and ("site-packages" in origin or "dist-packages" in origin):
                names.append(name)
    return names


class Daemon:
    """Accepts requests on the socket; each run in a forked child on the client's own descriptors."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.path = socket_path(root)
        self.listener: socket.socket | None = None
        self.running: dict[int, socket.socket] = {}  # child pid -> the client's connection
        self.served = 0
        self.stopping = False

    def serve(self) -> None:
        from reslint.config import load_config

        try:
            config = load_config(self.root)
        except Exception:  # noqa: BLE001  a broken config is reported by each run, not here
            config = None
        warm_parent(config)
        preload(read_learned(self.root))
        _record_learned(self.root)
        _remove(self.path)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(16)
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        self._write_state()
        try:
            while not self.stopping:
                watched = [self.listener, *self.running.values()]
                readable, _, _ = select.select(watched, [], [], 0.5)
                for ready in readable:
                    if ready is self.listener:
                        self._accept()
                    else:
                        self._client_gone(ready)
                self._reap()
        finally:
            for pid in list(self.running):
                _kill_group(pid)
            self.listener.close()
            state = read_state(self.root)
            if state is not None and state.get("pid") == os.getpid():
                _remove(state_path(self.root), self.path)

    def _write_state(self) -> None:
        state = {"pid": os.getpid(), "socket": self.path, "project": self.root, "started": time.time(), **identity()}
        path = state_path(self.root)
        temporary = f"{path}.{os.getpid()}"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(state, handle)
        os.replace(temporary, path)

    def _accept(self) -> None:
        connection, _ = self.listener.accept()
        try:
            request, fds = _receive(connection, with_fds=True)
        except OSError:
            connection.close()
            return
        command = (request or {}).get("command")
        try:
            if command == "ping":
                _send(connection, {"pid": os.getpid(), "served": self.served, **identity()})
            elif command == "stop":
                _send(connection, {"stopping": True})
                self.stopping = True
            elif command == "run" and len(fds) == 3:
                pid = self._fork_run(connection, request, fds)
                self.running[pid] = connection
                self.served += 1
                connection = None  # kept open until the run ends
        except OSError:
            pass
        finally:
            for fd in fds:
                os.close(fd)
            if connection is not None:
                connection.close()

    def _fork_run(self, connection: socket.socket, request: dict, fds: list[int]) -> int:
        preload(read_learned(self.root))  # what earlier runs' models imported: paid once, here
        _send(connection, {"accepted": True})
        import gc

        gc.freeze()  # the child's collector would otherwise touch, and so copy, every page the daemon made
        pid = os.fork()
        if pid == 0:
            _run_request(self.listener, connection, request, fds)  # never returns
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass
        return pid

    def _client_gone(self, connection: socket.socket) -> None:
        """The client closed its end mid-run (Ctrl-C): stop that run and whatever it started."""
        for pid, open_connection in list(self.running.items()):
            if open_connection is connection:
                try:
                    peek = connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                except BlockingIOError:
                    return
                except OSError:
                    peek = b""
                if not peek:
                    _kill_group(pid)

    def _reap(self) -> None:
        for pid in list(self.running):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self.running.pop(pid).close()
                # What that run's models imported, now while idle: not on the next client's time.
                preload(read_learned(self.root))


LEARNED_FILE = "imports.json"


def read_learned(root: str) -> list[str]:
    try:
        with open(os.path.join(root, STATE_DIR, LEARNED_FILE), encoding="utf-8") as handle:
            names = json.load(handle)
    except (OSError, ValueError):
        return []
    valid = [n for n in names if isinstance(n, str) and all(part.isidentifier() for part in n.split("."))] if isinstance(names, list) else []
    return valid


def remember_learned(root: str, names: list[str]) -> None:
    """Add what a lint's models imported to the project's .reslint/imports.json, which the daemon
    and the next server read at start, when that folder exists (the daemon made it): a server
    restarted by the editor then imports transformers' model modules before its first lint."""
    folder = os.path.join(root, STATE_DIR)
    known = read_learned(root)
    if not os.path.isdir(folder) or set(names) <= set(known):
        return
    path = os.path.join(folder, LEARNED_FILE)
    try:
        with open(f"{path}.{os.getpid()}", "w", encoding="utf-8") as handle:
            json.dump(sorted(set(known) | set(names)), handle)
        os.replace(f"{path}.{os.getpid()}", path)
    except OSError:  # a nicety
        pass


def _record_learned(root: str) -> None:
    """In the runs forked from the daemon: add what the models imported to .reslint/imports.json."""
    from reslint import runner

    run_jobs = runner.run_jobs

    def recording_run_jobs(*args, **kwargs):
        results = run_jobs(*args, **kwargs)
        try:
            remember_learned(root, learned_from(r for rs in results for r in rs))
        except Exception:  # noqa: BLE001  a nicety
            pass
        return results

    runner.run_jobs = recording_run_jobs


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _run_request(listener: socket.socket, connection: socket.socket, request: dict, fds: list[int]) -> None:
    """In the forked child: become the client's `reslint argv`, then tell it the exit code."""
    code = 2
    try:
        os.setpgid(0, 0)
        listener.close()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        sys.stdin = open(0, encoding="utf-8", errors="replace", closefd=False)
        sys.stdout = open(1, "w", encoding="utf-8", errors="replace", closefd=False)
        sys.stderr = open(2, "w", encoding="utf-8", errors="replace", closefd=False, buffering=1)
        os.chdir(request.get("cwd") or "/")
        os.environ.clear()
        os.environ.update(request.get("env") or {})
        argv = [str(a) for a in request.get("argv") or []]
        sys.argv = ["reslint", *argv]
        from reslint.cli import app

        code = app(args=argv, prog_name="reslint", standalone_mode=False)
        code = code if isinstance(code, int) else 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 2)
    except BaseException as error:  # noqa: BLE001  reslint's own failure: one line, as the CLI would say it
        try:
            sys.stderr.write(f"error: the reslint daemon failed running this: {type(error).__name__}: {error}; `reslint daemon stop` and rerun\n")
        except BaseException:  # noqa: BLE001
            pass
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:  # noqa: BLE001
                pass
        try:
            _send(connection, {"exit": code})
        except BaseException:  # noqa: BLE001
            pass
        os._exit(0)


def main(argv: list[str]) -> int:
    """`python -m reslint.daemon ROOT`: what `reslint daemon start` runs, detached."""
    root = os.path.realpath(argv[0] if argv else os.getcwd())
    os.chdir(root)
    Daemon(root).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
