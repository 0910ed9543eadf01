"""The SD 1.x architecture with random weights, saved in the published layout.

What `bench/generation.py --model sd1x` (the default on CUDA) and `bench/gpu/run.py` load:
the full model's compute without downloading anything.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from bench.common import SD1X_CONFIG, TINY_MODEL

log = logging.getLogger("bench.generation")


def _stamp(config_dir: Path, tokenizer_dir: Path) -> str:
    """A hash of every input of the build, so an edited config rebuilds the cache."""
    digest = hashlib.sha256()
    for folder in (config_dir, tokenizer_dir):
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def build_sd1x(
    target: Path,
    *,
    config_dir: Path = SD1X_CONFIG,
    tokenizer_dir: Path = TINY_MODEL / "tokenizer",
    device: str = "cpu",
) -> Path:
    """A checkpoint in the published layout with random weights of the SD 1.x architecture.

    Each component is instantiated from its config (same compute as the real model, nothing
    downloaded) and saved with `save_pretrained`; the tokenizer folder is the tiny
    checkpoint's. Reused while `config_dir` and the tokenizer are unchanged.
    """
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPTextConfig, CLIPTextModel

    stamp = _stamp(config_dir, tokenizer_dir)
    stamp_file = target / ".bench-stamp"
    if stamp_file.is_file() and stamp_file.read_text() == stamp:
        log.info("reusing the random SD 1.x checkpoint in %s", target)
        return target
    started = time.perf_counter()
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    torch.manual_seed(0)
    # Initialising on the GPU is much faster than on CPU; save_pretrained copies back.
    init_device = device if device.startswith("cuda") else "cpu"
    builders: list[tuple[str, Any]] = [
        ("unet", lambda: UNet2DConditionModel.from_config(
            UNet2DConditionModel.load_config(config_dir / "unet"))),
        ("vae", lambda: AutoencoderKL.from_config(AutoencoderKL.load_config(config_dir / "vae"))),
        ("text_encoder", lambda: CLIPTextModel(
            CLIPTextConfig.from_pretrained(config_dir / "text_encoder"))),
        ("safety_checker", lambda: StableDiffusionSafetyChecker(
            CLIPConfig.from_pretrained(config_dir / "safety_checker"))),
    ]  # fmt: skip
    for name, build in builders:
        with torch.device(init_device):
            model = build()
        model.save_pretrained(partial / name, safe_serialization=True)
        log.info(
            "built %s: %.0fM parameters", name, sum(p.numel() for p in model.parameters()) / 1e6
        )
        del model
    for name in ("scheduler", "feature_extractor"):
        shutil.copytree(config_dir / name, partial / name)
    shutil.copy2(config_dir / "model_index.json", partial / "model_index.json")
    shutil.copytree(tokenizer_dir, partial / "tokenizer")
    (partial / ".bench-stamp").write_text(stamp)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    if init_device.startswith("cuda"):
        torch.cuda.empty_cache()
    log.info(
        "built the random SD 1.x checkpoint in %s (%.0fs)", target, time.perf_counter() - started
    )
    return target
