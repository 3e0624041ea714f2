"""Lint a zoo of real models with reslint, and check that it catches skip bugs planted in them.

Run from the repository root with the project's venv:

    .venv/bin/python benchmarks/zoo.py                    # the zoo: lint every model, write the table
    .venv/bin/python benchmarks/zoo.py --mutations        # the zoo, then plant skip bugs and measure recall
    .venv/bin/python benchmarks/zoo.py --quick            # a small representative subset (smoke test)
    .venv/bin/python benchmarks/zoo.py --only 'resnet|gpt2'   # only cases whose id matches a regex
    .venv/bin/python benchmarks/zoo.py --all              # every timm model name, not one per family

Other options: --reslint REV (lint with reslint as committed at REV, default HEAD, extracted to a
temp dir so that edits made during a long run do not mix versions; `live` uses the working tree),
--jobs N (children run in parallel), --timeout S (per model; a mutation child gets
3x), --max-sites N (mutants per model), --output FILE (Markdown; default benchmarks/zoo_results.md;
the raw records go next to it as .json). Needs segmentation-models-pytorch for the smp cases
(`.venv/bin/pip install segmentation-models-pytorch`); without it they are reported as errors.

The zoo (on the meta device, through reslint's own API: `reslint.load.build` to build,
`reslint.analyze.analyze_model(model, inputs, label, frontend="auto")` to lint):
  torchvision   every classification model (inception_v3 at 299, the rest at 224)
  timm          one model per architecture family (the module that registers it), at its
                pretrained_cfg input size; --all lints every name
  transformers  small configs of GPT-2, Llama, Mistral, Qwen2, Gemma, Phi-3, GPT-NeoX, BERT, T5
                (encoder-decoder), ViT, CLIP vision, Whisper encoder, Mamba; int64 tokens [2, 16]
  smp           segmentation_models_pytorch Unet, FPN and DeepLabV3+ (resnet34 encoder)

Every model is linted in its own child process (this script, run with `--child`), so a hang or a
crash costs one row, not the run. A model with findings is also run eagerly on meta, to tell a real
bug (the model crashes) from a false positive (it runs).

The mutation run plants skip bugs: in every block that has a skip projection (`downsample`,
`shortcut`, `skip`, `proj`, ...) it is replaced by nn.Identity() (or None, if the forward does not
tolerate Identity), every residual flag that is off (`has_skip`, `use_res_connect`,
`apply_residual`, ...) is forced on, and the last conv of each DenseNet layer gets stride 2 (a cat
skip, RL003). Ground truth is eager execution: the mutant counts only if
`model(x)` on meta tensors then fails at a skip join (the op that raises is an add or a cat with two
operands derived from the input, followed by a TorchFunctionMode; `x + self.pos_embed` is no join). It is a hit when reslint reports RL001 or RL003 whose `module` is the module
whose forward raised (normally the mutated block); the report gives recall, the share of hits
whose fix is `validated`, and every miss.
"""

from __future__ import annotations

import argparse
import collections
import json
import linecache
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from pinned import reslint_snapshot  # benchmarks/pinned.py: this script's folder is on sys.path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
if os.environ.get("ZOO_RESLINT"):  # a child linting with a snapshot of reslint (see --reslint)
    sys.path.insert(0, os.environ["ZOO_RESLINT"])

MARKER = "@@zoo@@ "  # prefixes each JSON record a child prints on stdout
DEFAULT_OUTPUT = os.path.join(ROOT, "benchmarks", "zoo_results.md")
QUICK = [
    "torchvision:resnet18", "torchvision:mobilenet_v2", "torchvision:densenet121", "torchvision:inception_v3",
    "torchvision:vit_b_16", "torchvision:swin_t", "timm:resnet18", "timm:efficientnet_b0", "timm:convnext_atto",
    "transformers:gpt2", "transformers:llama", "transformers:t5", "smp:unet",
]


# -- the zoo ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str  # "source:name", what a child is given
    source: str  # torchvision | timm | transformers | smp
    family: str


def torchvision_cases() -> list[Case]:
    import torchvision

    cases = []
    for name in torchvision.models.list_models(module=torchvision.models):
        family = torchvision.models.get_model_builder(name).__module__.rsplit(".", 1)[-1]
        cases.append(Case(f"torchvision:{name}", "torchvision", family))
    return cases


def timm_family(name: str) -> str:
    from timm.models import _registry

    return _registry.model_entrypoint(name).__module__.rsplit(".", 1)[-1]


SIZE_HINTS = ("atto", "femto", "pico", "nano", "tiny", "xxs", "xs", "small", "18", "b0", "_s", "mobile", "base")


def representative(names: list[str]) -> str:
    """The family member to lint: a small, non-test variant when there is one."""
    def rank(name: str) -> tuple:
        hint = next((i for i, h in enumerate(SIZE_HINTS) if h in name), len(SIZE_HINTS))
        return (name.startswith("test_"), hint, len(name), name)

    return min(names, key=rank)


