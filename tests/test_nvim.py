"""`reslint server` as a real editor sees it: Neovim headless, its built-in LSP client.

Neovim opens a file with a broken U-Net block, attaches `reslint server` (vim.lsp.start_client, the
0.7 API, which newer versions keep), waits for the diagnostic, asks for the code actions at its line,
applies the quick fix with Neovim's own workspace-edit code, `:write`s the buffer (the client sends
didSave) and waits for the next diagnostics. A Lua script does it all and writes what it saw as JSON;
the test asserts on that, and on the file Neovim wrote.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_server import CAT_LINE, UNET  # the broken U-Net the JSON-RPC tests open too

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the server forks a child per target")

NVIM = shutil.which("nvim")

EDITOR = r'''
-- Drive reslint server from Neovim's LSP client; record what it saw in $RESLINT_NVIM_OUT as JSON.
local out = { steps = {} }
local file, python = vim.env.RESLINT_NVIM_FILE, vim.env.RESLINT_NVIM_PYTHON
local wait_ms = tonumber(vim.env.RESLINT_NVIM_WAIT_MS)

local function finish()
  local handle = io.open(vim.env.RESLINT_NVIM_OUT, "w")
  handle:write(vim.fn.json_encode(out))
  handle:close()
end

local function run()
  vim.cmd("edit " .. vim.fn.fnameescape(file))
  local bufnr = vim.api.nvim_get_current_buf()

  -- Count the publishes for this buffer, then let Neovim's own handler store them (vim.diagnostic).
  local published = 0
  local default = vim.lsp.handlers["textDocument/publishDiagnostics"]
  vim.lsp.handlers["textDocument/publishDiagnostics"] = function(err, result, ctx, config)
    default(err, result, ctx, config)
    if result and vim.uri_to_bufnr(result.uri) == bufnr then
      published = published + 1
    end
  end

  local function diagnostics()
    local seen = {}
    for _, d in ipairs(vim.diagnostic.get(bufnr)) do
      table.insert(seen, { line = d.lnum + 1, col = d.col, code = d.code or vim.NIL, severity = d.severity, source = d.source })
    end
    return seen
  end

  local client_id = vim.lsp.start_client({
    name = "reslint",
    cmd = { python, "-m", "reslint", "server" },
    cmd_cwd = vim.fn.fnamemodify(file, ":h"),
    root_dir = vim.fn.fnamemodify(file, ":h"),
    init_options = { timeout = 60 },
  })
  out.started = client_id ~= nil
  vim.lsp.buf_attach_client(bufnr, client_id)  -- didOpen once the server is initialized

  out.opened = vim.wait(wait_ms, function() return published >= 1 end, 20)
  out.steps.open = diagnostics()
  local client = vim.lsp.get_client_by_id(client_id)

  local first = vim.diagnostic.get(bufnr)[1]
  if first then
    local position = { line = first.lnum, character = 0 }
    local params = {
      textDocument = { uri = vim.uri_from_bufnr(bufnr) },
      range = { start = position, ["end"] = position },
      context = { diagnostics = vim.lsp.diagnostic.get_line_diagnostics(bufnr, first.lnum) },
    }
    local responses = vim.lsp.buf_request_sync(bufnr, "textDocument/codeAction", params, wait_ms) or {}
    out.actions = {}
    local quickfix
    for _, response in pairs(responses) do
      for _, action in ipairs(response.result or {}) do
        table.insert(out.actions, { kind = action.kind, title = action.title })
        if action.kind == "quickfix" and not quickfix then
          quickfix = action
        end
      end
    end
    local hover = vim.lsp.buf_request_sync(bufnr, "textDocument/hover",
      { textDocument = params.textDocument, position = { line = first.lnum, character = first.col } }, wait_ms) or {}
    for _, response in pairs(hover) do
      if response.result then
        out.hover = response.result.contents.value
      end
    end
    if quickfix then
      vim.lsp.util.apply_workspace_edit(quickfix.edit, client.offset_encoding)
      out.modified = vim.bo[bufnr].modified
      local before = published
      vim.cmd("write")  -- BufWritePost: the client sends didSave
      out.saved = vim.wait(wait_ms, function() return published > before end, 20)
      out.steps.save = diagnostics()
    end
  end
  vim.lsp.stop_client(client_id)
  out.stopped = vim.wait(10000, function() return vim.lsp.get_client_by_id(client_id) == nil end, 20)
end

local ok, err = pcall(run)
out.error = (not ok) and tostring(err) or vim.NIL
finish()
vim.cmd("qall!")
'''


@pytest.mark.skipif(NVIM is None, reason="Neovim (nvim) is not installed: apt-get install neovim")
def test_neovim_sees_the_diagnostic_applies_the_quick_fix_and_saves_clean(tmp_path):
    source = tmp_path / "unet.py"
    source.write_text(UNET)
    script, seen = tmp_path / "editor.lua", tmp_path / "seen.json"
    script.write_text(EDITOR)
    env = {
        **os.environ, "RESLINT_NO_DAEMON": "1", "RESLINT_NVIM_FILE": str(source), "RESLINT_NVIM_OUT": str(seen),
        "RESLINT_NVIM_PYTHON": sys.executable, "RESLINT_NVIM_WAIT_MS": "60000",
        "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    run = subprocess.run(
        [NVIM, "--headless", "-u", "NONE", "-i", "NONE", "-n", "-c", f"luafile {script}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=150, stdin=subprocess.DEVNULL,
    )
    assert seen.exists(), f"Neovim wrote nothing (exit {run.returncode}): {run.stderr[-2000:]}"
    report = json.loads(seen.read_text())
    assert report["error"] is None, report
    assert report["started"] and report["opened"], report

    # The diagnostic at the cat's line, from reslint, an error
    assert [(d["code"], d["line"], d["severity"], d["source"]) for d in report["steps"]["open"]] == [("RL003", CAT_LINE, 1, "reslint")]
    assert "[1, 4, 10, 10]" in report["hover"] and "[1, 4, 4, 4]" in report["hover"]
    assert "quickfix" in [a["kind"] for a in report["actions"]], report["actions"]

    # The quick fix applied by Neovim, the buffer written: no diagnostic left, and the fix is on disk
    assert report["modified"] and report["saved"], report
    assert report["steps"]["save"] == []
    assert source.read_text() != UNET and source.read_text().count("torch.cat") == 1
    assert report["stopped"]
