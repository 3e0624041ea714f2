"""Why skips matter: a 20-layer plain CNN against a 20-layer ResNet on scikit-learn's digits.

Trains both on CPU for a few minutes, then writes docs/plain_vs_resnet.png with the per-layer gradient
norms at initialisation and both training-loss curves, and lints both with reslint: the plain network
gets RL005, the ResNet passes.

    pip install -e '.[examples]' && python examples/plain_vs_resnet.py
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.nn.functional as F
from torch import nn

import reslint

WIDTH = 32


def conv_bn(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels)]


class PlainNet(nn.Module):
    """20 weighted layers: a stem conv, 18 convs, a linear head. No skip."""

    def __init__(self, depth: int = 20):
        super().__init__()
        layers = [*conv_bn(1, WIDTH), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [*conv_bn(WIDTH, WIDTH), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(WIDTH, 10)

    def forward(self, x):
        return self.head(self.body(x).mean(dim=(2, 3)))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(*conv_bn(WIDTH, WIDTH), nn.ReLU(), *conv_bn(WIDTH, WIDTH))

    def forward(self, x):
        return F.relu(x + self.body(x))


class ResNet(nn.Module):
    """The same 20 weighted layers, with the 18 middle convs in 9 residual blocks."""

    def __init__(self, depth: int = 20):
        super().__init__()
        self.stem = nn.Sequential(*conv_bn(1, WIDTH), nn.ReLU())
        self.blocks = nn.Sequential(*[Block() for _ in range((depth - 2) // 2)])
        self.head = nn.Linear(WIDTH, 10)

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    return (images - images.mean()) / images.std(), torch.tensor(data.target)


def gradient_norms(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """The gradient norm of each weighted layer's weight for one batch at initialisation, input to output."""
    model.zero_grad()
    F.cross_entropy(model(images), labels).backward()
    return [m.weight.grad.norm().item() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def train(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, epochs: int) -> list[float]:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    losses = []
    for _ in range(epochs):
        order = torch.randperm(len(images))
        for start in range(0, len(images), 64):
            batch = order[start : start + 64]
            loss = F.cross_entropy(model(images[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return losses


def plot(norms: dict[str, list[float]], losses: dict[str, list[float]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name, values in norms.items():
        left.semilogy(range(1, len(values) + 1), values, marker="o", label=name)
    left.set(title="Gradient norm per layer at initialisation", xlabel="weighted layer (input → output)", ylabel="‖∇W‖")
    for name, values in losses.items():
        smooth = torch.tensor(values).unfold(0, 10, 1).mean(1)
        right.plot(smooth, label=name)
    right.set(title="Training loss (digits, 10-step mean)", xlabel="step", ylabel="cross-entropy", yscale="log")
    for axis in (left, right):
        axis.legend()
        axis.grid(alpha=0.3)
    figure.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "docs", "plain_vs_resnet.png"))
    args = parser.parse_args()
    torch.manual_seed(0)
    images, labels = digits()
    models = {"plain-20": PlainNet(), "resnet-20": ResNet()}
    for name, model in models.items():
        findings = reslint.check(model, images[:2]).findings
        print(f"reslint {name}: {[f.code for f in findings] or 'no findings'}")
    norms = {name: gradient_norms(model, images[:256], labels[:256]) for name, model in models.items()}
    losses = {}
    for name, model in models.items():
        losses[name] = train(model, images, labels, args.epochs)
        print(f"{name}: final training loss {sum(losses[name][-20:]) / 20:.4f}")
    plot(norms, losses, os.path.abspath(args.out))
    print(f"wrote {os.path.abspath(args.out)}")


if __name__ == "__main__":
    main()