def timm_cases(every_name: bool) -> list[Case]:
    import timm

    families: dict[str, list[str]] = collections.defaultdict(list)
    for name in timm.list_models():
        families[timm_family(name)].append(name)
    cases = []
    for family, names in sorted(families.items()):
        for name in names if every_name else [representative(names)]:
            cases.append(Case(f"timm:{name}", "timm", family))
    return cases


# name -> (config class, model class, config kwargs, input kind); all classes are in `transformers`
# except where the model class is given as "module:Class".
_LM = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
           num_key_value_heads=2, vocab_size=1000, max_position_embeddings=64)
_ENC = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)
TRANSFORMERS = {
    "gpt2": ("GPT2Config", "GPT2Model", dict(n_embd=64, n_layer=2, n_head=4, n_positions=64, vocab_size=1000), "tokens"),
    "llama": ("LlamaConfig", "LlamaModel", _LM, "tokens"),
    "mistral": ("MistralConfig", "MistralModel", _LM, "tokens"),
    "qwen2": ("Qwen2Config", "Qwen2Model", _LM, "tokens"),
    "gemma": ("GemmaConfig", "GemmaModel", dict(_LM, head_dim=16), "tokens"),
    "phi3": ("Phi3Config", "Phi3Model", dict(_LM, pad_token_id=0), "tokens"),
    "gpt_neox": ("GPTNeoXConfig", "GPTNeoXModel", dict(_ENC, vocab_size=1000, max_position_embeddings=64), "tokens"),
    "bert": ("BertConfig", "BertModel", dict(_ENC, vocab_size=1000, max_position_embeddings=64), "tokens"),
    "t5": ("T5Config", "T5Model", dict(d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4, vocab_size=1000), "encoder-decoder"),
    "vit": ("ViTConfig", "ViTModel", dict(_ENC, image_size=32, patch_size=8), "pixels"),
    "clip_vision": ("CLIPVisionConfig", "CLIPVisionModel", dict(_ENC, image_size=32, patch_size=8), "pixels"),
    "whisper_encoder": (
        "WhisperConfig", "transformers.models.whisper.modeling_whisper:WhisperEncoder",
        dict(d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
             encoder_ffn_dim=128, decoder_ffn_dim=128, num_mel_bins=80, max_source_positions=16, vocab_size=1000),
        "mel",
    ),
    "mamba": ("MambaConfig", "MambaModel", dict(hidden_size=64, state_size=8, num_hidden_layers=2, vocab_size=1000), "tokens"),
}


def transformers_cases() -> list[Case]:
    return [Case(f"transformers:{name}", "transformers", name) for name in TRANSFORMERS]


SMP = {"unet": "Unet", "fpn": "FPN", "deeplabv3plus": "DeepLabV3Plus"}


def smp_cases() -> list[Case]:
    return [Case(f"smp:{name}", "smp", SMP[name]) for name in SMP]


def case_for_id(case_id: str) -> Case:
    source, name = case_id.split(":", 1)
    family = {"timm": timm_family, "smp": SMP.get}.get(source, lambda n: n)(name)
    return Case(case_id, source, family)


def zoo_cases(args: argparse.Namespace) -> list[Case]:
    cases = torchvision_cases() + timm_cases(args.all) + transformers_cases() + smp_cases()
    if args.quick:
        by_id = {case.id: case for case in cases}
        cases = [by_id.get(case_id) or case_for_id(case_id) for case_id in QUICK]
    if args.only:
        cases = [case for case in cases if re.search(args.only, case.id)]
    return cases


# -- building a case (in the child) ------------------------------------------------------------------


def import_library(case_id: str) -> None:
    """Import what a case needs up front, so that a model's seconds do not include the import."""
    import importlib

    import reslint.analyze  # noqa: F401  (imports torch)

    source = case_id.split(":", 1)[0]
    importlib.import_module({"smp": "segmentation_models_pytorch"}.get(source, source))


def build_case(case_id: str) -> tuple[Any, tuple, list[str]]:
    """The model on meta (built by reslint's loader), its example inputs, and the loader's notes."""
    from reslint.load import build
    from reslint.target import TargetSpec

    source, name = case_id.split(":", 1)
    factory, args, kwargs = _factory(source, name)
    spec = TargetSpec(source=source, name=name, args=args, kwargs=kwargs, text=case_id)
    built = build(factory, spec, case_id)
    model = built.module
    return model, _inputs(source, name, model), built.notes


def _factory(source: str, name: str) -> tuple[Any, tuple, dict]:
    if source == "torchvision":
        import torchvision

        return torchvision.models.get_model, (name,), {"weights": None}
    if source == "timm":
        import timm

        return timm.create_model, (name,), {"pretrained": False}
    if source == "transformers":
        config_name, model_name, config_kwargs, _ = TRANSFORMERS[name]
        config = _hf_class(config_name)(**config_kwargs)
        model_class = _hf_class(model_name)
        return (lambda: model_class(config)), (), {}
    if source == "smp":
        import segmentation_models_pytorch as smp

        return getattr(smp, SMP[name]), (), {"encoder_name": "resnet34", "encoder_weights": None, "classes": 2}
    raise ValueError(f"unknown source {source!r}")


