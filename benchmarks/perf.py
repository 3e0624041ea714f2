"""How long reslint takes and how much memory it needs, against what users do today.

Run from the repository root with the project's venv (needs `pip install torchinfo`):

    .venv/bin/python benchmarks/perf.py                 # every model and the growth stack, once each
    .venv/bin/python benchmarks/perf.py --repeat 3      # the median of 3 runs per cell
    .venv/bin/python benchmarks/perf.py --quick         # ResNet-50, ViT-L/16, the 70B decoder; growth 50/500
    .venv/bin/python benchmarks/perf.py --quick --lint-on-save   # plus the server/daemon rows (benchmarks/lsp.py)

Every cell is a fresh child process, measured from the outside: whole-process wall time, CPU time
(user + sys) and peak RSS (`os.wait4` on that child, so one child's peak never hides in another's).
Per model, side by side:

  reslint    the real CLI: `reslint TARGET --input SHAPE --format json` (its json gives build / trace /
             analyze timings)
  hand       the check users write by hand: build the model on CPU (random init), one real forward
             of a random batch under `torch.no_grad()` in eval mode
  torchinfo  `torchinfo.summary(model, input_data=[random batch], device="cpu")`
  floor      the least any meta-only tool can do: import torch and the model's library, build the
             model under `torch.device("meta")`, one meta forward under `torch.no_grad()`

Models: torchvision ResNet-50, ResNet-152, ViT-L/16, ConvNeXt-L at 1x3x224x224, and a decoder with
Llama-2-70B's dimensions (transformers LlamaModel, benchmarks/targets/llama70b.py) at 1x128 tokens,
whose CPU build (hand, torchinfo) needs ~275 GB and is not run. Growth: reslint on a residual stack
of 50, 500 and 5,000 tiny blocks (benchmarks/targets/stack.py), against the number of fx nodes.

Cells run one at a time, the repeats interleaved (every cell once, then again), after a warm-up
that loads the libraries into the page cache. Other options: --reslint REV (reslint as committed at
REV, default HEAD, extracted to a temp dir, so that edits made to reslint/ during a run do not mix
versions; `live` for the working tree), --only REGEX (cells whose `model/method` matches),
--timeout S (per cell, default 1200), --output FILE (default benchmarks/perf_results.md; the raw
runs go next to it as .json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field

from pinned import reslint_snapshot  # benchmarks/pinned.py: this script's folder is on sys.path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = os.path.join("benchmarks", "targets")  # relative to ROOT, where every child runs
PYTHON = sys.executable
RESLINT = os.path.join(os.path.dirname(sys.executable), "reslint")
MARKER = "PERF "
GiB = 1024**3

# What the issue asks for.
LLAMA_FLOOR_RATIO = 1.5  # 70B decoder: reslint wall time within 1.5x of the floor's
LLAMA_RSS_GIB = 2.0  # ... and under 2 GiB peak RSS
VIT_HAND_RATIO = 0.5  # ViT-L/16: reslint at most half the hand-written check's wall time
GROWTH_RATIO = 15.0  # growth: 500 blocks cost at most 15x the analysis time of 50
GROWTH_5000_S = 60.0  # ... and 5,000 blocks are analyzed in under 60 s


@dataclass(frozen=True)
class Model:
    id: str
    title: str
    reslint_target: str
    input_spec: str  # reslint's --input
    imports: str  # the model library, as a user imports it
    build: str  # an expression that builds the model (on whatever device is current)
    cpu_input: str
    meta_input: str
    cpu_possible: bool = True


def torchvision_model(id: str, title: str, factory: str) -> Model:
    return Model(
        id=id, title=title, reslint_target=f"torchvision.models:{factory}()", input_spec="1,3,224,224",
        imports="import torchvision.models", build=f"torchvision.models.{factory}()",
        cpu_input="torch.randn(1, 3, 224, 224)", meta_input='torch.empty(1, 3, 224, 224, device="meta")',
    )


MODELS = [
    torchvision_model("resnet50", "ResNet-50", "resnet50"),
    torchvision_model("resnet152", "ResNet-152", "resnet152"),
    torchvision_model("vit_l_16", "ViT-L/16", "vit_l_16"),
    torchvision_model("convnext_large", "ConvNeXt-L", "convnext_large"),
    Model(
        id="llama70b", title="Llama-2-70B-sized decoder", reslint_target=f"{TARGETS}/llama70b.py:llama70b()",
        input_spec="1,128:int64",
        imports=f"import sys; sys.path.insert(0, {TARGETS!r}); from llama70b import llama70b",
        build="llama70b()",
        cpu_input="torch.randint(0, 32000, (1, 128))", meta_input='torch.zeros(1, 128, dtype=torch.long, device="meta")',
        cpu_possible=False,
    ),
]
QUICK_MODELS = ("resnet50", "vit_l_16", "llama70b")
METHODS = ("reslint", "hand", "torchinfo", "floor")
GROWTH = (50, 500, 5000)
QUICK_GROWTH = (50, 500)
STACK_WIDTH = 16


# -- what each child runs --------------------------------------------------------------------------

# Every script times its phases (import, build, run) and ends by printing one MARKER line, so a cell
# counts only if the work really finished.
START = "import time; _t = [time.perf_counter()]\n"
MARK = "_t.append(time.perf_counter())\n"
REPORT = (
    "import json; _p = dict(zip(('import', 'build', 'run'), (b - a for a, b in zip(_t, _t[1:]))))\n"
    "print({marker!r} + json.dumps({{'output': list(output.shape), 'params': sum(p.numel() for p in model.parameters()), "
    "'phases': _p}}))"
).format(marker=MARKER)


def script(imports: str, build: str, run: str) -> str:
    """A child script: imports, build, run (each timed), then the MARKER line."""
    return START + textwrap.dedent(imports) + MARK + textwrap.dedent(build) + MARK + textwrap.dedent(run) + MARK + REPORT


def hand_script(model: Model) -> str:
    return script(
        f"import torch\n{model.imports}\n",
        f"model = {model.build}.eval()\n",
        f"with torch.no_grad():\n    output = model({model.cpu_input})\noutput = getattr(output, 'last_hidden_state', output)\n",
    )


def torchinfo_script(model: Model) -> str:
    return script(
        f"import torch\nfrom torchinfo import summary\n{model.imports}\n",
        f"model = {model.build}\n",
        f"stats = summary(model, input_data=[{model.cpu_input}], device='cpu', verbose=0)\n"
        "output = torch.empty(stats.summary_list[0].output_size)\n",
    )


def floor_script(model: Model) -> str:
    return script(
        f"import torch\n{model.imports}\n",
        f"with torch.device('meta'):\n    model = {model.build}.eval()\n",
        f"with torch.no_grad():\n    output = model({model.meta_input})\noutput = getattr(output, 'last_hidden_state', output)\n",
    )


def stack_target(depth: int) -> str:
    return f"{TARGETS}/stack.py:ResidualStack(depth={depth}, width={STACK_WIDTH})"


NODE_COUNT_SCRIPT = textwrap.dedent(f"""\
    import json, sys
    import torch, torch.fx
    sys.path.insert(0, {TARGETS!r})
    from stack import ResidualStack
    with torch.device("meta"):
        counts = {{d: len(torch.fx.symbolic_trace(ResidualStack(int(d), {STACK_WIDTH})).graph.nodes) for d in sys.argv[1:]}}
    print({MARKER!r} + json.dumps(counts))
    """)


@dataclass(frozen=True)
class Cell:
    group: str  # "model" or "growth"
    model: str  # Model.id, or the stack depth
    method: str
    command: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.model}/{self.method}"


def model_cells(model: Model) -> list[Cell]:
    reslint = (RESLINT, model.reslint_target, "--input", model.input_spec, "--format", "json")
    scripts = {"hand": hand_script, "torchinfo": torchinfo_script, "floor": floor_script}
    cells = [Cell("model", model.id, "reslint", reslint)]
    for method in ("hand", "torchinfo", "floor"):
        if method != "floor" and not model.cpu_possible:
            continue
        cells.append(Cell("model", model.id, method, (PYTHON, "-c", scripts[method](model))))
    return cells


def stack_floor_script(depth: int) -> str:
    return script(
        f"import sys\nimport torch\nsys.path.insert(0, {TARGETS!r})\nfrom stack import ResidualStack\n",
        f"with torch.device('meta'):\n    model = ResidualStack({depth}, {STACK_WIDTH}).eval()\n",
        f"with torch.no_grad():\n    output = model(torch.empty(1, {STACK_WIDTH}, device='meta'))\n",
    )


def growth_cells(depths: tuple[int, ...]) -> list[Cell]:
    cells = []
    for depth in depths:
        reslint = (RESLINT, stack_target(depth), "--input", f"1,{STACK_WIDTH}", "--format", "json")
        cells.append(Cell("growth", str(depth), "reslint", reslint))
        cells.append(Cell("growth", str(depth), "floor", (PYTHON, "-c", stack_floor_script(depth))))
    return cells


# -- running one child ----------------------------------------------------------------------------


@dataclass
class Run:
    wall: float | None = None  # seconds
    cpu: float | None = None  # user + sys seconds
    rss: int | None = None  # peak resident set, bytes
    exit_code: int | None = None
    error: str | None = None
    result: dict = field(default_factory=dict)  # the child's MARKER line, or reslint's json target


def run_cell(cell: Cell, env: dict, timeout: float) -> Run:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(cell.command, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=ROOT, env=env)
        timed_out = False
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - started > timeout:
                process.kill()
                timed_out = True
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.005)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here; Popen must not wait again
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    run = Run(wall=wall, cpu=usage.ru_utime + usage.ru_stime, rss=usage.ru_maxrss * 1024, exit_code=process.returncode)
    if timed_out:
        run.error = f"timeout after {timeout:g} s"
    elif cell.method == "reslint":
        parse_reslint(run, stdout, stderr)
    else:
        marked = [line for line in stdout.splitlines() if line.startswith(MARKER)]
        if process.returncode != 0 or not marked:
            run.error = f"exit {process.returncode}: {last_line(stderr)}"
        else:
            run.result = json.loads(marked[-1][len(MARKER):])
    return run


def parse_reslint(run: Run, stdout: str, stderr: str) -> None:
    if run.exit_code not in (0, 1):
        run.error = f"exit {run.exit_code}: {last_line(stdout + stderr)}"
    try:
        report = json.loads(stdout)
        target = report["targets"][0]
    except (ValueError, KeyError, IndexError):
        run.error = run.error or f"no json report: {last_line(stdout + stderr)}"
        return
    run.result = dict(target, findings=[f["code"] for f in report.get("findings", [])])
    if target.get("status") == "error":
        run.error = f"reslint error: {target.get('error')}"


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


# -- the machine and the reslint under test ---------------------------------------------------------


def machine() -> dict:
    info = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "ram_gib": None}
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        if names:
            info["cpu"] = names[0]
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            total = next(line for line in f if line.startswith("MemTotal"))
        info["ram_gib"] = int(total.split()[1]) * 1024 / GiB
    except (OSError, StopIteration):
        pass
    versions = subprocess.run(
        [PYTHON, "-c", "import importlib.metadata as m, json; print(json.dumps({n: m.version(n) for n in "
         "('torch', 'torchvision', 'transformers', 'torchinfo')}))"],
        capture_output=True, text=True,
    )
    info["versions"] = json.loads(versions.stdout) if versions.returncode == 0 else {}
    info["python"] = platform.python_version()
    return info


def load_average() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


def child_env(snapshot: str | None) -> dict:
    env = dict(os.environ, PYTHONWARNINGS="ignore", TRANSFORMERS_VERBOSITY="error", HF_HUB_OFFLINE="1")
    env.pop("PYTHONPATH", None)
    if snapshot:
        env["PYTHONPATH"] = snapshot  # ahead of the editable install of the working tree
    return env


def warm_up(env: dict, models: list[Model]) -> None:
    """Load the libraries once (page cache) and compile the snapshot's bytecode, unmeasured."""
    libraries = "import torch, torchvision.models, torchinfo, transformers, reslint.analyze, reslint.cli"
    subprocess.run([PYTHON, "-c", libraries], env=env, cwd=ROOT, capture_output=True)
    subprocess.run([RESLINT, stack_target(2), "--input", f"1,{STACK_WIDTH}"], env=env, cwd=ROOT, capture_output=True)
    if any(m.id == "llama70b" for m in models):
        subprocess.run([PYTHON, "-c", floor_script(next(m for m in models if m.id == "llama70b"))], env=env, cwd=ROOT, capture_output=True)


