"""Lint on save: the warm server and daemon against the cold CLI, side by side in one run.

    .venv/bin/python benchmarks/lsp.py                 # ResNet-50 and the 70B decoder, 5 repeats
    .venv/bin/python benchmarks/lsp.py --models resnet50 --repeat 3 --saves 100

Per model, in a scratch project whose pyproject.toml configures it:
- cold CLI: `reslint TARGET` with no daemon, whole process (wall) and peak RSS of it and its children;
- daemon CLI: the same command while `reslint daemon start` is up (wall of the client);
- server: `reslint server` over stdio, didSave of the target's file -> its publishDiagnostics (wall);
  the first save and the second (before which the server imports what the first model imported)
  are shown apart, the median is of the saves after them;
- memory: the idle server's RSS (after its first lint) against the cold run's peak;
- then --saves saves in a row of a small model: the server's RSS before and after, and still answering.
Targets (issue 15): server save->diagnostics median <= 10% of the cold CLI, daemon CLI <= 20%, idle
server <= 1.2x one cold run's peak, RSS growth over the saves <= 10%.

Wall times on a shared machine grow with its load; so each cell also gives the CPU seconds (user +
sys) the work took, which do not: the cold run's and its children's (wait4), the daemon client's
plus what the daemon's children used meanwhile, and what the server and its children used per save
(/proc/PID/stat, children counted once reaped).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ROOT / "benchmarks" / "targets"
PYTHON = sys.executable

MODELS = {
    "resnet50": ("ResNet-50 (torchvision)", "from torchvision.models import resnet50\n\n\ndef build():\n    return resnet50()\n", "1,3,224,224"),
    "vit_l_16": ("ViT-L/16 (torchvision)", "from torchvision.models import vit_l_16\n\n\ndef build():\n    return vit_l_16()\n", "1,3,224,224"),
    "llama70b": (
        "decoder with Llama-2-70B dimensions",
        f"import sys\n\nsys.path.insert(0, {str(TARGETS)!r})\nfrom llama70b import llama70b  # noqa: E402\n\n\ndef build():\n    return llama70b()\n",
        "1,128:int64",
    ),
}

SMALL = '''\
import torch
from torch import nn


class Small(nn.Module):
    example_input_array = torch.empty(1, 3, 16, 16)

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 16, 3, padding=1)

    def forward(self, x):
        x = self.a(x)
        return self.b(x) + x
'''


class Client:
    """An editor's half of LSP over stdio (Content-Length framed JSON-RPC)."""

    def __init__(self, cwd: Path, env: dict) -> None:
        self.process = subprocess.Popen([PYTHON, "-m", "reslint", "server"], cwd=cwd, env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.inbox: queue.Queue = queue.Queue()
        self.ids = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stream = self.process.stdout
        while True:
            length = None
            while True:
                line = stream.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            self.inbox.put(json.loads(stream.read(length)))

    def send(self, message: dict) -> None:
        data = json.dumps({"jsonrpc": "2.0", **message}).encode()
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(data) + data)
        self.process.stdin.flush()

    def request(self, method: str, params: dict, timeout: float = 600):
        self.ids += 1
        self.send({"id": self.ids, "method": method, "params": params})
        return self.wait(lambda m: m.get("id") == self.ids and "method" not in m, timeout).get("result")

    def wait(self, wanted, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            message = self.inbox.get(timeout=max(0.01, deadline - time.monotonic()))
            if wanted(message):
                return message

    def save(self, path: Path, timeout: float = 600) -> tuple[float, list]:
        """didSave -> the file's publishDiagnostics: seconds and the diagnostics."""
        uri = path.as_uri()
        started = time.perf_counter()
        self.send({"method": "textDocument/didSave", "params": {"textDocument": {"uri": uri}}})
        message = self.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri, timeout)
        return time.perf_counter() - started, message["params"]["diagnostics"]

    def close(self) -> None:
        try:
            self.request("shutdown", {}, timeout=30)
            self.send({"method": "exit"})
            self.process.wait(timeout=30)
        except Exception:  # noqa: BLE001
            self.process.kill()


