"""Targets that build real models: config-object arguments, discovery that builds config models and
lists what it could not build, and TorchScript blocks left as Python so they are analyzed.

The models are in tests/projects/; everything runs in this process (cwd is tests/projects).
"""

import os
import re
import sys

import pytest
import torch

from reslint.errors import TargetError
from reslint.expression import Expression
from reslint.findings import Report
from reslint.load import NotBuildable, load_targets, missing_arguments
from reslint.runner import Job, lint_target
from reslint.target import parse_target

PROJECTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "projects")


@pytest.fixture(autouse=True)
def projects(monkeypatch):
    """cwd is tests/projects; afterwards sys.path and the project's modules are as they were."""
    monkeypatch.chdir(PROJECTS)
    path = list(sys.path)
    yield PROJECTS
    sys.path[:] = path
    for name, module in list(sys.modules.items()):
        if (getattr(module, "__file__", None) or "").startswith(PROJECTS + os.sep):
            del sys.modules[name]


def build(text: str, **kwargs):
    (label, thunk), = load_targets(parse_target(text), **kwargs)
    return thunk()


def lint(text: str, *inputs: str):
    return lint_target(Job(text, inputs))


def expected_line(path: str, code: str) -> int:
    with open(os.path.join(PROJECTS, path)) as handle:
        return next(i for i, line in enumerate(handle, 1) if f"# expect: {code}" in line)


