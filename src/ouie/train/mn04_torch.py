"""EfficientAT MobileNetV3 ``mn04_as`` rebuilt in torch, so the released state_dict loads strictly.

Only for the ``train`` extra (model import/export, distillation): the node runs the exported
ONNX file on onnxruntime and never imports torch.

Layout (``../shared/models/README.md``, Schmid et al. 2022, MIT): MobileNetV3-Large at width
0.4 on a 1-channel log-mel "image" ``[batch, 1, 128, frames]``. Module names match the
upstream ones exactly (``features.N.block.M...``, ``conc_se_layers.0.fc1``, ``classifier.5``),
which is what makes ``load_state_dict(strict=True)`` work:

- ``features.0``: conv 3×3 stride 2, BN, Hardswish;
- ``features.1``–``features.15``: inverted residuals (expand 1×1 → depthwise k×k → SE →
  project 1×1), residual add when stride 1 and in == out;
- ``features.16``: conv 1×1 to 6× the last block's channels, BN, Hardswish;
- ``classifier``: average pool, flatten, Linear → Hardswish → Dropout → Linear (527 logits).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

N_CLASSES = 527
N_MELS = 128
WIDTH_MULT = 0.4
BN_EPS = 0.001
BN_MOMENTUM = 0.01
SE_REDUCTION = 4


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round channels to the nearest multiple of ``divisor``, never below 90 % of ``value``."""
    floor = divisor if min_value is None else min_value
    rounded = max(floor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


@dataclass(frozen=True)
class BlockConfig:
    """One inverted-residual block, channels before the width multiplier."""

    input_channels: int
    kernel: int
    expanded_channels: int
    out_channels: int
    use_se: bool
    use_hs: bool
    stride: int

    def scaled(self, width_mult: float) -> BlockConfig:
        return BlockConfig(
            make_divisible(self.input_channels * width_mult),
            self.kernel,
            make_divisible(self.expanded_channels * width_mult),
            make_divisible(self.out_channels * width_mult),
            self.use_se,
            self.use_hs,
            self.stride,
        )


#: MobileNetV3-Large: (in, kernel, expanded, out, SE, hardswish, stride).
MOBILENET_V3_LARGE: tuple[BlockConfig, ...] = tuple(
    BlockConfig(*row)
    for row in (
        (16, 3, 16, 16, False, False, 1),
        (16, 3, 64, 24, False, False, 2),
        (24, 3, 72, 24, False, False, 1),
        (24, 5, 72, 40, True, False, 2),
        (40, 5, 120, 40, True, False, 1),
        (40, 5, 120, 40, True, False, 1),
        (40, 3, 240, 80, False, True, 2),
        (80, 3, 200, 80, False, True, 1),
        (80, 3, 184, 80, False, True, 1),
        (80, 3, 184, 80, False, True, 1),
        (80, 3, 480, 112, True, True, 1),
        (112, 3, 672, 112, True, True, 1),
        (112, 5, 672, 160, True, True, 2),
        (160, 5, 960, 160, True, True, 1),
        (160, 5, 960, 160, True, True, 1),
    )
)
LAST_CHANNEL = 1280  # width of the head's hidden layer before the multiplier


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class ConvNormActivation(nn.Sequential):
    """Conv2d (no bias) → BatchNorm → optional activation; children named 0, 1, 2."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        activation: type[nn.Module] | None = None,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=(kernel_size - 1) // 2,
                groups=groups,
                bias=False,
            ),
            _batch_norm(out_channels),
        ]
        if activation is not None:
            layers.append(activation())
        super().__init__(*layers)


class SqueezeExcitation(nn.Module):
    """Channel squeeze-excitation: mean over frequency and time, two linears, sigmoid gate."""

    def __init__(self, channels: int, squeeze_channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, squeeze_channels)
        self.fc2 = nn.Linear(squeeze_channels, channels)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squeezed = x.mean(dim=(2, 3))
        scale: torch.Tensor = self.scale_activation(self.fc2(self.activation(self.fc1(squeezed))))
        return x * scale[:, :, None, None]


class ConcurrentSEBlock(nn.Module):
    """EfficientAT's SE container; mn04 uses the channel SE only, so max-aggregation of one
    branch is the identity and is left out."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        squeeze = make_divisible(channels // SE_REDUCTION, 8)
        self.conc_se_layers = nn.ModuleList([SqueezeExcitation(channels, squeeze)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.conc_se_layers[0](x)
        return out


class InvertedResidual(nn.Module):
    def __init__(self, config: BlockConfig) -> None:
        super().__init__()
        if config.stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, not {config.stride}")
        self.use_res_connect = config.stride == 1 and config.input_channels == config.out_channels
        activation: type[nn.Module] = nn.Hardswish if config.use_hs else nn.ReLU
        layers: list[nn.Module] = []
        if config.expanded_channels != config.input_channels:
            layers.append(
                ConvNormActivation(
                    config.input_channels, config.expanded_channels, 1, activation=activation
                )
            )
        layers.append(
            ConvNormActivation(
                config.expanded_channels,
                config.expanded_channels,
                config.kernel,
                stride=config.stride,
                groups=config.expanded_channels,
                activation=activation,
            )
        )
        if config.use_se:
            layers.append(ConcurrentSEBlock(config.expanded_channels))
        layers.append(ConvNormActivation(config.expanded_channels, config.out_channels, 1))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.block(x)
        return out + x if self.use_res_connect else out


class MN(nn.Module):
    """EfficientAT MobileNetV3 ("MN"): log-mel ``[batch, 1, 128, frames]`` → logits
    ``[batch, 527]``."""

    def __init__(
        self,
        width_mult: float = WIDTH_MULT,
        num_classes: int = N_CLASSES,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        blocks = [config.scaled(width_mult) for config in MOBILENET_V3_LARGE]
        layers: list[nn.Module] = [
            ConvNormActivation(1, blocks[0].input_channels, 3, stride=2, activation=nn.Hardswish)
        ]
        layers.extend(InvertedResidual(config) for config in blocks)
        last_in = blocks[-1].out_channels
        last_out = 6 * last_in
        layers.append(ConvNormActivation(last_in, last_out, 1, activation=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        hidden = make_divisible(LAST_CHANNEL * width_mult)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Flatten(start_dim=1),
            nn.Linear(last_out, hidden),
            nn.Hardswish(),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.classifier(self.features(x))
        return out


class MN04Scores(nn.Module):
    """``MN`` followed by a sigmoid: the graph that is exported to ONNX."""

    def __init__(self, net: MN) -> None:
        super().__init__()
        self.net = net

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        scores: torch.Tensor = torch.sigmoid(self.net(logmel))
        return scores


def load_state_dict(pt_path: Path) -> dict[str, torch.Tensor]:
    """The released state_dict, loaded without unpickling arbitrary objects."""
    state = torch.load(pt_path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{pt_path} does not hold a state_dict")
    return state


def build_mn04(pt_path: Path | None = None) -> MN:
    """mn04 in eval mode; with ``pt_path``, its weights loaded with ``strict=True``."""
    net = MN()
    if pt_path is not None:
        net.load_state_dict(load_state_dict(pt_path), strict=True)
    net.eval()
    return net