def count_nodes(env: dict, depths: tuple[int, ...]) -> dict[str, int]:
    done = subprocess.run([PYTHON, "-c", NODE_COUNT_SCRIPT, *map(str, depths)], env=env, cwd=ROOT, capture_output=True, text=True)
    marked = [line for line in done.stdout.splitlines() if line.startswith(MARKER)]
    return json.loads(marked[-1][len(MARKER):]) if marked else {}


# -- summarising ------------------------------------------------------------------------------------


def median(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


@dataclass
class Summary:
    runs: list[Run]

    @property
    def ok(self) -> list[Run]:
        return [r for r in self.runs if r.error is None]

    @property
    def error(self) -> str | None:
        return None if self.ok else (self.runs[0].error if self.runs else "not run")

    def stat(self, name: str) -> float | None:
        return median([getattr(r, name) for r in self.ok])

    def timing(self, *names: str) -> float | None:
        """reslint's own json timings, summed."""
        return median([sum(r.result.get("timings", {}).get(n, 0.0) for n in names) for r in self.ok])

    def phase(self, name: str) -> float | None:
        """`build`, `run` (a script's forward or summary; reslint's trace + analyze) or `rest`: the
        rest of the process (interpreter start, imports, command line, report, exit)."""
        values = []
        for r in self.ok:
            if "phases" in r.result:
                inside = {"build": r.result["phases"]["build"], "run": r.result["phases"]["run"]}
            else:
                t = r.result.get("timings", {})
                inside = {"build": t.get("build", 0.0), "run": t.get("trace", 0.0) + t.get("analyze", 0.0)}
            values.append(inside[name] if name in inside else r.wall - sum(inside.values()))
        return median(values)

    def spread(self, name: str) -> str:
        values = [getattr(r, name) for r in self.ok]
        return f"{min(values):.1f}–{max(values):.1f}" if len(values) > 1 else ""


def paired_ratio(a: "Summary | None", b: "Summary | None", name: str = "wall") -> float | None:
    """Median over the repeats of a/b, each from the same repeat: cells of one repeat run back to back,
    so they share the machine's load at that moment better than two medians do."""
    if a is None or b is None:
        return None
    pairs = [(getattr(x, name), getattr(y, name)) for x, y in zip(a.runs, b.runs) if x.error is None and y.error is None]
    return median([x / y for x, y in pairs if y])


def seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


def gib(value: float | None) -> str:
    return "–" if value is None else f"{value / GiB:.2f} GiB"


def ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}x"