def _hf_class(name: str) -> Any:
    import importlib

    import transformers

    if ":" in name:
        module, _, attr = name.partition(":")
        return getattr(importlib.import_module(module), attr)
    return getattr(transformers, name)


def _inputs(source: str, name: str, model: Any) -> tuple:
    def meta(*shape: int, dtype: Any = torch.float32) -> Any:
        return torch.empty(shape, dtype=dtype, device="meta")

    if source == "torchvision":
        size = 299 if name == "inception_v3" else 224
        return (meta(2, 3, size, size),)
    if source == "timm":
        return (meta(2, *model.pretrained_cfg["input_size"]),)
    if source == "smp":
        return (meta(2, 3, 256, 256),)
    kind = TRANSFORMERS[name][3]
    tokens = meta(2, 16, dtype=torch.int64)
    if kind == "tokens":
        return (tokens,)
    if kind == "encoder-decoder":  # forward(input_ids, attention_mask, decoder_input_ids, ...)
        return (tokens, None, meta(2, 8, dtype=torch.int64))
    if kind == "pixels":
        return (meta(2, 3, 32, 32),)
    if kind == "mel":  # the encoder wants 2 * max_source_positions frames
        return (meta(2, 80, 32),)
    raise ValueError(kind)


# -- eager ground truth ------------------------------------------------------------------------------

JOIN_OPS = {"add", "add_", "__add__", "__iadd__", "__radd__", "cat", "concat", "concatenate"}


class DataFlow(TorchFunctionMode):
    """Runs a model, following which tensors derive from its inputs, and notes the first op that raised.

    This is the ground truth for "the model crashed at a skip join": the failing op is an add or a cat
    with two or more operands derived from the input (so `x + self.pos_embed` is not a join), found
    without any help from reslint.
    """

    def __init__(self, inputs: tuple):
        super().__init__()
        self.data = {id(t) for t in inputs if isinstance(t, torch.Tensor)}
        self.alive = list(inputs)  # keeps ids unique while the run lasts
        self.failed: tuple[str, int] | None = None  # (op name, number of data operands)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        operands = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        from_data = sum(id(t) in self.data for t in operands)
        try:
            result = func(*args, **kwargs)
        except Exception:
            if self.failed is None:
                self.failed = (getattr(func, "__name__", str(func)), from_data)
            raise
        if from_data:
            for tensor in tree_flatten(result)[0]:
                if isinstance(tensor, torch.Tensor):
                    self.data.add(id(tensor))
                    self.alive.append(tensor)
        return result


def run_eagerly(model: Any, inputs: tuple) -> dict | None:
    """None if `model(*inputs)` runs on meta; else where and how it crashed, and whether at a join."""
    flow = DataFlow(inputs)
    try:
        with torch.no_grad(), flow:
            model(*inputs)
    except Exception as error:
        record = crash_record(error, {id(m): path for path, m in model.named_modules()})
        op, from_data = flow.failed or ("?", 0)
        record.update(op=op, join=op in JOIN_OPS and from_data >= 2)
        return record
    return None


def crash_record(error: BaseException, module_paths: dict[int, str]) -> dict:
    """The crash's message, the innermost model-code line, and the module whose forward raised."""
    from reslint.where import is_user_file

    frames = list(traceback.walk_tb(error.__traceback__))
    site = next(((f, line) for f, line in reversed(frames) if is_user_file(f.f_code.co_filename) and f.f_code.co_filename != __file__), None)
    module = next((module_paths[id(f.f_locals["self"])] for f, _ in reversed(frames) if id(f.f_locals.get("self")) in module_paths), None)
    record = {"error": f"{type(error).__name__}: {_one_line(error)}", "module": module, "where": None, "code": None}
    if site is not None:
        frame, line = site
        record.update(where=f"{_short_path(frame.f_code.co_filename)}:{line}", code=linecache.getline(frame.f_code.co_filename, line).strip())
    return record


# -- lint a case (child) -----------------------------------------------------------------------------


def lint_child(case_id: str) -> None:
    from reslint.analyze import analyze_model

    record: dict[str, Any] = {"kind": "lint", "id": case_id, "status": "error", "frontend": None, "joins": 0, "findings": []}
    started = time.perf_counter()
    try:
        model, inputs, notes = build_case(case_id)
        emit({"kind": "built", "id": case_id, "sites": len(find_sites(model))})  # survives a timeout in the lint
        result = analyze_model(model, inputs, case_id, frontend="auto")
        record.update(status=result.status, frontend=result.frontend, joins=result.joins, notes=notes + result.notes,
                      timings=result.timings, findings=[finding_record(f) for f in result.findings])
        if result.findings:
            record["eager"] = run_eagerly(model, inputs) or "runs"
    except Exception as error:
        record.update(error=f"{type(error).__name__}: {_one_line(error)}", traceback=traceback_tail(error))
    record["seconds"] = round(time.perf_counter() - started, 2)
    emit(record)


