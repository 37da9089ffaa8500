"""Digits-family networks (1x28x28 -> 10): scaled-down AlexNet, VGG and ResNet that keep each design's ideas.

What each keeps and changes (the originals take 3x224x224 and have 61M / 138M / 11.7M parameters):

* AlexNetDigits (Krizhevsky et al. 2012): five conv layers then three fully connected layers; a large
  first kernel; ReLU; local response normalisation after the first two convs; *overlapping* 3x3/stride-2
  max pooling; dropout in the classifier. Changed: 5x5 stride-1 first kernel instead of 11x11 stride 4
  (the input is 28 px, not 224), channel widths /6 or so, FC width 256 instead of 4096.
* VGGDigits (Simonyan & Zisserman 2014): only 3x3 convs stacked in stages, each stage closed by 2x2 max
  pooling, widths doubling per stage, defined by a config table like torchvision's `cfgs` + `make_layers`;
  a dropout FC classifier. Changed: three stages instead of five, widths 32-64-128, BatchNorm after each
  conv (as torchvision's vgg*_bn) so it trains in seconds, FC width 256. The table is VGG-11's ("A")
  first three stages at half width: one conv, one conv, then two stacked convs.
* ResNetDigits (He et al. 2015): BasicBlocks (two 3x3 convs + BN) with identity shortcuts and a 1x1
  projection where the shape changes, stages that halve resolution and double width, global average
  pooling and one linear layer. Changed: a 16-channel 3x3 stem without max pool (28 px input; ResNet-18
  uses 7x7 stride 2 + pool), three stages of widths 32-64-128 with one block each, every stage strided
  (ResNet-18 has four stages of two blocks).

StudentCNN is no famous design: the small student that distillation trains (training/compression/distill.py) and the
ensembles' default member (training/ensembles/ensemble.py).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class LocalResponseNorm(nn.LocalResponseNorm):
    """nn.LocalResponseNorm computed with a cumulative sum over channels: same numbers, ~2x faster on CPU.

    torch's version pads and runs avg_pool3d; on 2 CPU cores that made LRN half of AlexNetDigits' step time.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, H, W)
        sq = F.pad(x.pow(2), (0, 0, 0, 0, self.size // 2 + 1, (self.size - 1) // 2))
        cs = sq.cumsum(1)
        window = cs[:, self.size:] - cs[:, :-self.size]       # sum of squares over `size` neighbours
        return x / (self.k + self.alpha / self.size * window).pow(self.beta)


class AlexNetDigits(nn.Module):
    """AlexNet's ideas at 28x28: 5 convs (LRN, overlapping pooling) + 3 dropout FC layers. 0.38M params."""

    def __init__(self, num_classes: int = 10, dropout: float = 0.3):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, kernel_size=5, padding=2), nn.ReLU(inplace=True),      # (B, 32, 28, 28)
            nn.MaxPool2d(kernel_size=3, stride=2),                                   # (B, 32, 13, 13)
            LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0),
            nn.Conv2d(32, 64, kernel_size=5, padding=2), nn.ReLU(inplace=True),      # (B, 64, 13, 13)
            nn.MaxPool2d(kernel_size=3, stride=2),                                   # (B, 64, 6, 6)
            LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0),
            nn.Conv2d(64, 96, kernel_size=3, padding=1), nn.ReLU(inplace=True),      # (B, 96, 6, 6)
            nn.Conv2d(96, 96, kernel_size=3, padding=1), nn.ReLU(inplace=True),      # (B, 96, 6, 6)
            nn.Conv2d(96, 64, kernel_size=3, padding=1), nn.ReLU(inplace=True),      # (B, 64, 6, 6)
            nn.MaxPool2d(kernel_size=3, stride=2),                                   # (B, 64, 2, 2)
        )
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(64 * 2 * 2, 256), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(256, 256), nn.ReLU(inplace=True),
            nn.Linear(256, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 1, 28, 28)
        x = self.features(x)                                # (B, 64, 2, 2)
        x = torch.flatten(x, 1)                             # (B, 256)
        return self.classifier(x)                           # (B, 10)


# VGG-style config table (torchvision vgg.py `cfgs`): ints are 3x3 conv widths, "M" is 2x2 max pooling.
VGG_DIGITS_CFG: list[int | str] = [32, "M", 64, "M", 128, 128, "M"]  # VGG-11 ("A") stages 1-3, widths /2


def make_layers(cfg: list[int | str], in_channels: int = 1, batch_norm: bool = True) -> nn.Sequential:
    """torchvision's make_layers: a VGG feature extractor from a config table."""
    layers: list[nn.Module] = []
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers.append(nn.Conv2d(in_channels, int(v), kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(int(v)))
            layers.append(nn.ReLU(inplace=True))
            in_channels = int(v)
    return nn.Sequential(*layers)


class VGGDigits(nn.Module):
    """VGG's ideas at 28x28: stacked 3x3 conv stages from a cfg table + dropout FC classifier. 0.54M params."""

    def __init__(self, num_classes: int = 10, cfg: list[int | str] | None = None, dropout: float = 0.3):
        super().__init__()
        self.features = make_layers(cfg or VGG_DIGITS_CFG)  # (B, 128, 3, 3) for the default cfg
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(128 * 3 * 3, 256), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(256, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 1, 28, 28)
        x = self.features(x)                                # (B, 128, 3, 3)
        x = torch.flatten(x, 1)                             # (B, 1152)
        return self.classifier(x)                           # (B, 10)


class BasicBlock(nn.Module):
    """ResNet's basic block: conv-bn-relu-conv-bn plus a shortcut (1x1 projection when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)  # the residual connection


class ResNetDigits(nn.Module):
    """ResNet's ideas at 28x28: 3x3 stem, three strided stages of BasicBlocks (32-64-128), GAP, linear. 0.30M params."""

    def __init__(self, num_classes: int = 10, stem: int = 16, widths: tuple[int, ...] = (32, 64, 128), blocks: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(1, stem, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        stages, cin = [], stem
        for w in widths:
            stage = [BasicBlock(cin, w, stride=2)] + [BasicBlock(w, w) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*stage))
            cin = w
        self.layer1, self.layer2, self.layer3 = stages  # torchvision's names, so tools find them
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 1, 28, 28)
        x = self.relu(self.bn1(self.conv1(x)))              # (B, 16, 28, 28)
        x = self.layer1(x)                                  # (B, 32, 14, 14)
        x = self.layer2(x)                                  # (B, 64, 7, 7)
        x = self.layer3(x)                                  # (B, 128, 4, 4)
        x = torch.flatten(self.avgpool(x), 1)               # (B, 128)
        return self.fc(x)                                   # (B, 10)


class StudentCNN(nn.Module):
    """A small student: three conv-BN-ReLU-pool stages (16-32-64) and one linear layer. ~29k params,
    about a tenth of ResNetDigits'."""

    def __init__(self, num_classes: int = 10, widths: tuple[int, int, int] = (16, 32, 64)):
        super().__init__()
        layers, cin = [], 1
        for w in widths:
            layers += [nn.Conv2d(cin, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            cin = w
        self.features = nn.Sequential(*layers)            # (B, 64, 3, 3)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(widths[-1] * 9, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 1, 28, 28)
        return self.classifier(self.features(x))          # (B, 10)