def weights_gb(params: int | None) -> str:
    return f"{params * 4 / 1e9:.0f} GB" if params else "~280 GB"


def report(args, info, tested, models, depths, summaries, nodes, started_load, ended_load, elapsed) -> tuple[str, list[tuple[str, bool | None, str]]]:
    versions = info["versions"]
    get = summaries.get
    lines = [
        "# reslint performance: meta-only analysis against what users do today",
        "",
        f"Command: `{args.command}`",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram_gib']:.1f} GiB RAM; Python {info['python']}, "
        f"torch {versions.get('torch', '?')}, torchvision {versions.get('torchvision', '?')}, "
        f"transformers {versions.get('transformers', '?')}, torchinfo {versions.get('torchinfo', '?')}",
        "",
        f"reslint: {tested}. Load average (1/5/15 min) {started_load} at the start, {ended_load} at the end; "
        f"{args.repeat} run(s) per cell, median shown; the whole run took {elapsed / 60:.1f} min.",
        "",
        "Every cell is a fresh process: wall time from start to exit (imports included), peak RSS of that process. "
        "Images 1x3x224x224, the decoder 1x128 tokens. *reslint*: `reslint TARGET --input SHAPE --format json`; "
        "*hand*: build on CPU, one forward of a random batch (eval, no_grad); *torchinfo*: "
        "`summary(model, input_data=..., device='cpu')`; *floor*: import torch and the model library, build on meta, "
        "one meta forward (no_grad). Ratios are the median of per-repeat ratios (the cells of one repeat run back to back).",
        "",
        "## Whole process: wall time · peak RSS",
        "",
        "| model | params | reslint | hand (CPU forward) | torchinfo (CPU) | floor (meta forward) | reslint / floor | reslint / hand |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    params_of = {}
    for model in models:
        cells = {m: get(f"{model.id}/{m}") for m in METHODS}
        params = next((r.result.get("params") for c in cells.values() if c for r in c.ok if r.result.get("params")), None)
        params_of[model.id] = params

        def cell(method: str) -> str:
            summary = cells[method]
            if summary is None:
                return f"n/a (needs {weights_gb(params)})" if not model.cpu_possible and method in ("hand", "torchinfo") else "not run"
            if summary.error:
                return f"error: {summary.error[:80]}"
            return f"{seconds(summary.stat('wall'))} · {gib(summary.stat('rss'))}"

        size = f"{params / 1e6:,.0f} M" if params else "–"
        lines.append(
            f"| {model.title} | {size} | " + " | ".join(cell(m) for m in METHODS)
            + f" | {ratio(paired_ratio(cells['reslint'], cells['floor']))} | {ratio(paired_ratio(cells['reslint'], cells['hand']))} |"
        )
    lines += [
        "",
        "## CPU time (user + sys), less sensitive than wall time to other load on the machine",
        "",
        "| model | reslint | hand | torchinfo | floor | reslint / floor | reslint / hand |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for model in models:
        cells = {m: get(f"{model.id}/{m}") for m in METHODS}
        cpu = [seconds(cells[m].stat("cpu")) if cells[m] else "–" for m in METHODS]
        lines.append(
            f"| {model.title} | " + " | ".join(cpu)
            + f" | {ratio(paired_ratio(cells['reslint'], cells['floor'], 'cpu'))} | {ratio(paired_ratio(cells['reslint'], cells['hand'], 'cpu'))} |"
        )
    lines += [
        "",
        "## Where the time goes: rest · build · run (median s)",
        "",
        "*build* builds the model (reslint: its json `build`); *run* is the forward (hand, floor), the summary "
        "(torchinfo), or reslint's trace + analyze; *rest* is the rest of the process: interpreter start, imports "
        "(torch and the model library: most of it), reslint's command line and report, exit.",
        "",
        "| model | reslint | reslint trace · analyze | hand | torchinfo | floor |",
        "| --- | --- | --- | --- | --- | --- |",
    ]

    def phases(summary: Summary | None) -> str:
        if summary is None or summary.error:
            return "–"
        return " · ".join(f"{summary.phase(p):.2f}" for p in ("rest", "build", "run"))

    for model in models:
        r = get(f"{model.id}/reslint")
        inner = "–"
        if r and not r.error:
            first = r.ok[0].result
            inner = f"{r.timing('trace'):.2f} · {r.timing('analyze'):.2f} ({first.get('frontend')}, {first.get('joins')} joins, findings: {', '.join(first.get('findings', [])) or 'none'})"
        lines.append(
            f"| {model.title} | {phases(r)} | {inner} | {phases(get(f'{model.id}/hand'))} | "
            f"{phases(get(f'{model.id}/torchinfo'))} | {phases(get(f'{model.id}/floor'))} |"
        )

    growth = {depth: get(f"{depth}/reslint") for depth in depths}
    if depths:
        lines += [
            "",
            f"## Growth: a residual stack of tiny blocks (`x + Linear({STACK_WIDTH}, {STACK_WIDTH})(relu(x))`), input 1x{STACK_WIDTH}",
            "",
            "*analysis* is reslint's trace + analyze; *marginal* is the extra analysis time per 1,000 more fx nodes "
            "than the row above (flat when analysis is linear in the graph). *floor run*: one meta forward of the same "
            "stack (what any meta-only tool pays). The first meta op of a process imports torch._dynamo "
            "(torch._refs run under `torch._disable_dynamo`), about 2 s here, which the 50-block analysis and the floor's "
            "run both pay.",
            "",
            "| blocks | fx nodes | joins | trace | analyze | analysis | marginal per 1k nodes | floor run | build | reslint whole process · peak RSS | floor whole process · peak RSS |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        previous = None
        for depth in depths:
            summary, floor = growth[depth], get(f"{depth}/floor")
            count = nodes.get(str(depth))
            floor_ok = floor is not None and not floor.error
            floor_cell = f"{seconds(floor.stat('wall'))} · {gib(floor.stat('rss'))}" if floor_ok else "–" if floor is None else f"error: {floor.error[:60]}"
            floor_run = seconds(floor.phase("run")) if floor_ok else "–"
            if summary is None or summary.error:
                lines.append(f"| {depth:,} | {count or '–'} | error: {summary.error if summary else 'not run'} | | | | | {floor_run} | | | {floor_cell} |")
                previous = None
                continue
            analysis = summary.timing("trace", "analyze")
            marginal = "–"
            if previous and count and previous[0] and count > previous[0]:
                marginal = f"{(analysis - previous[1]) / (count - previous[0]) * 1000:.2f} s"
            previous = (count, analysis)
            lines.append(
                f"| {depth:,} | {f'{count:,}' if count else '–'} | {summary.ok[0].result.get('joins')} | {seconds(summary.timing('trace'))} | "
                f"{seconds(summary.timing('analyze'))} | {seconds(analysis)} | {marginal} | {floor_run} | {seconds(summary.timing('build'))} | "
                f"{seconds(summary.stat('wall'))} · {gib(summary.stat('rss'))} | {floor_cell} |"
            )

    verdicts = targets(summaries, models, growth)
    lines += ["", "## Targets (from the issue)", "", "| target | met | measured |", "| --- | --- | --- |"]
    for name, met, measured in verdicts:
        lines.append(f"| {name} | {'yes' if met else 'n/a' if met is None else '**no**'} | {measured} |")
    noisy = [(key, s.spread("wall")) for key, s in summaries.items() if s.spread("wall")]
    if noisy:
        lines += ["", "Wall-time range over the repeats (min–max s): " + ", ".join(f"{k} {v}" for k, v in noisy) + "."]
    return "\n".join(lines) + "\n", verdicts


def targets(summaries: dict, models: list[Model], growth: dict) -> list[tuple[str, bool | None, str]]:
    """The issue's targets: (what, met (None: could not be measured), the numbers)."""
    get = summaries.get
    verdicts: list[tuple[str, bool | None, str]] = []
    ids = {m.id for m in models}
    llama_r, llama_f = get("llama70b/reslint"), get("llama70b/floor")
    if "llama70b" in ids and llama_r and llama_f and not llama_r.error and not llama_f.error:
        paired = paired_ratio(llama_r, llama_f)
        rss = llama_r.stat("rss")
        verdicts.append((
            f"70B decoder: reslint within {LLAMA_FLOOR_RATIO:g}x of the floor's wall time",
            paired <= LLAMA_FLOOR_RATIO,
            f"{paired:.2f}x ({seconds(llama_r.stat('wall'))} vs {seconds(llama_f.stat('wall'))}; CPU time "
            f"{ratio(paired_ratio(llama_r, llama_f, 'cpu'))}; inside: reslint build + trace + analyze "
            f"{seconds(llama_r.phase('build') + llama_r.phase('run'))} vs floor build + forward {seconds(llama_f.phase('build') + llama_f.phase('run'))})",
        ))
        verdicts.append((f"70B decoder: reslint under {LLAMA_RSS_GIB:g} GiB peak RSS", rss < LLAMA_RSS_GIB * GiB, gib(rss)))
    elif "llama70b" in ids:
        verdicts.append(("70B decoder targets", None, "a cell failed: " + str((llama_r and llama_r.error) or (llama_f and llama_f.error))))
    vit_r, vit_h = get("vit_l_16/reslint"), get("vit_l_16/hand")
    if vit_r and vit_h and not vit_r.error and not vit_h.error:
        paired = paired_ratio(vit_r, vit_h)
        verdicts.append((
            f"ViT-L/16: reslint at most {VIT_HAND_RATIO:g}x the hand-written CPU check's wall time",
            paired <= VIT_HAND_RATIO,
            f"{paired:.2f}x ({seconds(vit_r.stat('wall'))} vs {seconds(vit_h.stat('wall'))}; CPU time {ratio(paired_ratio(vit_r, vit_h, 'cpu'))})",
        ))
    elif "vit_l_16" in ids:
        verdicts.append(("ViT-L/16 target", None, "a cell failed: " + str((vit_r and vit_r.error) or (vit_h and vit_h.error))))
    g50, g500, g5000 = growth.get(50), growth.get(500), growth.get(5000)
    if g50 and g500 and not g50.error and not g500.error:
        a50, a500 = g50.timing("trace", "analyze"), g500.timing("trace", "analyze")
        verdicts.append((
            f"growth: 500 blocks at most {GROWTH_RATIO:g}x the analysis time of 50",
            a500 <= GROWTH_RATIO * a50,
            f"{a500 / a50:.1f}x ({seconds(a500)} / {seconds(a50)}; 10x the nodes; whole process {ratio(paired_ratio(g500, g50))})",
        ))
    if g5000 is not None:
        if g5000.error:
            verdicts.append((f"growth: 5,000 blocks analyzed in under {GROWTH_5000_S:g} s", False, g5000.error))
        else:
            a = g5000.timing("trace", "analyze")
            verdicts.append((
                f"growth: 5,000 blocks analyzed in under {GROWTH_5000_S:g} s",
                a < GROWTH_5000_S,
                f"trace + analyze {seconds(a)}; whole process {seconds(g5000.stat('wall'))}, peak RSS {gib(g5000.stat('rss'))}",
            ))
    return verdicts


# -- main -------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK_MODELS)} and growth {'/'.join(map(str, QUICK_GROWTH))}")
    parser.add_argument("--repeat", type=int, default=1, metavar="N", help="runs per cell; the median is reported")
    parser.add_argument("--only", metavar="REGEX", help="cells whose 'model/method' matches, e.g. 'vit|llama' or '/reslint'")
    parser.add_argument("--reslint", default="HEAD", metavar="REV", help="measure reslint as committed at REV (default HEAD); 'live' for the working tree")
    parser.add_argument("--timeout", type=float, default=1200.0, metavar="S", help="seconds per cell (default 1200)")
    parser.add_argument("--no-warm-up", action="store_true", help="skip the unmeasured warm-up run")
    parser.add_argument("--output", default=os.path.join(ROOT, "benchmarks", "perf_results.md"), metavar="FILE")
    parser.add_argument("--lint-on-save", action="store_true",
                        help="also the warm rows (benchmarks/lsp.py: server save -> diagnostics and the daemon CLI against the cold CLI) in this run")
    args = parser.parse_args(argv)
    args.command = " ".join(shlex.quote(a) for a in [os.path.relpath(PYTHON, ROOT), "benchmarks/perf.py", *(sys.argv[1:] if argv is None else argv)])
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not os.path.exists(RESLINT):
        print(f"no reslint next to {PYTHON}; run this with the project's venv (.venv/bin/python)", file=sys.stderr)
        return 2
    models = [m for m in MODELS if not args.quick or m.id in QUICK_MODELS]
    depths = QUICK_GROWTH if args.quick else GROWTH
    cells = [c for m in models for c in model_cells(m)] + growth_cells(depths)
    if args.only:
        cells = [c for c in cells if re.search(args.only, c.key)]
        models = [m for m in models if any(c.model == m.id for c in cells)]
        depths = tuple(d for d in depths if any(c.model == str(d) for c in cells))
    snapshot, tested = reslint_snapshot(ROOT, args.reslint, "perf-reslint-")
    try:
        return measure(args, models, depths, cells, child_env(snapshot), tested)
    finally:
        if snapshot:
            shutil.rmtree(snapshot, ignore_errors=True)


def measure(args: argparse.Namespace, models: list[Model], depths: tuple[int, ...], cells: list[Cell], env: dict, tested: str) -> int:
    info = machine()
    print(f"{info['cpu']}, {info['cores']} cores, {info['ram_gib']:.1f} GiB; reslint: {tested}", flush=True)
    if not args.no_warm_up:
        print("warming up (unmeasured)...", flush=True)
        warm_up(env, models)
    nodes = count_nodes(env, depths) if depths else {}
    started_load, started = load_average(), time.perf_counter()
    runs: dict[str, list[Run]] = {c.key: [] for c in cells}
    for repeat in range(args.repeat):
        for number, cell in enumerate(cells, 1):
            run = run_cell(cell, env, args.timeout)
            runs[cell.key].append(run)
            extra = ""
            if cell.method == "reslint" and run.result.get("timings"):
                extra = " " + " ".join(f"{k}={v:.2f}" for k, v in run.result["timings"].items())
            status = f"error: {run.error}" if run.error else f"{run.wall:.1f} s wall, {run.cpu:.1f} s cpu, {run.rss / GiB:.2f} GiB{extra}"
            print(f"[{repeat + 1}/{args.repeat} {number}/{len(cells)}] {cell.key}: {status} (load {load_average()})", flush=True)
    elapsed = time.perf_counter() - started
    summaries = {key: Summary(value) for key, value in runs.items()}
    text, verdicts = report(args, info, tested, models, depths, summaries, nodes, started_load, load_average(), elapsed)
    if args.lint_on_save:
        text += lint_on_save_rows(args.repeat)
    print()
    print(text)
    with open(args.output, "w") as f:
        f.write(text)
    raw = {key: [vars(r) for r in value] for key, value in runs.items()}
    with open(os.path.splitext(args.output)[0] + ".json", "w") as f:
        json.dump({"machine": info, "reslint": tested, "command": args.command, "nodes": nodes, "runs": raw}, f, indent=1, default=str)
    print(f"wrote {os.path.relpath(args.output)}")
    return 0 if all(met is not False for _, met, _ in verdicts) else 1


def lint_on_save_rows(repeat: int) -> str:
    """benchmarks/lsp.py's tables for the three models, measured now (it lints with the installed reslint)."""
    print("lint on save: benchmarks/lsp.py ...", flush=True)
    command = [PYTHON, os.path.join(ROOT, "benchmarks", "lsp.py"), "--models", "resnet50,vit_l_16,llama70b",
               "--repeat", str(max(repeat, 3)), "--saves", "100"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    body = done.stdout if done.returncode == 0 else f"failed ({done.returncode}): {last_line(done.stderr)}\n"
    return f"\n## Lint on save: server and daemon against the cold CLI\n\n`{' '.join(command[1:])}`\n\n{body}"


if __name__ == "__main__":
    sys.exit(main())