def finding_record(finding: Any) -> dict:
    fix = finding.fix
    return {
        "code": finding.code, "module": finding.module, "module_type": finding.module_type,
        "where": f"{_short_path(finding.path)}:{finding.line}", "message": finding.message, "shapes": finding.shapes,
        "fix": None if fix is None else {"kind": fix.kind, "module": fix.module, "code": fix.code, "validated": fix.validated},
    }


# -- mutations (child) -------------------------------------------------------------------------------

SKIP_CODES = ("RL001", "RL003")
FORCE_ON = ("has_skip", "use_res_connect", "apply_residual", "use_shortcut", "add_identity", "has_residual",
            "use_residual", "residual", "shortcut")
FORCE_OFF = ("no_skip", "noskip")
PROJECTION_NAMES = re.compile(r"^(downsample|shortcut|skip|proj|project|projection|shortcut_proj\w*|proj_shortcut|skip_proj)$")
DENSE_LAYER = re.compile(r"dense_?layer", re.IGNORECASE)
NOT_A_BLOCK = re.compile(r"attn|attention|embed|mlp|modulation|posenc|posconv|stem|stage|sequential|modulelist", re.IGNORECASE)


@dataclass
class Site:
    block: str  # path of the block whose skip is changed
    block_type: str
    attr: str  # the flag or the child module's name
    kind: str  # "remove-projection" | "force-skip" | "stray-stride"
    value: Any = None  # for a flag: the value forced

    @property
    def label(self) -> str:
        return f"{self.block or '<root>'}.{self.attr}"


def find_sites(model: Any) -> list[Site]:
    """Every skip projection (a weighted child with a skip-like name), every residual flag that is off,
    and, in dense layers (whose output is concatenated to their input), the last conv: given stride 2."""
    sites = []
    for path, module in model.named_modules():
        block_type = type(module).__name__
        conv = getattr(module, "conv2", None)
        if DENSE_LAYER.search(block_type) and isinstance(conv, torch.nn.Conv2d) and conv.stride == (1, 1):
            sites.append(Site(f"{path}.conv2", type(conv).__name__, "stride", "stray-stride", (2, 2)))
        for attr, value in vars(module).items():
            if isinstance(value, bool) and ((attr in FORCE_ON and not value) or (attr in FORCE_OFF and value)):
                sites.append(Site(path, block_type, attr, "force-skip", not value))
        if NOT_A_BLOCK.search(block_type):
            continue
        for attr, child in module.named_children():
            if PROJECTION_NAMES.match(attr) and any(p.dim() >= 2 for p in child.parameters()):
                sites.append(Site(path, block_type, attr, "remove-projection"))
    return sites


def choose_sites(sites: list[Site], limit: int) -> list[Site]:
    """Up to `limit` sites, spread over the kinds of block: each kind's first and last, then the rest."""
    groups: dict[tuple, list[Site]] = collections.defaultdict(list)
    for site in sites:
        groups[(site.block_type, site.attr)].append(site)
    orders = [[g[0], g[-1], *g[1:-1]] if len(g) > 1 else g for g in groups.values()]
    chosen = []
    for rank in range(max(map(len, orders), default=0)):
        chosen += [order[rank] for order in orders if rank < len(order)]
    return chosen[:limit]


@contextmanager
def mutated(model: Any, site: Site, replacement: Any) -> Iterator[None]:
    block = model.get_submodule(site.block)
    original = getattr(block, site.attr)
    setattr(block, site.attr, replacement)
    try:
        yield
    finally:
        setattr(block, site.attr, original)


def replacements(site: Site) -> list[Any]:
    from torch import nn

    return [nn.Identity(), None] if site.kind == "remove-projection" else [site.value]


def mutate_child(case_id: str, max_sites: int) -> None:
    model, inputs, _ = build_case(case_id)
    sites = find_sites(model)
    chosen = choose_sites(sites, max_sites)
    emit({"kind": "sites", "id": case_id, "found": len(sites), "chosen": [s.label for s in chosen]})
    if not chosen:
        return
    baseline = run_eagerly(model, inputs)
    if baseline is not None:
        emit({"kind": "baseline-crash", "id": case_id, "crash": baseline})
        return
    singles = []
    for site in chosen:
        record = check_mutant(case_id, model, inputs, site)
        emit(record)
        singles.append((site, record))
    hits = [(site, record) for site, record in singles if record["outcome"] == "hit"]
    if len(hits) >= 2:
        emit(check_double(case_id, model, inputs, hits))


