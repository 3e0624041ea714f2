"""Data-dependent forwards do not stop the analysis: the meta run goes on with stated assumptions.

Each model below has a data-dependent point (a branch on a value, `.item()`, `nonzero`, a boolean
mask, a MoE router, ...) and, after it, a residual add that is broken (8 vs 16 wide) unless the model
is built with `broken=False`. The broken one must give RL001 at the `# expect: RL001` line under every
frontend that can trace it; the fixed one must be clean and complete (every join checked), with a
note that says what was assumed.
"""

import importlib.util
import inspect

import pytest
import torch
from torch import nn

import reslint

MODELS = '''
import torch
from torch import nn
import torch.nn.functional as F
from torch import nn


class Base(nn.Module):
    """A width-8 model whose last residual add is broken (8 vs 16) when `broken`."""

    def __init__(self, broken=True):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.up = nn.Linear(8, 16 if broken else 8)


class Branch(Base):
    def forward(self, x):
        if x.sum() > 0:
            x = self.fc(x)
        else:
            x = -x
        return x + self.up(x)  # expect: RL001


class Item(Base):
    def forward(self, x):
        scale = x.abs().max().item()
        h = self.fc(x) / scale
        return h + self.up(h)  # expect: RL001


class ToList(Base):
    def forward(self, x):
        winners = x.argmax(-1).flatten().tolist()
        h = self.fc(x) * len(winners)
        return h + self.up(h)  # expect: RL001


class IntFloat(Base):
    def __init__(self, broken=True):
        super().__init__(broken)
        self.register_buffer("steps", torch.tensor(2))
        self.register_buffer("temperature", torch.tensor(0.5))

    def forward(self, x):
        for _ in range(int(self.steps)):
            x = x + self.fc(x) / float(self.temperature)
        return x + self.up(x)  # expect: RL001


class Nonzero(Base):
    def forward(self, x):
        rows = (x.sum(-1) > 0).nonzero()
        h = self.fc(x[rows[:, 0], rows[:, 1]])
        return h + self.up(h)  # expect: RL001


class NonzeroTuple(Base):
    def forward(self, x):
        batch, time = torch.nonzero(x.sum(-1) > 0, as_tuple=True)
        h = self.fc(x[batch, time])
        return h + self.up(h)  # expect: RL001


class WhereMask(Base):
    def forward(self, x):
        batch, time = torch.where(x.norm(dim=-1) > 1)
        h = self.fc(x[batch, time])
        return h + self.up(h)  # expect: RL001


class ArgWhere(Base):
    def forward(self, x):
        where = torch.argwhere(x.mean(-1) > 0)
        h = self.fc(x[where[:, 0], where[:, 1]])
        return h + self.up(h)  # expect: RL001


class Unique(Base):
    def __init__(self, broken=True):
        super().__init__(broken)
        self.table = nn.Embedding(8, 8)

    def forward(self, x):
        ids = torch.unique(x.argmax(-1))
        h = self.fc(self.table(ids))
        return h + self.up(h)  # expect: RL001


class MaskedSelect(Base):
    def forward(self, x):
        keep = (x.sum(-1, keepdim=True) > 0).expand_as(x)
        h = self.fc(x.masked_select(keep).view(-1, 8))
        return h + self.up(h)  # expect: RL001


class MaskIndex(Base):
    def forward(self, x):
        h = self.fc(x[x.sum(-1) > 0])
        return h + self.up(h)  # expect: RL001


class MaskAssign(Base):
    def forward(self, x):
        mask = x.sum(-1) > 0
        out = x.clone()
        out[mask] = self.fc(x[mask])
        return out + self.up(out)  # expect: RL001


class BinCount(Base):
    def forward(self, x):
        counts = torch.bincount(x.argmax(-1).flatten(), minlength=8)
        h = self.fc(x) * counts.float()
        return h + self.up(h)  # expect: RL001


class RepeatInterleave(Base):
    def forward(self, x):
        repeats = x.argmax(-1).flatten() % 2 + 1
        h = self.fc(x.flatten(0, 1).repeat_interleave(repeats, dim=0))
        return h + self.up(h)  # expect: RL001


class AssertFinite(Base):
    def forward(self, x):
        assert torch.isfinite(x).all(), "non-finite input"
        assert not torch.isnan(x).any()
        h = self.fc(x)
        return h + self.up(h)  # expect: RL001


class Equal(Base):
    def forward(self, x):
        h = self.fc(x)
        if torch.equal(h, x):
            h = h * 2
        return h + self.up(h)  # expect: RL001


class ToDevice(Base):
    def __init__(self, broken=True):
        super().__init__(broken)
        self.bias = torch.zeros(8)  # a plain attribute, not a buffer

    def forward(self, x):
        h = self.fc(x) + self.bias.to(x.device) + torch.ones(8).to(x.device)
        return h + self.up(h)  # expect: RL001


class LayerInForward(Base):
    def forward(self, x):
        norm = nn.LayerNorm(x.shape[-1]).to(x.device)
        h = self.fc(norm(x))
        return h + self.up(h)  # expect: RL001


class Expert(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden)
        self.w2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)))


class TopKMoE(nn.Module):
    """Mixtral-style sparse MoE: top-k routing, one_hot, where, index_add_, then a residual."""

    def __init__(self, broken=True, dim=8, experts=4, top_k=2):
        super().__init__()
        self.top_k, self.experts_count = top_k, experts
        self.gate = nn.Linear(dim, experts, bias=False)
        self.experts = nn.ModuleList(Expert(dim, 12) for _ in range(experts))
        self.up = nn.Linear(dim, 16 if broken else dim)

    def forward(self, x):
        batch, seq, dim = x.shape
        tokens = x.view(-1, dim)
        weights = F.softmax(self.gate(tokens), dim=1, dtype=torch.float)
        weights, chosen = torch.topk(weights, self.top_k, dim=-1)
        weights /= weights.sum(dim=-1, keepdim=True)
        final = torch.zeros((batch * seq, dim), dtype=x.dtype, device=x.device)
        expert_mask = F.one_hot(chosen, num_classes=self.experts_count).permute(2, 1, 0)
        expert_hit = torch.greater(expert_mask.sum(dim=(-1, -2)), 0).nonzero()
        for expert_index in expert_hit:
            expert = self.experts[expert_index]
            slot, token = torch.where(expert_mask[expert_index].squeeze(0))
            state = tokens[None, token].reshape(-1, dim)
            out = expert(state) * weights[token, slot, None]
            final.index_add_(0, token, out.to(x.dtype))
        h = final.view(batch, seq, dim)
        return h + self.up(h)  # expect: RL001


class SwitchRouter(nn.Module):
    """Switch-style top-1 routing: argmax, one_hot, boolean masks per expert, then a residual."""

    def __init__(self, broken=True, dim=8, experts=4):
        super().__init__()
        self.router = nn.Linear(dim, experts)
        self.experts = nn.ModuleList(Expert(dim, 12) for _ in range(experts))
        self.up = nn.Linear(dim, 16 if broken else dim)

    def forward(self, x):
        probs = F.softmax(self.router(x), dim=-1)
        route = F.one_hot(torch.argmax(probs, dim=-1), num_classes=len(self.experts))
        out = x.clone()
        for index, expert in enumerate(self.experts):
            chosen = route[:, :, index].bool()
            out[chosen] = expert(x[chosen]).to(out.dtype)
        h = out * probs.max(dim=-1, keepdim=True).values
        return h + self.up(h)  # expect: RL001
'''

