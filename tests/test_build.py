"""Building models whose constructors read tensor values, and the API's meta twin of a live model."""

import json
import threading

import torch
from torch import nn

import reslint
from reslint.errors import TargetError
from reslint.materialize import reading_weights

READS_ONE_WEIGHT = """
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.huge = nn.Linear(1_000_000, 1_000_000, bias=False)  # 4 TB on the CPU: nothing reads it
        self.proj = nn.Linear(16, 16)
        nn.init.normal_(self.proj.weight, std=0.02)
        self.scale = float(self.proj.weight.abs().max())
        self.fc = nn.Linear(16, 32)

    def forward(self, x):
        return self.fc(x) + self.proj(x) * self.scale  # expect: RL001

class ReadsHuge(nn.Module):
    def __init__(self):
        super().__init__()
        self.huge = nn.Linear(1_000_000, 1_000_000, bias=False)
        self.total = float(self.huge.weight.sum())

    def forward(self, x):
        return x
"""


def test_only_the_weights_a_constructor_reads_are_made_real(model_file, cli):
    path = model_file(READS_ONE_WEIGHT)
    run = cli(f"{path}:Net", f"{path}:ReadsHuge", "--input", "2,16", "--format", "json")
    report = json.loads(run.stdout)
    net, huge = report["targets"]
    assert net["status"] == "findings" and [f["code"] for f in report["findings"]] == ["RL001"]
    assert any("making real" in note and "Linear.weight" in note for note in net["notes"]), net["notes"]
    # Reading a 4 TB weight is refused in one line, not attempted.
    assert huge["status"] == "error" and "--max-build-memory" in huge["error"] and "\n" not in huge["error"]
    assert run.returncode == 1


def test_weight_values_replay_their_initialization():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(64, 64)
            nn.init.constant_(self.proj.weight, 0.5)
            self.scale = float(self.proj.weight.max())
            self.rates = torch.linspace(0, 0.3, 4).tolist()

    with reading_weights(1 << 30) as lazy:
        net = Net()
    assert net.scale == 0.5 and net.rates == torch.linspace(0, 0.3, 4).tolist()
    assert len(lazy.made_real) == 1


def test_reading_past_the_budget_stops_the_build():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.big = nn.Linear(1024, 1024)
            self.total = float(self.big.weight.sum())

    try:
        with reading_weights(1 << 20):
            Net()
    except TargetError as error:
        assert "--max-build-memory" in str(error)
    else:
        raise AssertionError("a 4 MB read under a 1 MB budget must stop the build")


def test_check_works_on_models_that_cannot_be_deep_copied():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.lock = threading.Lock()  # cannot be pickled or deep-copied
            self.fc = nn.Linear(8, 16)

        def forward(self, x):
            return x + self.fc(x)

    model = nn.Sequential(Block(), Block()).train()
    report = reslint.check(model, torch.randn(2, 8))
    assert [f.code for f in report.findings] == ["RL001"]  # one source line, two instances
    assert len(report.findings[0].instances) == 2
    # The user's model is untouched: still on the CPU, still training, same lock.
    assert model.training and model[0].fc.weight.device.type == "cpu" and isinstance(model[0].lock, type(threading.Lock()))


PRETRAINED = """
import torchvision
from torch import nn

class Perceptual(nn.Module):
    def __init__(self):
        super().__init__()
        vgg = torchvision.models.vgg11(weights=torchvision.models.VGG11_Weights.IMAGENET1K_V1)
        self.features = vgg.features[:5]
        self.conv = nn.Conv2d(128, 256, 3, padding=1)

    def forward(self, x):
        h = self.features(x)
        return h + self.conv(h)  # expect: RL001
"""


def test_pretrained_weights_are_not_downloaded(model_file, cli):
    path = model_file(PRETRAINED)
    run = cli(f"{path}:Perceptual", "--input", "2,3,32,32", "--format", "json")
    report = json.loads(run.stdout)
    assert [f["code"] for f in report["findings"]] == ["RL001"], run.stderr
    assert any("not downloaded" in note and "vgg11" in note for note in report["targets"][0]["notes"])
