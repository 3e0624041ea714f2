"""The trace's shortcuts (meta ops memoized, the recorder's values reused by the first propagation)
give exactly what running every op gives: same node shapes, same failures, same findings."""

import pytest
import torch
from torch import nn

from reslint.analyze import analyze_model
from reslint.trace import meta_memo, trace
from reslint.trace.meta_memo import MetaMemo
from reslint.trace.propagate import Propagation


class Layer(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.up = nn.Linear(width, 2 * width)
        self.down = nn.Linear(2 * width, width)

    def forward(self, x):
        return x + self.down(torch.nn.functional.gelu(self.up(self.norm(x))))


class Stack(nn.Module):
    """Identical layers, a loop fx cannot trace, a view, a cat and an in-place add."""

    def __init__(self, width=8, depth=4):
        super().__init__()
        self.layers = nn.ModuleList(Layer(width) for _ in range(depth))

    def forward(self, x):
        for layer in self.layers:
            if x.shape[0] > 0:
                x = layer(x)
        y = x.view(x.shape[0], -1, 2).flatten(1)
        y += x
        return torch.cat([y, x], dim=-1)


class Broken(nn.Module):
    """Two identical broken joins: the memo must not answer a failing call."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(8, 6)
        self.b = nn.Linear(8, 6)

    def forward(self, x):
        x = x + self.a(x)  # expect: RL001
        return x + self.b(x)


class Resizing(nn.Module):
    """An in-place op that changes a tensor's shape after it was used: the recording is not reused."""

    def forward(self, x):
        y = x * 2
        z = y + 1
        y.resize_(2, 4)
        w = y.sum(0)
        return z, w


class Routed(nn.Module):
    """Representative values (topk indices) and an index op sized on them."""

    def __init__(self):
        super().__init__()
        self.gate = nn.Linear(8, 4)

    def forward(self, x):
        top = self.gate(x).topk(2, dim=-1).indices
        picked = (top == 1).nonzero()
        return x[picked[:, 0]] + 1


def plain_trace(model, inputs, frontend):
    """The trace with every op run: no memo hits, no reuse."""
    original = MetaMemo.call
    MetaMemo.call = lambda self, func, args, kwargs: func(*args, **kwargs)
    try:
        traced = trace(model, inputs, frontend)
    finally:
        MetaMemo.call = original
    return traced


def shapes(propagation: Propagation):
    out = []
    for node in propagation.nodes:
        value = propagation.values.get(node)
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        failure = propagation.failures.get(node)
        out.append((node.name, shape, failure.message if failure else None, len(failure.candidates) if failure else 0))
    return out


MODELS = [
    (Stack, (torch.empty(3, 8),)),
    (Broken, (torch.empty(3, 8),)),
    (Resizing, (torch.empty(8),)),
    (Routed, (torch.empty(6, 8),)),
]


@pytest.mark.parametrize("make, inputs", MODELS, ids=[m.__name__ for m, _ in MODELS])
@pytest.mark.parametrize("frontend", ["eager", "auto"])
def test_same_values_as_running_every_op(make, inputs, frontend):
    torch.manual_seed(0)
    with torch.device("meta"):
        model = make()
    inputs = tuple(t.to("meta") for t in inputs)
    fast = trace(model, inputs, frontend)
    plain = plain_trace(model, inputs, frontend)
    assert shapes(fast.propagation) == shapes(plain.propagation)
    assert fast.assumptions == plain.assumptions


def test_identical_layers_hit_the_memo():
    with torch.device("meta"):
        model = Stack(depth=6)
    traced = trace(model, (torch.empty(3, 8, device="meta"),), "eager")
    assert traced.propagation.memo.hits >= 5 * 3  # norm, up, down of every layer after the first


def test_findings_unchanged_on_a_broken_model():
    with torch.device("meta"):
        model = Broken()
    inputs = (torch.empty(3, 8, device="meta"),)
    fast = analyze_model(model, inputs, "Broken", frontend="eager")
    original = MetaMemo.call
    MetaMemo.call = lambda self, func, args, kwargs: func(*args, **kwargs)
    try:
        plain = analyze_model(model, inputs, "Broken", frontend="eager")
    finally:
        MetaMemo.call = original
    assert [(f.code, f.line) for f in fast.findings] == [(f.code, f.line) for f in plain.findings]
    assert fast.findings and fast.status == plain.status == "findings"


def test_memo_never_answers_views_inplace_or_cpu_operands():
    memo = MetaMemo()
    x = torch.empty(4, 6, device="meta")
    for _ in range(2):
        assert memo.call(torch.Tensor.view, (x, 24), {})._is_view()
        assert memo.call(torch.Tensor.add_, (x, 1), {}) is x
        memo.call(torch.add, (x, torch.tensor(2.0)), {})  # a CPU operand: its values could size a result
        assert memo.call(torch.Tensor.contiguous, (x,), {}) is x
    assert memo.hits == 0
    first = memo.call(torch.mul, (x, 2.0), {})
    second = memo.call(torch.mul, (x, 2.0), {})
    assert memo.hits == 1 and second is not first and second.shape == first.shape and second.stride() == first.stride()
    assert memo.call(torch.mul, (x, 2), {}).dtype == first.dtype  # int and float constants are keyed apart
    assert memo.hits == 1
    assert not meta_memo.is_torch_function(lambda t: t)  # the model's own functions are never memoized


def test_first_propagation_takes_the_recorded_values(monkeypatch):
    ran = []
    original = Propagation._evaluate

    def evaluate(self, node, *args, **kwargs):
        ran.append(node.op)
        return original(self, node, *args, **kwargs)

    monkeypatch.setattr(Propagation, "_evaluate", evaluate)
    with torch.device("meta"):
        model = Stack()
    trace(model, (torch.empty(3, 8, device="meta"),), "eager")
    assert ran and not [op for op in ran if op.startswith("call_")]
    ran.clear()
    with torch.device("meta"):
        model = Resizing()
    trace(model, (torch.empty(8, device="meta"),), "eager")  # resized after use: every op runs again
    assert [op for op in ran if op.startswith("call_")]