EAGER_ONLY = [  # torch.fx cannot trace these (a branch, int(), a loop over a tensor, x[mask] = v)
    "Branch", "ToList", "IntFloat", "AssertFinite", "Equal", "MaskAssign", "LayerInForward", "TopKMoE", "SwitchRouter",
]
BOTH = ["Item", "Nonzero", "NonzeroTuple", "WhereMask", "ArgWhere", "Unique", "MaskedSelect", "MaskIndex", "BinCount", "RepeatInterleave", "ToDevice"]
CASES = [(name, "eager") for name in EAGER_ONLY + BOTH] + [(name, "fx") for name in BOTH]
NO_ASSUMPTION = {"ToDevice", "LayerInForward"}  # nothing data-dependent: nothing to assume


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    path = tmp_path_factory.mktemp("data_dependent") / "dd_models.py"
    path.write_text(MODELS)
    spec = importlib.util.spec_from_file_location("dd_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def expected_line(cls) -> int:
    lines, start = inspect.getsourcelines(cls.forward)
    return next(start + i for i, line in enumerate(lines) if "# expect: RL001" in line)


def check(model, frontend):
    return reslint.check(model, torch.randn(2, 5, 8), frontend=frontend).targets[0]


@pytest.mark.parametrize("name, frontend", CASES)
def test_a_bug_after_a_data_dependent_point_is_found(models, name, frontend):
    cls = getattr(models, name)
    result = check(cls(broken=True), frontend)
    assert result.frontend == frontend
    assert [(f.code, f.line) for f in result.findings] == [("RL001", expected_line(cls))], result.incomplete
    assert not result.incomplete


@pytest.mark.parametrize("name, frontend", CASES)
def test_the_fixed_model_is_clean_and_complete(models, name, frontend):
    result = check(getattr(models, name)(broken=False), frontend)
    assert (result.status, result.findings, result.incomplete) == ("ok", [], [])
    assumed = [note for note in result.notes if note.startswith("assumed: ")]
    assert bool(assumed) == (name not in NO_ASSUMPTION), result.notes
    assert len({note.split(" at ")[1].split(" ")[0] for note in assumed}) == len(assumed)  # one per line


def test_a_branch_on_a_value_says_which_side_was_taken(models):
    cls = models.AssertFinite
    result = check(cls(broken=False), "eager")
    start = inspect.getsourcelines(cls.forward)[1]
    notes = [note for note in result.notes if note.startswith("assumed: ")]
    # `assert torch.isfinite(x).all()` holds when taken as True; `assert not torch.isnan(x).any()` made
    # the model raise with True, so it was recorded again with False.
    assert any(f":{start + 1} taken as True" in note for note in notes), notes
    assert any(f":{start + 2} taken as False" in note for note in notes), notes


@pytest.mark.parametrize("name", ["TopKMoE", "SwitchRouter"])
def test_a_router_sends_tokens_to_every_expert(models, name):
    from reslint.load import meta_copy
    from reslint.trace import trace

    traced = trace(meta_copy(getattr(models, name)(broken=False)), (torch.empty(2, 5, 8, device="meta"),), "eager")
    called = {node.target.split(".")[1] for node in traced.propagation.graph.nodes if node.op == "call_module" and node.target.startswith("experts.")}
    assert called == {"0", "1", "2", "3"}


def test_a_broken_expert_is_found(models):
    """Every expert's code runs: a bug in the third expert's residual is reported there."""

    class Residual(torch.nn.Module):
        def __init__(self, width):
            super().__init__()
            self.fc = torch.nn.Linear(8, width)

        def forward(self, x):
            return x + self.fc(x)  # expect: RL001

    model = models.TopKMoE(broken=False)
    model.experts[2] = Residual(16)
    for index in (0, 1, 3):
        model.experts[index] = Residual(8)
    result = check(model, "eager")
    assert [(f.code, f.line, f.module) for f in result.findings] == [("RL001", expected_line(Residual), "experts.2")]


class _NamesADevice(nn.Module):
    """A forward that makes tensors on a named device (`self.device`), as diffusion U-Nets do for time embeddings."""

    def __init__(self, device="cuda"):
        super().__init__()
        self.device = device
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.emb = nn.Linear(16, 8)

    def forward(self, x, t):
        freqs = torch.arange(0, 16, 2, device=self.device).float()
        e = self.emb(torch.cat([torch.sin(t[:, None] * freqs), torch.cos(t[:, None] * freqs)], dim=-1)).to(self.device)
        h = self.conv(x) + e[:, :, None, None]
        return self.conv2(h) + h  # the planted bug: 8 -> 16 channels without a projection


@pytest.mark.parametrize("device", ["cuda", "cpu", "cuda:0"])
def test_devices_named_in_forward_run_on_meta(device):
    result = reslint.check(_NamesADevice(device), torch.empty(2, 3, 16, 16), torch.empty(2)).targets[0]
    assert [f.code for f in result.findings] == ["RL001"], result.findings
    assert not result.incomplete