def check_double(case_id: str, model: Any, inputs: tuple, hits: list[tuple[Site, dict]]) -> dict:
    """Plant the first and the last bug (in module order) at once: both must be reported.

    Eager execution stops at the first; "never stop at the first error" says reslint does not.
    """
    order = {path: i for i, (path, _) in enumerate(model.named_modules())}
    (first, first_record), (last, last_record) = min(hits, key=lambda h: order[h[0].block]), max(hits, key=lambda h: order[h[0].block])
    replacement = {site.label: record["replacement"] for site, record in hits}
    record: dict[str, Any] = {"kind": "double", "id": case_id, "sites": [first.label, last.label],
                              "expected": [first_record["crash"]["module"], last_record["crash"]["module"]]}
    values = [None if replacement[site.label] == "None" else replacements(site)[0] for site in (first, last)]
    with mutated(model, first, values[0]), mutated(model, last, values[1]):
        try:
            result = analyze_model_for(model, inputs, f"{case_id} [{first.label} + {last.label}]")
        except Exception as error:
            return dict(record, outcome="lint-error", error=f"{type(error).__name__}: {_one_line(error)}")
    found = {module for f in result.findings if f.code in SKIP_CODES for module in modules_of(f)}
    reported = [module in found for module in record["expected"]]
    record.update(reported=reported, outcome="both" if all(reported) else "first-only" if reported[0] else "not-both",
                  joins=result.joins, findings=[finding_record(f) for f in result.findings], notes=result.notes)
    return record


def analyze_model_for(model: Any, inputs: tuple, label: str) -> Any:
    from reslint.analyze import analyze_model

    return analyze_model(model, inputs, label, frontend="auto")


def check_mutant(case_id: str, model: Any, inputs: tuple, site: Site) -> dict:
    """Apply one mutation, see whether the model crashes at a join, and whether reslint says so."""
    from reslint.analyze import analyze_model

    record: dict[str, Any] = {"kind": "mutant", "id": case_id, "site": site.label, "block": site.block,
                              "block_type": site.block_type, "mutation": site.kind}
    started = time.perf_counter()
    for replacement in replacements(site):
        with mutated(model, site, replacement):
            crash = run_eagerly(model, inputs)
            if crash is not None and not crash["join"] and crash["error"].startswith(("TypeError", "AttributeError")) \
                    and replacement is not None and site.kind == "remove-projection":
                continue  # the forward does not tolerate Identity here; try None
            record.update(replacement=type(replacement).__name__ if replacement is not None else "None", crash=crash)
            if crash is None:
                record["outcome"] = "no-crash"
                break
            try:
                result = analyze_model(model, inputs, f"{case_id} [{site.label}]", frontend="auto")
            except Exception as error:
                record.update(outcome="lint-error", error=f"{type(error).__name__}: {_one_line(error)}", traceback=traceback_tail(error))
                break
            record.update(frontend=result.frontend, joins=result.joins, findings=[finding_record(f) for f in result.findings])
            record["outcome"] = judge(crash, site, result.findings)
            break
    record["seconds"] = round(time.perf_counter() - started, 2)
    return record


def judge(crash: dict, site: Site, findings: list) -> str:
    """hit / miss for a crash at a join; crash-not-at-join when eager fails somewhere else."""
    if not crash["join"]:
        return "crash-not-at-join"
    expected = crash["module"]
    skip_codes = [f for f in findings if f.code in SKIP_CODES]
    return "hit" if any(expected in modules_of(f) for f in skip_codes) else "miss"


def modules_of(finding) -> set[str]:
    """The modules a finding is reported in: one bug in several blocks is one finding listing its instances."""
    return {finding.module, *(instance.module for instance in finding.instances)}


# -- children: run, parse ----------------------------------------------------------------------------


def emit(record: dict) -> None:
    print(MARKER + json.dumps(record, default=str), flush=True)


def run_child(mode: str, case: Case, timeout: float, max_sites: int) -> dict:
    """Run one case in a child process; its records, plus how the child ended."""
    command = [sys.executable, os.path.abspath(__file__), "--child", mode, case.id, "--max-sites", str(max_sites)]
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
        stdout, stderr = done.stdout, done.stderr
        failure = None if done.returncode == 0 else f"child exited with code {done.returncode}"
    except subprocess.TimeoutExpired as expired:
        stdout, stderr = _text(expired.stdout), _text(expired.stderr)
        failure = f"timeout after {timeout:.0f}s"
    records = [json.loads(line[len(MARKER):]) for line in stdout.splitlines() if line.startswith(MARKER)]
    return {"case": case, "records": records, "failure": failure, "stderr": _tail(stderr, 12),
            "wall": round(time.perf_counter() - started, 1)}


def run_all(mode: str, cases: list[Case], args: argparse.Namespace) -> list[dict]:
    timeout = args.timeout * (3 if mode == "mutate" else 1)
    runs = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(run_child, mode, case, timeout, args.max_sites) for case in cases]
        for number, future in enumerate(as_completed(futures), 1):
            run = future.result()
            runs.append(run)
            print(f"[{mode} {number}/{len(cases)}] {run['case'].id}: {progress_word(mode, run)} ({run['wall']}s)", flush=True)
    order = {case.id: i for i, case in enumerate(cases)}
    return sorted(runs, key=lambda run: order[run["case"].id])


