"""Errors the generation layer raises. Each carries a stable `code` the bot maps to localized text."""

from __future__ import annotations


def one_line(exc: BaseException) -> str:
    """The first line of an exception's text (at most 300 characters), for one-line messages."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


class GenerationError(Exception):
    """Base class. `code` is a short machine-readable reason; `ours` says whose fault it was."""

    code = "generation_failed"
    ours = True


class ModelLoadError(GenerationError):
    """The model could not be loaded. The message is one clear line for the operator."""

    code = "model_load_failed"


class QueueFullError(GenerationError):
    """The bounded queue is full; the caller should tell the user at once."""

    code = "queue_full"
    ours = False


class JobCancelledError(GenerationError):
    code = "cancelled"
    ours = False


class JobTimeoutError(GenerationError):
    code = "timeout"


class OutOfMemoryError(GenerationError):
    """The device ran out of memory for this job only; the worker stays healthy."""

    code = "out_of_memory"


class FatalDeviceError(GenerationError):
    """A CUDA error other than out-of-memory: the worker is unhealthy and the process must exit."""

    code = "device_failed"


class UnsafeImageError(GenerationError):
    """The safety checker flagged the image; it is never returned."""

    code = "nsfw"
    ours = False


class BadImageError(GenerationError):
    """The image came out with NaNs or all black: a failure, never a result."""

    code = "bad_image"


class WorkerStoppedError(GenerationError):
    code = "worker_stopped"


class GeneratorUnavailableError(GenerationError):
    """Nothing can generate right now (no worker online, Redis unreachable): tell the user at
    once instead of queueing silently."""

    code = "unavailable"
    ours = True


class UpscalerOffError(GeneratorUnavailableError):
    """An upscale was asked of a generator that has no upscaler (POKEMON_UPSCALER=off, or it
    did not load)."""

    code = "upscaler_off"


class PoisonJobError(GenerationError):
    """A remote job was handed to workers too many times (it crashed or hung each of them); it
    was set aside in the dead-letter stream instead of being retried for ever."""

    code = "poison"
