"""What the worker can promise on a device: batch size, a timeout per image, and minutes per image.

A GPU draws a 512² image in seconds, so the settings' 300 s per job fits it; its batch size,
unless the operator set POKEMON_MAX_BATCH, comes from the GPU memory free after the model
loaded (`gpu_max_batch`): a 12 GB card gets a few pictures per batch, a data-centre card 16. A CPU takes minutes per image (docs/PERFORMANCE.md: one UNet call of the full
SD 1.x model at 512², batch 2 for guidance, about 20 s on 2 cores), so there the defaults
change to what can finish: one image per batch and a timeout scaled to the estimated speed.
Settings an operator set explicitly always win. Pure: no torch, no clock.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

# Measured (docs/PERFORMANCE.md, "The full model on CPU"): one denoising step of the full
# SD 1.x UNet at 512² with the guided and unguided halves, float32, 2 cores.
CPU_SECONDS_PER_STEP_512 = 20.0
CPU_MEASURED_CORES = 2
# The VAE decode, safety check and PNG after the last step ("adds a few seconds").
CPU_SECONDS_AFTER_STEPS_512 = 5.0
# The timeout allows this many times the estimate: the estimate is rough (other load, slower
# cores), and a timeout that fires on a job that would have finished wastes all of its work.
TIMEOUT_MARGIN = 2.0
# GPU memory per 512² picture in a batch, conservatively. Measured (docs/PERFORMANCE.md, H200,
# fp16, SDPA): the peak grows by ~67 MiB per picture from a batch of 1 (3256 MiB, weights
# included) to 8 (3726 MiB). 1 GiB per picture leaves room for CUDA graphs' memory pools, the
# compiled kernels' workspaces, fragmentation and the other processes on a shared card.
GPU_BYTES_PER_PICTURE_512 = 1024**3
# Kept free whatever the batch: the VAE decode of the largest picture (~1 GiB at 768×512 in
# fp16), cuBLAS/cuDNN workspaces, and the allocator's slack.
GPU_RESERVE_BYTES = 2 * 1024**3
MAX_BATCH_LIMIT = 16  # POKEMON_MAX_BATCH's own upper bound (bot/settings.py)


def gpu_max_batch(free_bytes: int, width: int, height: int, limit: int = MAX_BATCH_LIMIT) -> int:
    """The largest batch of width×height pictures that fits in `free_bytes` of GPU memory
    (what is free once the model is loaded): from 1 to `limit`."""
    per_picture = GPU_BYTES_PER_PICTURE_512 * (width * height) / (512 * 512)
    fits = int((free_bytes - GPU_RESERVE_BYTES) // per_picture)
    return max(1, min(limit, fits))


@dataclass(frozen=True, slots=True)
class DeviceDefaults:
    """The worker's sizing on one device, and the estimate it came from (None on a GPU)."""

    max_batch: int
    job_timeout: float  # seconds per image once it runs
    seconds_per_image: float | None  # at the configured size and steps; None: not estimated
    changed: tuple[str, ...]  # the settings this policy changed from what was configured

    @property
    def minutes_per_image(self) -> float | None:
        return None if self.seconds_per_image is None else self.seconds_per_image / 60


def cpu_seconds_per_image(size: int, steps: int, cores: int | None = None) -> float:
    """Estimated seconds for one `size`² image of `steps` steps on `cores` CPU cores.

    The UNet's cost grows with the latent's area; it spreads over the cores (roughly).
    """
    cores = max(1, cores if cores is not None else (os.cpu_count() or 1))
    area = (size / 512) ** 2
    speed = CPU_MEASURED_CORES / cores
    return (steps * CPU_SECONDS_PER_STEP_512 + CPU_SECONDS_AFTER_STEPS_512) * area * speed


def device_defaults(
    device: str,
    *,
    size: int,
    steps: int,
    max_steps: int,
    max_batch: int,
    job_timeout: float,
    explicit: frozenset[str] = frozenset(),
    cores: int | None = None,
    free_bytes: int | None = None,
) -> DeviceDefaults:
    """The batch size and per-image timeout to run with on `device` (cpu, cuda, cuda:N).

    `max_batch` and `job_timeout` are the configured values; `explicit` names those the
    operator set (`"max_batch"`, `"job_timeout"`), which are kept as they are. On the CPU the
    others become 1 and `TIMEOUT_MARGIN` × the estimate for an image of `max_steps` steps
    (the most a user may ask for), rounded up to a whole minute, and never below the
    configured timeout. On a GPU with `free_bytes` known, `max_batch` (unless explicit)
    becomes what fits there for the largest picture at `size` (portrait or landscape,
    1.5 × `size` on the long side).
    """
    if not device.startswith("cpu"):
        if free_bytes is None or "max_batch" in explicit:
            return DeviceDefaults(max_batch, job_timeout, None, ())
        from generation.fastpath import bot_sizes

        width, height = max(bot_sizes(size), key=lambda wh: wh[0] * wh[1])
        fitted = gpu_max_batch(free_bytes, width, height)
        return DeviceDefaults(
            fitted, job_timeout, None, ("max_batch",) if fitted != max_batch else ()
        )
    changed: list[str] = []
    if "max_batch" not in explicit and max_batch != 1:
        max_batch = 1
        changed.append("max_batch")
    if "job_timeout" not in explicit:
        worst = cpu_seconds_per_image(size, max(steps, max_steps), cores)
        scaled = max(job_timeout, 60 * math.ceil(TIMEOUT_MARGIN * worst / 60))
        if scaled != job_timeout:
            job_timeout = scaled
            changed.append("job_timeout")
    return DeviceDefaults(
        max_batch, job_timeout, cpu_seconds_per_image(size, steps, cores), tuple(changed)
    )