def progress_word(mode: str, run: dict) -> str:
    if mode == "lint":
        row = lint_row(run)
        return f"{row['status']} {row['frontend'] or ''} joins={row['joins']} findings={len(row['findings'])}".strip()
    outcomes = collections.Counter(r.get("outcome", r["kind"]) if r["kind"] != "double" else "double-" + r["outcome"]
                                   for r in run["records"] if r["kind"] != "sites")
    return ", ".join(f"{k}={v}" for k, v in outcomes.items()) + (f" [{run['failure']}]" if run["failure"] else "") or "no sites"


def lint_row(run: dict) -> dict:
    """The child's lint record, or an error record when the child died without one."""
    case = run["case"]
    record = next((r for r in run["records"] if r["kind"] == "lint"), None)
    if record is None:
        record = {"id": case.id, "status": "error", "frontend": None, "joins": 0, "findings": [], "seconds": run["wall"],
                  "error": run["failure"] or "child printed no result", "traceback": run["stderr"]}
    built = next((r for r in run["records"] if r["kind"] == "built"), {})
    return dict(record, source=case.source, family=case.family, sites=built.get("sites", 0))


# -- report ----------------------------------------------------------------------------------------


def lint_report(rows: list[dict]) -> tuple[str, str]:
    """(summary, Markdown) of the zoo run."""
    reached = [r for r in rows if r["status"] != "error"]
    frontends = collections.Counter(r["frontend"] for r in reached)
    findings = sum(len(r["findings"]) for r in rows)
    errors_on_running = [f for r in rows if r.get("eager") == "runs" for f in r["findings"] if f["code"] in ERROR_CODES]
    summary = (
        f"models: {len(rows)}; verdicts reached: {len(reached)}/{len(rows)} "
        f"({100 * len(reached) / max(len(rows), 1):.1f}%); frontends: "
        + ", ".join(f"{k}={v}" for k, v in sorted(frontends.items()))
        + f"; total findings: {findings} on {sum(1 for r in rows if r['findings'])} models"
        + (f" ({_counts(collections.Counter(f['code'] for r in rows for f in r['findings']))})" if findings else "")
        + f"; error-severity findings on models that run eagerly (false positives): {len(errors_on_running)}"
        + f"; errors: {len(rows) - len(reached)}"
    )
    lines = ["| model | source | family | verdict | frontend | joins | findings | seconds | note |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['id'].split(':', 1)[1]} | {r['source']} | {r['family']} | {r['status']} | {r['frontend'] or '-'} "
                     f"| {r['joins']} | {len(r['findings'])} | {r.get('seconds', '-')} | {_cell(row_note(r))} |")
    details = ["", "### Errors", ""]
    for r in (r for r in rows if r["status"] == "error"):
        details += [f"**{r['id']}**: {r.get('error')}", "", "```", r.get("traceback") or "", "```", ""]
    details += ["### Findings", ""]
    for r in (r for r in rows if r["findings"]):
        details.append(f"**{r['id']}** (eager on meta: {eager_word(r.get('eager'))})")
        details += [f"- {finding_line(f)}" for f in r["findings"]]
        details.append("")
    return summary, "\n".join(lines + details)


ERROR_CODES = ("RL000", "RL001", "RL003")  # each says "the model crashes here"; the others are warnings


def row_note(row: dict) -> str:
    if row["status"] == "error":
        return row.get("error") or ""
    if row["findings"]:
        codes = collections.Counter(f["code"] for f in row["findings"])
        return " ".join(f"{c}x{n}" for c, n in sorted(codes.items())) + f"; eager: {eager_word(row.get('eager'))}"
    return "; ".join(row.get("notes") or [])


def eager_word(eager: Any) -> str:
    if eager is None:
        return "-"
    if eager == "runs":
        return "runs"
    return f"crashes at {eager['where']}: {eager['error']}"


def finding_line(f: dict) -> str:
    fix = f["fix"]
    fix_text = "no fix" if fix is None else f"fix {fix['kind']} validated={fix['validated']}: `{fix['code']}`"
    return f"{f['code']} at {f['where']} module `{f['module']}` ({f['module_type']}): {f['message']}; {fix_text}"


