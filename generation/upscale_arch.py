"""The Real-ESRGAN generator (RRDBNet) and the reading of its weight files.

`RealESRGAN_x4plus_anime_6B` is an RRDBNet of 6 residual-in-residual dense blocks, 64 features
and 32 growth channels that draws every input pixel as 4x4 output pixels (BSD-3-Clause, Xintao
Wang et al., Tencent ARC Lab). Its published `.pth` holds the generator's state dict under
`params_ema` with the key names of BasicSR's `RRDBNet` (`conv_first`, `body.N.rdbM.convK`,
`conv_body`, `conv_up1`, `conv_up2`, `conv_hr`, `conv_last`); the network below has exactly those
modules, so such a file loads with `load_state_dict(strict=True)`. Its shape (blocks, features,
growth, channels) is read from the tensors, never assumed, so tiny test networks load the same way.

Why not spandrel, the loader ComfyUI and chaiNNer use: every spandrel release imports
torchvision when it is imported, and no torchvision release installable from PyPI works beside
the CPU build of torch (its extension is built for CUDA: `operator torchvision::nms does not
exist`); once such a torchvision is installed, transformers fails to import too. This module is
the one place that would change if torch and torchvision come as a working pair.

Weights are read with `torch.load(weights_only=True)` (no code in a pickle runs) or safetensors.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from generation.errors import ModelLoadError, one_line

if TYPE_CHECKING:
    import torch
    from torch import nn

SCALE = 4  # the only scale this bot serves (512² → 2048²)
# Wrappers that training code puts around the state dict (BasicSR saves `params_ema`).
_WRAPPERS = ("params_ema", "params", "state_dict", "model")
_BLOCK = re.compile(r"^body\.(\d+)\.rdb1\.conv1\.weight$")
_NEEDED = (
    "conv_first.weight",
    "conv_body.weight",
    "conv_up1.weight",
    "conv_up2.weight",
    "conv_hr.weight",
    "conv_last.weight",
)


class NotAnUpscalerError(ModelLoadError):
    """The weight file is not a 4x Real-ESRGAN (RRDBNet) image model."""


@dataclass(frozen=True, slots=True)
class NetworkShape:
    """An RRDBNet's hyper-parameters, as read from its state dict."""

    in_channels: int
    out_channels: int
    features: int
    blocks: int
    growth: int
    scale: int = SCALE


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a `.pth`/`.pt` (unpickled with `weights_only`) or `.safetensors` file."""
    import torch

    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file  # pyright: ignore[reportUnknownVariableType]

            loaded: object = load_file(str(path))
        else:
            loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise NotAnUpscalerError(
            f"{path} is not a readable weights file (.pth or .safetensors): {one_line(exc)}"
        ) from exc
    state = _unwrap(loaded)
    if not isinstance(state, dict):
        raise NotAnUpscalerError(f"{path} holds no state dict of tensors")
    mapping = cast("dict[object, object]", state)
    tensors = {str(k): v for k, v in mapping.items() if isinstance(v, torch.Tensor)}
    if len(tensors) != len(mapping):
        raise NotAnUpscalerError(f"{path} holds no state dict of tensors")
    return tensors


def _unwrap(loaded: object) -> object:
    """The state dict inside the wrappers training code saves (at most two levels deep)."""
    for _ in range(2):
        if not isinstance(loaded, dict):
            break
        mapping = cast("dict[object, object]", loaded)
        if "conv_first.weight" in mapping:
            break
        inner = next((mapping[k] for k in _WRAPPERS if isinstance(mapping.get(k), dict)), None)
        if inner is None:
            break
        loaded = inner
    return cast("object", loaded)


def network_shape(state: dict[str, Any], *, where: str = "the weights") -> NetworkShape:
    """The RRDBNet a state dict is for; `NotAnUpscalerError` for anything else or another scale."""
    missing = [key for key in _NEEDED if key not in state]
    blocks = sorted(int(m.group(1)) for key in state if (m := _BLOCK.match(key)))
    if "model.0.weight" in state and missing:
        raise NotAnUpscalerError(
            f"{where} are in the old ESRGAN layout (model.0 ...); use a Real-ESRGAN file "
            "(BasicSR's RRDBNet keys: conv_first, body.N.rdbM, conv_up1, conv_up2)"
        )
    if not blocks and "conv_first.weight" in state and "conv_up1.weight" not in state:
        raise NotAnUpscalerError(f"{where} are not a Real-ESRGAN RRDBNet model")
    if missing or not blocks:
        lacking = ", ".join(missing) if missing else "body.0.rdb1.conv1.weight"
        raise NotAnUpscalerError(
            f"{where} are not a Real-ESRGAN RRDBNet image model (no {lacking})"
        )
    if blocks != list(range(len(blocks))):
        raise NotAnUpscalerError(f"{where} have gaps in their RRDB blocks ({blocks})")
    first = state["conv_first.weight"]
    last = state["conv_last.weight"]
    in_channels = int(first.shape[1])
    if in_channels != 3:
        # BasicSR's x2 and x1 models pixel-unshuffle the input first: 12 or 48 channels.
        factor = {12: 2, 48: 1}.get(in_channels)
        kind = f"a {factor}x model" if factor else f"a model of {in_channels} input channels"
        raise NotAnUpscalerError(f"{where} are {kind}; a {SCALE}x RGB upscaler is needed")
    if int(last.shape[0]) != 3:
        raise NotAnUpscalerError(f"{where} draw {int(last.shape[0])} channels, not RGB")
    return NetworkShape(
        in_channels=in_channels,
        out_channels=int(last.shape[0]),
        features=int(first.shape[0]),
        blocks=len(blocks),
        growth=int(state["body.0.rdb1.conv1.weight"].shape[0]),
    )


def build_network(shape: NetworkShape) -> nn.Module:
    """An RRDBNet of `shape` with random weights (tests and the benchmark build them this way)."""
    return _network_class()(shape)


def load_network(path: Path) -> tuple[nn.Module, NetworkShape]:
    """The network in `path`, in eval mode on the CPU in float32, and its shape."""
    state = read_state_dict(path)
    shape = network_shape(state, where=f"the weights in {path}")
    network = build_network(shape)
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise NotAnUpscalerError(
            f"the weights in {path} do not fit an RRDBNet: {one_line(exc)}"
        ) from exc
    network.eval()
    return network, shape


@functools.cache
def _network_class() -> type[nn.Module]:
    """The module classes, defined on first use so that importing this file needs no torch."""
    import torch
    from torch import nn
    from torch.nn import functional

    class ResidualDenseBlock(nn.Module):
        """Five 3x3 convolutions, each seeing every earlier output; the sum scaled by 0.2."""

        def __init__(self, features: int, growth: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(features, growth, 3, 1, 1)
            self.conv2 = nn.Conv2d(features + growth, growth, 3, 1, 1)
            self.conv3 = nn.Conv2d(features + 2 * growth, growth, 3, 1, 1)
            self.conv4 = nn.Conv2d(features + 3 * growth, growth, 3, 1, 1)
            self.conv5 = nn.Conv2d(features + 4 * growth, features, 3, 1, 1)
            self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x1 = self.lrelu(self.conv1(x))
            x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
            x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
            x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
            x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
            return x5 * 0.2 + x

    class RRDB(nn.Module):
        """Three dense blocks inside one more residual connection."""

        def __init__(self, features: int, growth: int) -> None:
            super().__init__()
            self.rdb1 = ResidualDenseBlock(features, growth)
            self.rdb2 = ResidualDenseBlock(features, growth)
            self.rdb3 = ResidualDenseBlock(features, growth)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x

    class RRDBNet(nn.Module):
        """Features at the input size, then two nearest-neighbour 2x steps: 4x in all."""

        def __init__(self, shape: NetworkShape) -> None:
            super().__init__()
            features = shape.features
            self.conv_first = nn.Conv2d(shape.in_channels, features, 3, 1, 1)
            self.body = nn.Sequential(*(RRDB(features, shape.growth) for _ in range(shape.blocks)))
            self.conv_body = nn.Conv2d(features, features, 3, 1, 1)
            self.conv_up1 = nn.Conv2d(features, features, 3, 1, 1)
            self.conv_up2 = nn.Conv2d(features, features, 3, 1, 1)
            self.conv_hr = nn.Conv2d(features, features, 3, 1, 1)
            self.conv_last = nn.Conv2d(features, shape.out_channels, 3, 1, 1)
            self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            feat = self.conv_first(x)
            feat = feat + self.conv_body(self.body(feat))
            feat = self.lrelu(
                self.conv_up1(functional.interpolate(feat, scale_factor=2, mode="nearest"))
            )
            feat = self.lrelu(
                self.conv_up2(functional.interpolate(feat, scale_factor=2, mode="nearest"))
            )
            return self.conv_last(self.lrelu(self.conv_hr(feat)))

    return RRDBNet
