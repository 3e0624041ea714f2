"""Models torch.fx cannot trace get a verdict through the eager frontend, with the same findings."""

import pytest
import torch
from torch import nn

import reslint
from conftest import expected_lines


def load_file(path, name, **kwargs):
    from reslint.load import build, import_source
    from reslint.target import TargetSpec

    spec = TargetSpec(source=path, name=name, kwargs=kwargs, text=f"{path}:{name}")
    return build(getattr(import_source(spec), name), spec, spec.text).module


CONTROL_FLOW = '''
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, 1)
        self.norm = nn.BatchNorm2d(cout)

    def forward(self, x):
        if x.shape[-1] > 64:  # shape-based control flow: torch.fx cannot trace this
            x = nn.functional.avg_pool2d(x, 2)
        return torch.relu(self.norm(self.conv(x)) + x)  # expect: RL001


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(Block(3, 3, 1), Block(3, 8, 2), Block(8, 8, 1))
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        return self.head(self.blocks(x).mean((2, 3)))
'''


def test_shape_control_flow_with_a_missing_projection(model_file):
    path = model_file(CONTROL_FLOW)
    result = reslint.check(load_file(path, "Net"), torch.empty(2, 3, 32, 32)).targets[0]
    assert result.frontend == "eager"
    finding, = result.findings
    assert (finding.code, finding.module, finding.line) == ("RL001", "blocks.1", expected_lines(path, "RL001")[0])
    assert finding.fix.validated
    assert finding.fix.code == "nn.Sequential(nn.Conv2d(3, 8, kernel_size=1, stride=2, bias=False), nn.BatchNorm2d(8))"


SSM = '''
import torch
from torch import nn


class SSMBlock(nn.Module):
    """A Mamba-style block: a gated recurrence run by a Python loop over the sequence."""

    def __init__(self, dim, state, out_dim):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.in_proj = nn.Linear(dim, 2 * state)
        self.decay = nn.Parameter(torch.zeros(state))
        self.out_proj = nn.Linear(state, out_dim)

    def forward(self, x):
        u, gate = self.in_proj(self.norm(x)).chunk(2, dim=-1)
        h = torch.zeros_like(u[:, 0])
        outputs = []
        for t in range(x.shape[1]):
            h = torch.sigmoid(self.decay) * h + u[:, t]
            outputs.append(h)
        y = torch.stack(outputs, dim=1) * torch.sigmoid(gate)
        return x + self.out_proj(y)  # expect: RL001


class Model(nn.Module):
    def __init__(self, out_dim=48):
        super().__init__()
        self.embed = nn.Embedding(100, 32)
        self.layers = nn.ModuleList([SSMBlock(32, 16, 32), SSMBlock(32, 16, out_dim)])
        self.norm = nn.LayerNorm(32)

    def forward(self, tokens):
        x = self.embed(tokens)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)
'''


def test_ssm_python_loop_with_a_residual_width_bug(model_file):
    path = model_file(SSM)
    tokens = torch.zeros(2, 12, dtype=torch.long)
    result = reslint.check(load_file(path, "Model"), tokens).targets[0]
    assert result.frontend == "eager"
    finding, = result.findings
    assert (finding.code, finding.module, finding.line) == ("RL001", "layers.1", expected_lines(path, "RL001")[0])
    assert finding.shapes == {"skip": [2, 12, 32], "transform": [2, 12, 48]}
    assert (finding.fix.kind, finding.fix.code, finding.fix.validated) == ("resize-transform", "nn.Linear(16, 32)", True)
    assert reslint.check(load_file(path, "Model", out_dim=32), tokens).ok


transformers = pytest.importorskip("transformers")


@pytest.mark.parametrize(
    "model_class, config",
    [
        ("GPT2Model", dict(n_layer=2, n_embd=64, n_head=4, vocab_size=128)),
        ("LlamaModel", dict(num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
                            num_key_value_heads=2, vocab_size=128)),
    ],
)
def test_transformers_decoders_from_configs_are_clean(model_class, config):
    model_cls = getattr(transformers, model_class)
    with torch.device("meta"):
        model = model_cls(model_cls.config_class(**config))
    result = reslint.check(model, torch.zeros(2, 16, dtype=torch.long)).targets[0]
    assert result.status == "ok" and result.findings == []
    assert result.frontend == "eager"
    assert result.joins >= 2 * config.get("n_layer", config.get("num_hidden_layers"))


timm = pytest.importorskip("timm")


def timm_model(name, **kwargs):
    from reslint.load import build
    from reslint.target import TargetSpec

    spec = TargetSpec("timm", "create_model", (name,), {"pretrained": False, **kwargs}, text=name)
    return build(timm.create_model, spec, name).module


@pytest.mark.parametrize("name", ["mobilevit_xxs", "efficientvit_b0"])
def test_timm_models_fx_cannot_trace_are_clean(name):
    model = timm_model(name)
    result = reslint.check(model, torch.empty(2, *model.pretrained_cfg["input_size"])).targets[0]
    assert result.frontend == "eager"
    assert result.status == "ok" and result.findings == []


def test_timm_resnet_d_without_its_avgpool_projection():
    model = timm_model("resnet26d")
    model.layer2[0].downsample = None
    finding, = reslint.check(model, torch.empty(2, 3, 224, 224)).findings
    assert (finding.code, finding.module, finding.fix.kind, finding.fix.validated) == ("RL001", "layer2.0", "project-skip", True)
    assert finding.path.endswith("timm/models/resnet.py")


def test_timm_efficientnet_with_a_forced_skip():
    model = timm_model("efficientnet_b0")
    block = model.blocks[1][0]  # 16 -> 24 channels, stride 2
    assert not block.has_skip
    block.has_skip = True
    finding, = reslint.check(model, torch.empty(2, 3, 224, 224)).findings
    assert (finding.code, finding.module) == ("RL001", "blocks.1.0")
    assert finding.fix.validated


def test_tensors_made_in_forward_without_a_device_are_not_errors():
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 8)

        def forward(self, x):
            state = torch.zeros(x.shape[0], 8)  # no device: CPU in eager PyTorch, meta here
            for _ in range(x.shape[1] // 4):
                x = x + self.fc(x)
            return x + state + torch.ones(8)

    result = reslint.check(Model(), torch.randn(2, 8)).targets[0]
    assert result.frontend == "eager" and result.status == "ok", result.findings
    assert any("torch.fx cannot trace it" in note for note in result.notes)


@pytest.mark.parametrize("frontend", ["fx", "eager"])
def test_where_the_analysis_stops_is_said(frontend):
    """A matmul of the wrong width has nothing to stand in for its result: what comes after it is not
    checked, and the result says so (a clean verdict there would be a false promise)."""

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.query = nn.Linear(8, 6)
            self.key = nn.Linear(8, 4)
            self.fc = nn.Linear(5, 5)
            self.shortcut = nn.Linear(5, 3)  # a broken join after the stop: not checked

        def forward(self, x):
            scores = self.query(x) @ self.key(x).transpose(1, 2)
            return self.fc(scores) + self.shortcut(scores)

    result = reslint.check(Model(), torch.randn(2, 5, 8), frontend=frontend).targets[0]
    assert [f.code for f in result.findings] == ["RL000"]
    stops = [note for note in result.incomplete if note.startswith("shapes are unknown after")]
    assert result.status == "findings" and result.incomplete  # says both
    assert len(stops) == 1 and "test_eager.py" in stops[0], result.incomplete