def one_line_error(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message
    return message


# Parsing: literals stay values, calls and names stay expressions; nothing is evaluated.


def test_arguments_keep_literals_and_calls():
    spec = parse_target("model.py:GPT(GPTConfig(n_layer=2, dropout=-0.1), 3, name='x', sizes=(1, -2), opts={'a': [None, True]}, act=nn.GELU)")
    assert spec.name == "GPT" and spec.args[1] == 3
    assert isinstance(spec.args[0], Expression) and isinstance(spec.kwargs["act"], Expression)
    assert spec.kwargs["sizes"] == (1, -2) and spec.kwargs["opts"] == {"a": [None, True]} and spec.kwargs["name"] == "x"

    def gpt(config, n, *, name, sizes, opts, act, bias=True):
        pass

    assert missing_arguments(gpt, spec.args, spec.kwargs) == []
    assert missing_arguments(gpt, spec.args[:1], {}) == ["n", "name", "sizes", "opts", "act"]


@pytest.mark.parametrize("call", [
    "Net(lambda: 1)", "Net(cfg['a'])", "Net(1 + 2)", "Net(2 * Config())", "Net([i for i in x])", "Net(f'{x}')",
    "Net(*xs)", "Net(**kw)", "Net(x.__class__)", "Net(Config()())", "Net(not True)", "Net(a if b else c)",
    "Net(Config().width)", "Net(-Config())", "Net((x := 1))",
])
def test_anything_but_calls_and_literals_is_refused_in_one_line(call):
    with pytest.raises(TargetError) as error:
        parse_target(f"model.py:{call}")
    one_line_error(error)


def test_a_repeated_keyword_is_refused_in_one_line():
    for text in ("m.py:Net(width=4, width=5)", "m.py:Net(Config(depth=1, depth=2))"):
        with pytest.raises(TargetError) as error:
            parse_target(text)
        assert "depth" in one_line_error(error) or "width" in str(error.value)


# Building: the expressions are evaluated against the target's module.


def test_config_object_targets_build_the_model_they_describe():
    stack = build("config_models.py:Stack(TinyConfig(width=4, depth=3))").module
    assert len(stack.blocks) == 3 and stack.blocks[0].up.in_features == 4
    assert all(p.device.type == "meta" for p in stack.parameters())
    assert len(build("config_models.py:make_stack(TinyConfig())").module.blocks) == 2


def test_attribute_calls_and_keywords_of_an_imported_module():
    net = build("preset_model.py:Net(cfg=presets.Small(depth=2), scale=-1.5)").module
    assert len(net.layers) == 2 and net.scale == -1.5 and net.cfg.width == 4


@pytest.mark.parametrize("text", [
    "config_models.py:Stack(Nope())",  # not a name of the module
    "config_models.py:Stack(open('x'))",  # builtins are not the module's names
    "preset_model.py:Net(cfg=presets.Big())",  # no such attribute
    "preset_model.py:Exploding(presets.Small(depth=3))",  # the constructor raises
    "config_models.py:Stack(TinyConfig(widht=4))",  # the config's constructor raises
])
def test_bad_arguments_and_raising_constructors_are_one_line_errors(text):
    with pytest.raises(TargetError) as error:
        build(text)
    one_line_error(error)


def test_a_config_model_target_is_linted():
    broken, = lint("config_models.py:Stack(TinyConfig(broken=True))", "2,8")
    assert [(f.code, f.path, f.line) for f in broken.findings] == [("RL001", "config_models.py", expected_line("config_models.py", "RL001"))]
    fixed, = lint("config_models.py:Stack(TinyConfig(width=4))", "2,4")
    assert fixed.status == "ok"


# Discovery: config models are built with the config's defaults; the rest is listed with what it needs.


def test_discovery_builds_a_config_model_with_its_defaults_and_says_so():
    entries = dict(load_targets(parse_target("config_models.py")))
    assert set(entries) == {"config_models.py:Block", "config_models.py:Stack(TinyConfig())"}
    built = entries["config_models.py:Stack(TinyConfig())"]()
    assert len(built.module.blocks) == 2 and any("TinyConfig()" in note for note in built.notes)
    (label, thunk), = [e for e in load_targets(parse_target("args_model.py")) if "Mixer" in e[0]]
    assert label == "args_model.py:Mixer(ModelArgs())" and len(thunk().module.layers) == 2


def test_discovery_lists_each_class_it_cannot_build_with_a_target_that_would():
    entries = dict(load_targets(parse_target("config_models.py")))
    with pytest.raises(NotBuildable) as error:
        entries["config_models.py:Block"]()
    suggested = re.search(r"'([^']+)'", one_line_error(error)).group(1)
    spec = parse_target(suggested.replace("...", "1"))
    assert (spec.source, spec.name, set(spec.kwargs)) == ("config_models.py", "Block", {"dim", "hidden"})


def test_a_file_where_nothing_can_be_built_fails_the_run():
    results = lint("needs_args.py")
    assert [r.status for r in results] == ["error"] and Report(targets=results).exit_code == 2
    assert "Encoder" in results[0].error
    # In pre-commit file mode the classes are listed to be skipped, and a file without models passes.
    skipped = load_targets(parse_target("needs_args.py"), discovered=True)
    assert [label for label, _ in skipped] == ["needs_args.py:Encoder"]
    with pytest.raises(NotBuildable):
        skipped[0][1]()
    assert load_targets(parse_target("tiny_presets.py"), discovered=True) == []
    with pytest.raises(TargetError):
        load_targets(parse_target("tiny_presets.py"))


# TorchScript: left as Python while the model is imported and built, so its joins are checked.


def test_a_scripted_residual_block_is_analyzed():
    script = torch.jit.script
    result, = lint("scripted/jit_blocks.py:Net", "1,3,16,16")
    assert torch.jit.script is script  # restored
    assert [(f.code, f.path, f.line) for f in result.findings] == [
        ("RL001", "scripted/jit_blocks.py", expected_line("scripted/jit_blocks.py", "RL001"))
    ]
    assert any("fused_add" in note and "Block" in note for note in result.notes)


def test_a_module_scripted_elsewhere_is_named_as_not_analyzed():
    sys.path.insert(0, os.path.join(PROJECTS, "scripted"))
    import prebuilt  # compiles its block when imported, before reslint patches anything

    assert isinstance(prebuilt.SCRIPTED, torch.jit.ScriptModule)
    built = build("scripted/uses_prebuilt.py:Net")
    assert [entry.split(" ")[0] for entry in built.opaque] == ["inner"]
