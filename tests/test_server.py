"""`reslint server` driven as an editor drives it: JSON-RPC over the server's stdin/stdout.

One server for the module (it imports torch once, as in an editor): open a file with a broken block,
get the diagnostic at the join's line, hover it, apply the quick fix, save, get none; a model that
hangs is an error diagnostic and the server still answers.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from reslint.findings import Finding, Fix
from reslint.server import diff_edits, fix_edits, utf16_column

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
    (root / "pyproject.toml").write_text('[tool.reslint]\n[[tool.reslint.targets]]\nmodel = "net.py:Net"\ninputs = ["1,3,8,8"]\n')
    return root


@pytest.fixture(scope="module")
def client(project):
    client = LspClient(project)
    client.request("initialize", {
        "processId": os.getpid(), "rootUri": project.as_uri(), "capabilities": {},
        "initializationOptions": {"timeout": 4},
    }, timeout=180)
    client.notify("initialized", {})
    yield client
    client.close()


def open_file(client: LspClient, path: Path) -> None:
    client.notify("textDocument/didOpen", {"textDocument": {
        "uri": path.as_uri(), "languageId": "python", "version": 1, "text": path.read_text()}})


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
    assert actions, "the RL003 fix is a statement edit"
    (action,) = actions
    assert action["kind"] in ("quickfix", "quickfix.unsafe")
    path.write_text(apply(path.read_text(), action["edit"]["changes"][uri]))
    client.notify("textDocument/didSave", {"textDocument": {"uri": uri}})
    assert client.diagnostics(uri) == []


def test_saving_an_imported_file_lints_the_configured_target(client, project):
    path = project / "blocks.py"
    client.notify("textDocument/didSave", {"textDocument": {"uri": path.as_uri()}})
    diagnostics = client.diagnostics(path.as_uri())
    assert [(d.get("code"), d["range"]["start"]["line"] + 1) for d in diagnostics] == [("RL001", 10)], diagnostics


def test_a_hanging_model_is_an_error_diagnostic_and_the_server_answers(client, project):
    path = project / "hang.py"
    open_file(client, path)
    diagnostics = client.diagnostics(path.as_uri(), timeout=60)
    # An error, at the line it hung on (or at `class Spins` when that is unknown)
    assert [(d["severity"], d["range"]["start"]["line"] + 1 in (5, 13, 14)) for d in diagnostics] == [(1, True)]
    assert client.request("textDocument/hover", {"textDocument": {"uri": path.as_uri()}, "position": {"line": 0, "character": 0}}, timeout=10) is None


def test_a_statement_fix_without_a_diff_replaces_its_lines_indented(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f(a, b):\n    return a + b\n")
    fix = Fix(kind="resize-to-skip", module="", code="return a + b.mean()", validated=True, line=2, end_line=2)
    finding = Finding("RL002", "warning", "m", "m.py:f", str(source), 2, 12, "", "", fix=fix)
    if hasattr(fix, "diff"):
        fix.diff = ""
    (edit,) = fix_edits(finding)
    assert (edit.start, edit.end, edit.text) == (2, 2, "    return a + b.mean()\n")


def test_diff_hunks_become_line_edits(tmp_path):
    diff = f"--- {tmp_path}/m.py\n+++ {tmp_path}/m.py\n@@ -2,3 +2,3 @@\n a\n-b\n+B\n c\n"
    (edit,) = diff_edits(diff)
    assert (edit.path, edit.start, edit.end, edit.text) == (str(tmp_path / "m.py"), 2, 4, "a\nB\nc\n")


def test_columns_are_utf16_units():
    text = "    y = é + 𝑥"
    assert utf16_column(text, len("    y = é".encode()) + 1) == len("    y = é")
    assert utf16_column(text, len("    y = é + 𝑥".encode()) + 1) == len("    y = é + ") + 2