def rss(pid: int) -> int:
    """Resident bytes of a process (VmRSS)."""
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid: int) -> float:
    """CPU time (user + sys) of a process and of its children it has reaped, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime


def timed_run(args: list[str], cwd: Path, env: dict, server_pid: int | None = None) -> tuple[float, int, int, float]:
    """Wall seconds, exit code, peak RSS (the process or any of its children) and CPU seconds of one
    command (with what `server_pid`'s children used meanwhile: the daemon's work for it)."""
    served = cpu_seconds(server_pid) if server_pid else 0.0
    started = time.perf_counter()
    process = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    cpu = usage.ru_utime + usage.ru_stime
    if server_pid:
        cpu += _reaped_meanwhile(server_pid, served)
    return wall, os.waitstatus_to_exitcode(status), usage.ru_maxrss * 1024, cpu


def _reaped_meanwhile(server_pid: int, before: float, settle: float = 1.5) -> float:
    """What the daemon and the children it reaped used since `before`. It may reap a request's child only
    at its next select timeout (0.5 s) after the client is answered: wait until the figure stops moving."""
    deadline, last, steady_since = time.perf_counter() + settle, cpu_seconds(server_pid), time.perf_counter()
    while time.perf_counter() < deadline:
        time.sleep(0.1)
        now = cpu_seconds(server_pid)
        if now != last:
            last, steady_since = now, time.perf_counter()
        elif time.perf_counter() - steady_since >= 0.6:
            break
    return last - before


def project(folder: Path, model: str) -> tuple[Path, str]:
    title, source, shape = MODELS[model]
    path = folder / f"{model}_target.py"
    path.write_text(source)
    (folder / "pyproject.toml").write_text(
        f'[tool.reslint]\ntimeout = 600\n[[tool.reslint.targets]]\nmodel = "{path.name}:build()"\ninputs = ["{shape}"]\n')
    return path, f"{path.name}:build()"


def measure(model: str, repeat: int, folder: Path) -> dict:
    path, target = project(folder, model)
    env = {**os.environ, "RESLINT_NO_DAEMON": "1"}
    warm_env = {k: v for k, v in os.environ.items() if k != "RESLINT_NO_DAEMON"}
    command = [PYTHON, "-m", "reslint", target]
    row: dict = {"model": MODELS[model][0]}

    cold = [timed_run(command, folder, env) for _ in range(repeat)]
    row["cold"] = statistics.median(c[0] for c in cold)
    row["cold_cpu"] = statistics.median(c[3] for c in cold)
    row["cold_peak"] = max(c[2] for c in cold)
    row["exit"] = cold[0][1]

    subprocess.run([PYTHON, "-m", "reslint", "daemon", "start"], cwd=folder, env=warm_env, check=True, capture_output=True)
    try:
        from reslint.daemon import read_state  # the client half: no torch

        state = read_state(str(folder)) or {}
        timed_run(command, folder, warm_env)  # the first run through a fresh daemon
        warm = [timed_run(command, folder, warm_env, state.get("pid")) for _ in range(repeat)]
    finally:
        subprocess.run([PYTHON, "-m", "reslint", "daemon", "stop"], cwd=folder, env=warm_env, capture_output=True)
    row["daemon"] = statistics.median(w[0] for w in warm)
    row["daemon_cpu"] = statistics.median(w[3] for w in warm)
    row["daemon_exit"] = warm[0][1]

    started = time.perf_counter()
    client = Client(folder, env)
    try:
        client.request("initialize", {"processId": os.getpid(), "rootUri": folder.as_uri(), "capabilities": {}})
        client.send({"method": "initialized", "params": {}})
        row["server_start"] = time.perf_counter() - started
        row["first_save"], first = client.save(path)
        row["second_save"] = client.save(path)[0]  # the server imports what the first lint's model imported first
        saves, cpus = [], []
        for _ in range(repeat):
            before = cpu_seconds(client.process.pid)
            saves.append(client.save(path)[0])
            time.sleep(0.05)  # the lint's child is reaped right after it answered
            cpus.append(cpu_seconds(client.process.pid) - before)
        row["server"] = statistics.median(saves)
        row["server_cpu"] = statistics.median(cpus)
        row["diagnostics"] = len(first)
        time.sleep(1.0)
        row["server_idle"] = rss(client.process.pid)
    finally:
        client.close()
    return row


def many_saves(count: int, folder: Path) -> dict:
    path = folder / "small.py"
    path.write_text(SMALL)
    env = {**os.environ, "RESLINT_NO_DAEMON": "1"}
    client = Client(folder, env)
    try:
        client.request("initialize", {"processId": os.getpid(), "rootUri": folder.as_uri(), "capabilities": {}})
        client.send({"method": "initialized", "params": {}})
        for _ in range(5):  # settle: caches, first lint
            client.save(path)
        before = rss(client.process.pid)
        times = [client.save(path)[0] for _ in range(count)]
        time.sleep(0.5)
        after = rss(client.process.pid)
        answers = client.request("textDocument/hover", {"textDocument": {"uri": path.as_uri()}, "position": {"line": 14, "character": 10}}, timeout=30)
    finally:
        client.close()
    return {"count": count, "before": before, "after": after, "median": statistics.median(times), "hover": bool(answers)}


def gib(value: float) -> str:
    return f"{value / 2**30:.2f} GiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet50,llama70b", help="comma-separated: " + ", ".join(MODELS))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--saves", type=int, default=100, help="saves in a row for the memory check (0: skip)")
    args = parser.parse_args()
    rows = []
    load_before = os.getloadavg()[0]
    for model in args.models.split(","):
        with tempfile.TemporaryDirectory(prefix=f"reslint-lsp-{model}-") as folder:
            rows.append(measure(model, args.repeat, Path(folder)))
            print(f"measured {model}", file=sys.stderr)
    print(f"median of {args.repeat}; load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, "
          f"on {os.cpu_count()} cores\n")
    print("| model | cold CLI | daemon CLI | server save → diagnostics | idle server RSS | cold run peak RSS |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['model']} | {r['cold']:.2f} s | {r['daemon']:.2f} s ({r['daemon'] / r['cold']:.0%}) "
              f"| {r['server']:.2f} s ({r['server'] / r['cold']:.0%}; first {r['first_save']:.2f} s, second {r['second_save']:.2f} s, start {r['server_start']:.1f} s) "
              f"| {gib(r['server_idle'])} ({r['server_idle'] / r['cold_peak']:.2f}x) | {gib(r['cold_peak'])} |")
    print("\nCPU seconds (user + sys, the process and its children), which the machine's load inflates less (hyperthreads and caches are shared):\n")
    print("| model | cold CLI | daemon CLI | server save → diagnostics |")
    print("| --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['model']} | {r['cold_cpu']:.2f} s | {r['daemon_cpu']:.2f} s ({r['daemon_cpu'] / r['cold_cpu']:.0%}) "
              f"| {r['server_cpu']:.2f} s ({r['server_cpu'] / r['cold_cpu']:.0%}) |")
    if args.saves:
        with tempfile.TemporaryDirectory(prefix="reslint-lsp-saves-") as folder:
            s = many_saves(args.saves, Path(folder))
        growth = s["after"] / s["before"] - 1
        print(f"\n{s['count']} saves in a row (small model, {s['median']:.2f} s each): server RSS {gib(s['before'])} → "
              f"{gib(s['after'])} ({growth:+.1%}); answering afterwards: {'yes' if s['hover'] else 'NO'}")


if __name__ == "__main__":
    main()