def mutation_report(runs: list[dict], clean_joins: dict[str, int]) -> tuple[str, str]:
    mutants = [r for run in runs for r in run["records"] if r["kind"] == "mutant"]
    doubles = [r for run in runs for r in run["records"] if r["kind"] == "double"]
    both = [d for d in doubles if d["outcome"] == "both"]
    outcomes = collections.Counter(m["outcome"] for m in mutants)
    hits = [m for m in mutants if m["outcome"] == "hit"]
    counted = [m for m in mutants if m["outcome"] in ("hit", "miss", "lint-error")]
    validated = [m for m in hits if (hit_finding(m) or {}).get("fix") and hit_finding(m)["fix"]["validated"]]
    off_block = [m for m in hits if m["crash"]["module"] != m["block"]]
    baseline = [r for run in runs for r in run["records"] if r["kind"] == "baseline-crash"]
    with_sites = [run for run in runs if any(r["kind"] == "sites" and r["chosen"] for r in run["records"])]
    summary = (
        f"models with sites: {len(with_sites)}; mutants: {len(mutants)} ({_counts(outcomes)}); "
        f"recall: {len(hits)}/{len(counted)} ({100 * len(hits) / max(len(counted), 1):.1f}%); "
        f"validated fixes: {len(validated)}/{len(hits)} ({100 * len(validated) / max(len(hits), 1):.1f}%); "
        f"double mutants with both bugs reported: {len(both)}/{len(doubles)}; "
        f"baseline crashes on meta: {len(baseline)}; child failures: {sum(1 for run in runs if run['failure'])}"
    )
    lines = ["| model | site | mutation | outcome | eager crash | reslint |", "| --- | --- | --- | --- | --- | --- |"]
    for m in mutants:
        lines.append(f"| {m['id']} | {m['site']} | {m['mutation']} ({m.get('replacement')}) | {m['outcome']} "
                     f"| {_cell(crash_word(m.get('crash')))} | {_cell(mutant_word(m))} |")
    details = ["", "### Misses and lint errors", ""]
    for m in (m for m in mutants if m["outcome"] in ("miss", "lint-error")):
        details.append(f"**{m['id']} {m['site']}** ({m['block_type']}, {m['mutation']} -> {m.get('replacement')}, "
                       f"frontend {m.get('frontend')}): eager {crash_word(m['crash'])}")
        details += [f"- reslint: {finding_line(f)}" for f in m.get("findings", [])] or ["- reslint: no findings"]
        if m.get("error"):
            details += [f"- lint error: {m['error']}", "", "```", m.get("traceback") or "", "```"]
        details.append("")
    details += ["### Hits without a validated fix", ""]
    for m in (m for m in hits if m not in validated):
        details.append(f"- {m['id']} {m['site']}: {finding_line(hit_finding(m))}")
    details += ["", "### Hits reported at a module other than the mutated block", ""]
    details += [f"- {m['id']} {m['site']}: crash and finding in `{m['crash']['module']}`" for m in off_block] or ["- none"]
    details += ["", "### Double mutants where a bug went unreported", ""]
    for d in (d for d in doubles if d["outcome"] != "both"):
        details.append(f"- {d['id']} {' + '.join(d['sites'])}: expected RL001/RL003 at {d['expected']}, reported {d.get('reported')}; "
                       f"joins {d.get('joins')} (clean model: {clean_joins.get(d['id'], '?')}); "
                       f"findings: {', '.join(f['code'] + '@' + f['module'] for f in d.get('findings', [])) or 'none'}"
                       + (f"; {d['error']}" if d.get("error") else ""))
    if len(both) == len(doubles):
        details.append("- none")
    details += ["", "### Baseline crashes and child failures", ""]
    details += [f"- {b['id']}: {crash_word(b['crash'])}" for b in baseline]
    details += [f"- {run['case'].id}: {run['failure']}\n```\n{run['stderr']}\n```" for run in runs if run["failure"]]
    return summary, "\n".join(lines + details)


def hit_finding(m: dict) -> dict | None:
    return next((f for f in m.get("findings", []) if f["code"] in ("RL001", "RL003") and f["module"] == m["crash"]["module"]), None)


def crash_word(crash: dict | None) -> str:
    if crash is None:
        return "runs"
    return f"{crash['error']} at {crash['where']} in `{crash['module']}` (`{crash['code']}`)"


def mutant_word(m: dict) -> str:
    if "findings" not in m:
        return m.get("error", "-") if m["outcome"] == "lint-error" else "-"
    found = [f"{f['code']}@{f['module'] or '<root>'}" + ("" if not f["fix"] else (" fix✓" if f["fix"]["validated"] else " fix✗"))
             for f in m["findings"]]
    return ", ".join(found) or "no findings"


def write_markdown(path: str, command: str, tested: str, sections: list[tuple[str, str, str]]) -> None:
    parts = ["# reslint zoo benchmark", "", f"Command: `{command}`", "", f"reslint: {tested}; {library_versions()}", ""]
    for title, summary, body in sections:
        parts += [f"## {title}", "", f"**Summary:** {summary}", "", body, ""]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(parts))


def library_versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("torch", "torchvision", "timm", "transformers", "segmentation-models-pytorch"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} missing")
    return ", ".join(found)


# -- small helpers -----------------------------------------------------------------------------------


def _one_line(error: BaseException) -> str:
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return lines[0][:400] if lines else type(error).__name__


