"""`reslint server` driven as an editor drives it: JSON-RPC over the server's stdin/stdout.

One server for the module (it imports torch once, as in an editor): open a file with a broken block,
get the diagnostic at the join's line, hover it, apply the quick fix, save, get none. What must not
take it down or fool it: a model that hangs (the config's timeout ends it), a worker killed mid-lint,
a model that was linted and now fails to import, build or be wholly analyzed (said, not dropped),
the config's max-build-memory, and saves in a row (its memory stays flat). tests/test_nvim.py drives
it from Neovim's own LSP client.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from reslint.edits import ReplaceStatement
from reslint.findings import Finding, Fix
from reslint.server import FIX_ALL_KIND, QUICKFIX_KIND, UNSAFE_KIND, Problem, code_actions, diff_edits, fix_edits, utf16_column

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the server forks a child per target")

UNET = '''\
import torch
from torch import nn


class Tiny(nn.Module):
    example_input_array = torch.empty(1, 3, 10, 10)

    def __init__(self):
        super().__init__()
        self.enc = nn.Conv2d(3, 4, 3, padding=1)
        self.down = nn.Conv2d(4, 4, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(4, 4, 2, stride=2)
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        skip = self.enc(x)
        h = self.up(self.down(skip))
        h = h[:, :, :4, :4]
        return self.head(torch.cat([skip, h], dim=1))
'''
CAT_LINE = 19

HANG = '''\
import torch
from torch import nn


class Spins(nn.Module):
    example_input_array = torch.empty(1, 4)

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        while True:
            pass
'''

# A configured target in one file whose broken block lives in another: saving the block's file lints it.
BLOCKS = '''\
from torch import nn


class Widen(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)

    def forward(self, x):
        return self.conv(x) + x
'''
NET = '''\
from torch import nn

from blocks import Widen


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 1)
        self.body = Widen(8, 16)

    def forward(self, x):
        return self.body(self.stem(x))
'''


# Killed mid-lint: while the flag file exists, its forward writes the worker's pid and sleeps.
SLEEPER = '''\
import os
import time

import torch
from torch import nn

FLAG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sleep")


class Sleeper(nn.Module):
    example_input_array = torch.empty(1, 4)

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 8)

    def forward(self, x):
        if os.path.exists(FLAG):
            with open(FLAG + ".pid", "w") as handle:
                handle.write(str(os.getpid()))
            time.sleep(60)
        return self.fc(x) + x
'''
SLEEPER_CLASS, SLEEPER_JOIN = 10, 22

# Linted with a finding, then edited into versions reslint cannot wholly analyze: each is said.
LINTED = '''\
import torch
from torch import nn


class Linted(nn.Module):
    example_input_array = torch.empty(1, 4)

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 8)

    def forward(self, x):
        return self.fc(x) + x
'''
LINTED_CLASS, LINTED_JOIN = 5, 13

# A configured target that must read a 4 MB weight to build, under max-build-memory = "1MB".
READS = '''\
import torch
from torch import nn


class Reads(nn.Module):
    def __init__(self):
        super().__init__()
        self.big = nn.Linear(1024, 1024)
        self.scale = float(self.big.weight.abs().max())
        self.fc = nn.Linear(16, 16)

    def forward(self, x):
        return self.fc(x) + x
'''

SMALL = '''\
import torch
from torch import nn


class Small(nn.Module):
    example_input_array = torch.empty(1, 3, 8, 8)

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 16, 3, padding=1)

    def forward(self, x):
        x = self.a(x)
        return self.b(x) + x
'''


class LspClient:
    """The editor's half: Content-Length framed JSON-RPC on a subprocess's pipes."""

    def __init__(self, cwd: Path) -> None:
        env = {**os.environ, "RESLINT_NO_DAEMON": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reslint", "server"], cwd=cwd, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        self.messages: queue.Queue = queue.Queue()
        self.next_id = 0
        self.pending: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stream = self.process.stdout
        while True:
            headers = {}
            while True:
                line = stream.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = stream.read(int(headers["content-length"]))
            self.messages.put(json.loads(body))

    def send(self, message: dict) -> None:
        data = json.dumps({"jsonrpc": "2.0", **message}).encode()
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(data) + data)
        self.process.stdin.flush()

    def notify(self, method: str, params: dict) -> None:
        self.send({"method": method, "params": params})

    def request(self, method: str, params: dict, timeout: float = 120) -> dict:
        self.next_id += 1
        self.send({"id": self.next_id, "method": method, "params": params})
        answer = self._wait(lambda m: m.get("id") == self.next_id and "method" not in m, timeout)
        assert "error" not in answer, answer
        return answer.get("result")

    def diagnostics(self, uri: str, timeout: float = 120) -> list[dict]:
        """The next publishDiagnostics for this file."""
        message = self._wait(lambda m: m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri, timeout)
        return message["params"]["diagnostics"]

    def _wait(self, wanted, timeout: float) -> dict:
        for message in self.pending:
            if wanted(message):
                self.pending.remove(message)
                return message
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0 and self.process.poll() is None, "the server did not answer (or died)"
            try:
                message = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if wanted(message):
                return message
            if message.get("method") == "window/logMessage" or message.get("method") == "window/showMessage":
                continue
            self.pending.append(message)

    def close(self) -> None:
        try:
            self.request("shutdown", {}, timeout=10)
            self.notify("exit", {})
            self.process.wait(timeout=10)
        except Exception:  # noqa: BLE001
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("editor")
    (root / "unet.py").write_text(UNET)
    (root / "hang.py").write_text(HANG)
    (root / "blocks.py").write_text(BLOCKS)
    (root / "net.py").write_text(NET)
    (root / "linted.py").write_text(LINTED)
    (root / "small.py").write_text(SMALL)
    # The project's timeout ends a hang in 4 s; the folder of the model killed mid-lint gives it 120 s,
    # the budget folder allows 1 MB of real weights to build.
    (root / "pyproject.toml").write_text('[tool.reslint]\ntimeout = 4\n[[tool.reslint.targets]]\nmodel = "net.py:Net"\ninputs = ["1,3,8,8"]\n')
    (root / "killed").mkdir()
    (root / "killed" / "sleeper.py").write_text(SLEEPER)
    (root / "killed" / "pyproject.toml").write_text("[tool.reslint]\ntimeout = 120\n")
    (root / "budget").mkdir()
    (root / "budget" / "reads.py").write_text(READS)
    (root / "budget" / "pyproject.toml").write_text(
        '[tool.reslint]\nmax-build-memory = "1MB"\n[[tool.reslint.targets]]\nmodel = "reads.py:Reads"\ninputs = ["1,16"]\n')
    return root


@pytest.fixture(scope="module")
def client(project):
    client = LspClient(project)
    client.request("initialize", {
        "processId": os.getpid(), "rootUri": project.as_uri(), "capabilities": {},
    }, timeout=180)
    client.notify("initialized", {})
    yield client
    client.close()


def open_file(client: LspClient, path: Path) -> None:
    client.notify("textDocument/didOpen", {"textDocument": {
        "uri": path.as_uri(), "languageId": "python", "version": 1, "text": path.read_text()}})


def save(client: LspClient, path: Path, text: str | None = None) -> list[dict]:
    """Write the file (when given a text), tell the server it was saved, and return its next diagnostics."""
    if text is not None:
        path.write_text(text)
    client.notify("textDocument/didSave", {"textDocument": {"uri": path.as_uri()}})
    return client.diagnostics(path.as_uri())


def seen(diagnostics: list[dict]) -> list[tuple]:
    """(code, line, severity) of each diagnostic: 1 error, 2 warning."""
    return [(d.get("code"), d["range"]["start"]["line"] + 1, d["severity"]) for d in diagnostics]


def apply(text: str, edits: list[dict]) -> str:
    lines = text.splitlines(keepends=True)
    for edit in sorted(edits, key=lambda e: (e["range"]["start"]["line"], e["range"]["start"]["character"]), reverse=True):
        start, end = edit["range"]["start"], edit["range"]["end"]
        assert start["character"] == 0 and end["character"] == 0
        lines[start["line"]:end["line"]] = [edit["newText"]]
    return "".join(lines)


def test_broken_block_diagnostic_hover_fix_and_clean_save(client, project):
    path = project / "unet.py"
    uri = path.as_uri()
    open_file(client, path)
    diagnostics = client.diagnostics(uri)
    assert [(d["code"], d["range"]["start"]["line"] + 1, d["severity"]) for d in diagnostics] == [("RL003", CAT_LINE, 1)]
    (diagnostic,) = diagnostics
    assert diagnostic["source"] == "reslint"
    assert diagnostic["codeDescription"]["href"].startswith("file://")
    assert "[1, 4, 10, 10]" in diagnostic["message"] and "[1, 4, 4, 4]" in diagnostic["message"]
    line_text = UNET.splitlines()[CAT_LINE - 1]
    assert diagnostic["range"]["start"]["character"] == line_text.index("torch.cat")

    hover = client.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": {"line": CAT_LINE - 1, "character": 30}})
    assert "[1, 4, 10, 10]" in hover["contents"]["value"] and "[1, 4, 4, 4]" in hover["contents"]["value"]

    actions = client.request("textDocument/codeAction", {
        "textDocument": {"uri": uri}, "range": diagnostic["range"], "context": {"diagnostics": [diagnostic]}})
    # The safe crop fix as a quick fix on the diagnostic, and the same edit as "every safe fix of the file"
    fixes = [a for a in actions if a["kind"] == "quickfix"]
    assert len(fixes) == 1 and fixes[0]["diagnostics"][0]["code"] == "RL003" and fixes[0]["isPreferred"], actions
    (fix_all,) = [a for a in actions if a["kind"] == FIX_ALL_KIND]
    assert fix_all["edit"] == fixes[0]["edit"]
    only_unsafe = client.request("textDocument/codeAction", {
        "textDocument": {"uri": uri}, "range": diagnostic["range"], "context": {"diagnostics": [diagnostic], "only": [UNSAFE_KIND]}})
    assert only_unsafe == []
    path.write_text(apply(path.read_text(), fixes[0]["edit"]["changes"][uri]))
    assert save(client, path) == []


def test_saving_an_imported_file_lints_the_configured_target(client, project):
    path = project / "blocks.py"
    client.notify("textDocument/didSave", {"textDocument": {"uri": path.as_uri()}})
    diagnostics = client.diagnostics(path.as_uri())
    assert [(d.get("code"), d["range"]["start"]["line"] + 1) for d in diagnostics] == [("RL001", 10)], diagnostics


def test_a_hanging_model_is_ended_by_the_configured_timeout_and_the_server_answers(client, project):
    path = project / "hang.py"
    started = time.monotonic()
    open_file(client, path)
    diagnostics = client.diagnostics(path.as_uri(), timeout=60)
    # An error, at the line it hung on (or at `class Spins` when that is unknown), after pyproject's 4 s
    assert [(d["severity"], d["range"]["start"]["line"] + 1 in (5, 13, 14)) for d in diagnostics] == [(1, True)]
    assert 4 <= time.monotonic() - started < 40
    assert client.request("textDocument/hover", {"textDocument": {"uri": path.as_uri()}, "position": {"line": 0, "character": 0}}, timeout=10) is None
    assert seen(save(client, project / "blocks.py")) == [("RL001", 10, 1)]  # the next save is answered


def test_a_worker_killed_mid_lint_is_an_error_and_the_next_save_answers(client, project):
    folder = project / "killed"
    path, flag, pid_file = folder / "sleeper.py", folder / "sleep", folder / "sleep.pid"
    flag.touch()
    open_file(client, path)
    deadline = time.monotonic() + 120
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline, "the model never started its forward"
        time.sleep(0.05)
    os.kill(int(pid_file.read_text()), signal.SIGKILL)  # the forked worker, mid-forward
    assert seen(client.diagnostics(path.as_uri(), timeout=60)) == [(None, SLEEPER_CLASS, 1)]
    flag.unlink()
    assert seen(save(client, path)) == [("RL001", SLEEPER_JOIN, 1)]


def test_a_linted_model_that_can_no_longer_be_analyzed_says_so(client, project):
    path = project / "linted.py"
    open_file(client, path)
    assert seen(client.diagnostics(path.as_uri())) == [("RL001", LINTED_JOIN, 1)]
    # incomplete: its forward no longer runs any tensor operation -> a warning at its class
    assert seen(save(client, path, LINTED.replace("return self.fc(x) + x", "return x"))) == [(None, LINTED_CLASS, 2)]
    # the file no longer imports -> an error at the raise, not silence
    assert seen(save(client, path, LINTED.replace("\n\n\nclass", "\nraise RuntimeError('half-edited')\n\nclass", 1))) == [(None, 3, 1)]
    # it no longer builds without arguments (a discovered model: skipped) -> a warning that says why
    got = save(client, path, LINTED.replace("def __init__(self):", "def __init__(self, width):"))
    assert seen(got) == [(None, LINTED_CLASS, 2)], got
    assert seen(save(client, path, LINTED)) == [("RL001", LINTED_JOIN, 1)]


def test_the_configs_max_build_memory_applies(client, project):
    path = project / "budget" / "reads.py"
    (diagnostic,) = save(client, path)
    assert diagnostic["severity"] == 1 and "max-build-memory" in diagnostic["message"]


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) * 1024


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the server's RSS from /proc")
def test_saves_in_a_row_leave_the_server_answering_without_memory_growth(client, project):
    path = project / "small.py"
    for _ in range(3):  # warm: the first lints allocate what every later one reuses
        assert seen(save(client, path)) == [("RL001", 15, 1)]
    before = rss(client.process.pid)
    for _ in range(20):
        assert seen(save(client, path)) == [("RL001", 15, 1)]
    after = rss(client.process.pid)
    print(f"server RSS after 3 saves {before / 2**20:.0f} MiB, after 23 saves {after / 2**20:.0f} MiB ({(after - before) / before:+.1%})")
    assert after <= before * 1.10


def test_a_statement_fix_without_a_diff_replaces_its_lines_indented(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f(a, b):\n    return a + b\n")
    fix = Fix(kind="resize-to-skip", module="", code="return a + b.mean()", validated=True, line=2, end_line=2)
    finding = Finding("RL002", "warning", "m", "m.py:f", str(source), 2, 12, "", "", fix=fix)
    if hasattr(fix, "diff"):
        fix.diff = ""
    (edit,) = fix_edits(finding)
    assert (edit.start, edit.end, edit.text) == (2, 2, "    return a + b.mean()\n")


def test_code_actions_carry_the_fix_edits_and_an_unsafe_fix_is_its_own_kind(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the project root: --fix edits only files below it
    source = tmp_path / "m.py"
    source.write_text("def f(a, b):\n    c = 1\n    return a + b\n")
    edit = ReplaceStatement(str(source), 3, 3, "return a + b.mean()")

    def problem(safe: bool) -> Problem:
        fix = Fix(kind="resize-to-skip", module="", code="return a + b.mean()", validated=True, safe=safe, edits=[edit])
        finding = Finding("RL002", "warning", "m", "m.py:f", str(source), 3, 12, "", "", fix=fix)
        return Problem(str(source), 3, 12, 17, "warning", "m", "RL002", finding)

    (unsafe,) = code_actions([problem(False)], 3, 3)  # no fix-all: it applies safe fixes only
    assert unsafe.kind == UNSAFE_KIND and not unsafe.preferred
    assert [(e.start, e.end, e.text) for e in unsafe.edits] == [(3, 3, "    return a + b.mean()\n")]
    safe, fix_all = code_actions([problem(True)], 3, 3)
    assert (safe.kind, fix_all.kind, safe.preferred) == (QUICKFIX_KIND, FIX_ALL_KIND, True)
    assert safe.edits == fix_all.edits == unsafe.edits
    assert code_actions([problem(True)], 1, 2) == [fix_all]  # the quick fix only on its line
    assert code_actions([problem(False)], 3, 3, only=["quickfix"]) == [unsafe]  # kinds nest
    assert code_actions([problem(True)], 3, 3, only=[UNSAFE_KIND]) == []
    monkeypatch.chdir(tmp_path.parent)
    assert code_actions([problem(True)], 3, 3, root=str(tmp_path / "elsewhere")) == []  # --fix would not edit it


def test_diff_hunks_become_line_edits(tmp_path):
    diff = f"--- {tmp_path}/m.py\n+++ {tmp_path}/m.py\n@@ -2,3 +2,3 @@\n a\n-b\n+B\n c\n"
    (edit,) = diff_edits(diff)
    assert (edit.path, edit.start, edit.end, edit.text) == (str(tmp_path / "m.py"), 2, 4, "a\nB\nc\n")


def test_columns_are_utf16_units():
    text = "    y = é + 𝑥"
    assert utf16_column(text, len("    y = é".encode()) + 1) == len("    y = é")
    assert utf16_column(text, len("    y = é + 𝑥".encode()) + 1) == len("    y = é + ") + 2


def test_what_a_lint_imported_is_remembered_for_the_next_server_only_where_the_daemon_keeps_state(tmp_path):
    from reslint.daemon import read_learned
    from reslint.daemon import remember_learned

    remember_learned(str(tmp_path), ["transformers.models.llama"])
    assert not (tmp_path / ".reslint").exists()  # the server makes no state folder of its own
    (tmp_path / ".reslint").mkdir()
    remember_learned(str(tmp_path), ["transformers.models.llama"])
    remember_learned(str(tmp_path), ["timm", "transformers.models.llama"])
    assert read_learned(str(tmp_path)) == ["timm", "transformers.models.llama"]
