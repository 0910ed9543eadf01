"""A tiny random-weight Real-ESRGAN (RRDBNet) built in code, saved as the real files are.

The published `RealESRGAN_x4plus_anime_6B.pth` is a `{"params_ema": state_dict}` pickle of
BasicSR's RRDBNet (6 blocks, 64 features, 32 growth channels); this one has the same keys and
layout with 1 block, 8 features and 8 growth channels, so it upscales a small picture in
milliseconds through the real loading path.
"""

from __future__ import annotations

from pathlib import Path

import torch

from generation.upscale_arch import NetworkShape, build_network

TINY_SHAPE = NetworkShape(in_channels=3, out_channels=3, features=8, blocks=1, growth=8)


def tiny_state_dict(shape: NetworkShape = TINY_SHAPE, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random-weight RRDBNet's state dict (deterministic for a seed)."""
    torch.manual_seed(seed)
    return build_network(shape).state_dict()


def save_tiny_upscaler(
    path: Path, shape: NetworkShape = TINY_SHAPE, *, seed: int = 0, wrap: bool = True
) -> Path:
    """Write a tiny RRDBNet to `path` (.pth: wrapped in params_ema like BasicSR; .safetensors)."""
    state = tiny_state_dict(shape, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save({"params_ema": state} if wrap else state, path)
    return path