def traceback_tail(error: BaseException, limit: int = 14) -> str:
    """The last lines of the traceback, including the exception a `raise ... from None` hid."""
    chain = []
    while error is not None and len(chain) < 3:
        chain.append(error)
        error = error.__cause__ or error.__context__
    text = ""
    for item in reversed(chain):
        text += "".join(traceback.format_exception(type(item), item, item.__traceback__, chain=False)[-limit:])
    return _tail(text, 3 * limit)


def _tail(text: str, lines: int) -> str:
    return "\n".join((text or "").strip().splitlines()[-lines:])


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else (value or "")


def _short_path(path: str) -> str:
    marker = "site-packages" + os.sep
    return path.split(marker, 1)[1] if marker in path else os.path.relpath(path, ROOT) if path.startswith(ROOT) else path


def _cell(text: str) -> str:
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= 160 else text[:157] + "..."


def _counts(counter: collections.Counter) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(counter.items()))


# -- main --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small representative subset (smoke test)")
    parser.add_argument("--only", metavar="PATTERN", help="only cases whose id (source:name) matches this regex")
    parser.add_argument("--all", action="store_true", help="every timm model name, not one per family")
    parser.add_argument("--mutations", action="store_true", help="also plant skip bugs and measure recall")
    parser.add_argument("--jobs", type=int, default=2, help="child processes in parallel (default 2)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per model (a mutation child gets 3x)")
    parser.add_argument("--max-sites", type=int, default=6, help="mutants per model (default 6)")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="Markdown file to write")
    parser.add_argument("--reslint", default="HEAD", metavar="REV", help="lint with reslint as committed at REV (default HEAD); 'live' for the working tree")
    parser.add_argument("--report-from", metavar="JSON", help="rewrite the Markdown from a saved .json of an earlier run")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "CASE"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def child_main(mode: str, case_id: str, max_sites: int) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    try:
        import_library(case_id)
    except ImportError:
        pass  # reported by the build, with the rest of the case's errors
    if mode == "lint":
        lint_child(case_id)
    else:
        mutate_child(case_id, max_sites)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        child_main(args.child[0], args.child[1], args.max_sites)
        return 0
    if args.report_from:
        return report_from(args.report_from, args.output)
    command = shlex.join(["python", "benchmarks/zoo.py", *(sys.argv[1:] if argv is None else argv)])
    cases = zoo_cases(args)
    snapshot, tested = reslint_snapshot(ROOT, args.reslint, "zoo-reslint-")
    if snapshot:
        os.environ["ZOO_RESLINT"] = snapshot
    print(f"{len(cases)} models, {args.jobs} jobs, timeout {args.timeout:.0f}s; reslint: {tested}", flush=True)
    try:
        return run_zoo(args, cases, command, tested)
    finally:
        if snapshot:
            shutil.rmtree(snapshot, ignore_errors=True)


def run_zoo(args: argparse.Namespace, cases: list[Case], command: str, tested: str) -> int:
    started = time.perf_counter()
    lint_runs = run_all("lint", cases, args)
    rows = [lint_row(run) for run in lint_runs]
    summary, body = lint_report(rows)
    sections = [("Zoo", summary, body)]
    raw: dict[str, Any] = {"lint": rows}
    if args.mutations:
        with_sites = {row["id"] for row in rows if row.get("sites")}
        mutation_runs = run_all("mutate", [case for case in cases if case.id in with_sites], args)
        mutation_summary, mutation_body = mutation_report(mutation_runs, {row["id"]: row["joins"] for row in rows})
        sections.append(("Mutations", mutation_summary, mutation_body))
        raw["mutations"] = [dict(run, case=run["case"].id) for run in mutation_runs]
    sections[0] = ("Zoo", summary + f"; wall time {time.perf_counter() - started:.0f}s", body)
    write_markdown(args.output, command, tested, sections)
    raw.update(command=command, tested=tested, wall=round(time.perf_counter() - started))
    with open(os.path.splitext(args.output)[0] + ".json", "w", encoding="utf-8") as handle:
        json.dump(raw, handle, indent=1, default=str)
    print()
    print(body.split("\n\n### Errors")[0])
    for title, section_summary, _ in sections:
        print(f"\n{title}: {section_summary}")
    print(f"\nwritten to {os.path.relpath(args.output)}")
    return 0


def report_from(path: str, output: str) -> int:
    """Write the Markdown again from the raw records of an earlier run (its .json)."""
    with open(path, encoding="utf-8") as handle:
        raw = json.load(handle)
    summary, body = lint_report(raw["lint"])
    sections = [("Zoo", summary + (f"; wall time {raw['wall']}s" if "wall" in raw else ""), body)]
    if "mutations" in raw:
        runs = [dict(run, case=Case(run["case"], run["case"].split(":")[0], "")) for run in raw["mutations"]]
        sections.append(("Mutations", *mutation_report(runs, {row["id"]: row["joins"] for row in raw["lint"]})))
    write_markdown(output, raw.get("command", "?"), raw.get("tested", "?"), sections)
    print(f"written to {os.path.relpath(output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
