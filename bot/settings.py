"""The one typed settings object, read from the environment and `.env`, built once in the entry point."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BeforeValidator, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from generation.translate import DEFAULT_TRANSLATE_MODEL
from generation.upscale_weights import DEFAULT_UPSCALER

if TYPE_CHECKING:
    from generation.device_policy import DeviceDefaults

DEFAULT_MODEL = "svjack/Stable-Diffusion-Pokemon-ja"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> float:
    """`90`, `90s`, `15m`, `6h`, `2d` → seconds. Raises ValueError with the accepted forms."""
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration; use e.g. 90s, 15m, 6h or 2d")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


def _parse_ids(value: object) -> object:
    if isinstance(value, str):
        parts = [p.strip() for p in value.replace(";", ",").split(",")]
        return [int(p) for p in parts if p]
    return value


def _empty_to_none(value: object) -> object:
    if isinstance(value, str) and not value.strip():
        return None
    return value


Duration = Annotated[float, BeforeValidator(parse_duration)]


class Settings(BaseSettings):
    """Every setting the bot reads. Field names are the environment variables, upper-cased."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    discord_token: SecretStr | None = Field(
        default=None, description="The bot token; required by `run`; never logged."
    )
    pokemon_model: str = Field(default=DEFAULT_MODEL, description="Hub id or local folder.")
    pokemon_device: str = Field(default="auto", description="auto, cuda, cuda:N or cpu.")
    pokemon_db: Path = Field(default=Path("data/pokemon-bot.sqlite3"), description="SQLite file.")
    pokemon_steps: int = Field(default=25, ge=1, le=150, description="Default denoising steps.")
    pokemon_max_steps: int = Field(
        default=50, ge=1, le=150, description="Most steps a user may ask for."
    )
    pokemon_scheduler: Literal["dpmpp-2m", "lms"] = Field(
        default="dpmpp-2m", description="Default sampler: dpmpp-2m (fast) or lms (model card)."
    )
    pokemon_guidance: float = Field(
        default=7.5, ge=1.0, le=20.0, description="Default classifier-free guidance."
    )
    pokemon_size: int = Field(
        default=512, ge=64, le=1024, multiple_of=8, description="Default image side in pixels."
    )
    pokemon_max_pixels: int = Field(
        default=1024 * 1024,
        ge=64 * 64,
        description="Most pixels (width × height) one picture may have; larger sizes are refused.",
    )
    pokemon_queue_size: int = Field(default=32, ge=1, le=10_000, description="Queue length.")
    pokemon_user_max_pending: int = Field(
        default=2, ge=1, le=100, description="Queued + running jobs per user."
    )
    pokemon_max_batch: int = Field(
        default=4,
        ge=1,
        le=16,
        description="Most compatible queued jobs run as one batch. Unset: on a GPU, what fits "
        "in its free memory (up to 16); 4 where that is unknown; 1 on the CPU.",
    )
    pokemon_job_timeout: Duration = Field(
        default=300.0, description="Time limit for one job once it runs (e.g. 300s, 5m)."
    )
    pokemon_rate_limit: int = Field(
        default=20, ge=0, description="Global default: images per period per user (0 blocks)."
    )
    pokemon_rate_period: Literal["hour", "day"] = Field(
        default="day", description="Period of the global default limit: hour or day."
    )
    pokemon_owner_ids: Annotated[list[int], NoDecode, BeforeValidator(_parse_ids)] = Field(
        default_factory=list[int], description="Comma-separated user ids with every admin right."
    )
    pokemon_safety_checker: Literal["on", "off"] = Field(
        default="on", description="on / off: check images for NSFW content before posting."
    )
    pokemon_dev_guild: Annotated[int | None, BeforeValidator(_empty_to_none)] = Field(
        default=None, description="A guild id to sync commands to instantly while developing."
    )
    pokemon_retention_days: int = Field(
        default=30, ge=1, description="Days before stored prompt text is blanked."
    )
    pokemon_resume_max_age: Duration = Field(
        default=6 * 3600.0, description="Jobs older than this are failed, not resumed (e.g. 6h)."
    )
    pokemon_compile: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="torch.compile the UNet, VAE decode and safety checker (CUDA only). auto: "
        "compile in the background, serving uncompiled until ready; on: wait for the first "
        "shape before serving; off: never.",
    )
    pokemon_compile_cache: Annotated[Path | None, BeforeValidator(_empty_to_none)] = Field(
        default=Path("data/compile-cache"),
        description="Folder of compiled artefacts, reused at the next start; empty: none.",
    )
    pokemon_log_level: str = Field(default="INFO", description="Log level for the bot's loggers.")
    pokemon_heartbeat_file: Annotated[Path | None, BeforeValidator(_empty_to_none)] = Field(
        default=None, description="If set, the worker touches this file while healthy."
    )
    pokemon_translate: Literal["auto", "off"] = Field(
        default="auto", description="auto: translate English prompts to Japanese; off: never."
    )
    pokemon_translate_model: str = Field(
        default=DEFAULT_TRANSLATE_MODEL,
        description="English→Japanese MarianMT translation model: Hub id or local folder.",
    )
    pokemon_translate_device: str = Field(
        default="cpu", description="Where the translation model runs: cpu, cuda or cuda:N."
    )
    pokemon_upscaler: str = Field(
        default=DEFAULT_UPSCALER,
        description=(
            "The upscaler's weights: a Hub file (owner/name/file.pth), a local file or folder, "
            "or off."
        ),
    )
    # Remote GPU workers (README, "More than one GPU") and metrics.
    pokemon_redis_url: Annotated[SecretStr | None, BeforeValidator(_empty_to_none)] = Field(
        default=None,
        description="redis:// or rediss:// URL (with password): generate on remote workers.",
    )
    pokemon_redis_prefix: str = Field(
        default="pokemon",
        description="Redis key prefix: bots sharing one Redis each use their own, workers theirs.",
    )
    pokemon_worker_name: Annotated[str | None, BeforeValidator(_empty_to_none)] = Field(
        default=None, description="This worker's name in the registry (default: host-pid)."
    )
    pokemon_metrics_port: Annotated[int | None, BeforeValidator(_empty_to_none)] = Field(
        default=None, ge=1, le=65535, description="Serve Prometheus metrics on this port."
    )

    @field_validator("pokemon_redis_prefix")
    @classmethod
    def _check_redis_prefix(cls, value: str) -> str:
        if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", value):
            return value
        raise ValueError(
            "use 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )

    @field_validator("pokemon_upscaler")
    @classmethod
    def _check_upscaler(cls, value: str) -> str:
        from generation.upscale_weights import UpscalerLoadError, parse_upscaler

        try:
            parse_upscaler(value)  # the text's form only: whether the file exists is doctor's
        except UpscalerLoadError as exc:
            raise ValueError(str(exc)) from None
        return value.strip()

    @field_validator("pokemon_device", "pokemon_translate_device")
    @classmethod
    def _check_device(cls, value: str, info: ValidationInfo) -> str:
        value = value.strip().lower()
        auto = info.field_name == "pokemon_device"  # the translator has no `auto`: cpu by default
        if (
            value in {"cpu", "cuda"}
            or re.fullmatch(r"cuda:\d+", value)
            or (auto and value == "auto")
        ):
            return value
        raise ValueError("use auto, cpu, cuda or cuda:N" if auto else "use cpu, cuda or cuda:N")

    @property
    def default_limit(self) -> tuple[int, str]:
        return self.pokemon_rate_limit, self.pokemon_rate_period

    def worker_sizing(
        self, device: str, *, cores: int | None = None, free_bytes: int | None = None
    ) -> DeviceDefaults:
        """Batch size and per-image timeout on `device` (the CPU gets what can finish there, a
        GPU with `free_bytes` of memory free the batch that fits); POKEMON_MAX_BATCH and
        POKEMON_JOB_TIMEOUT, when set, are kept as they are."""
        from generation.device_policy import device_defaults

        fields = {"pokemon_max_batch": "max_batch", "pokemon_job_timeout": "job_timeout"}
        return device_defaults(
            device,
            size=self.pokemon_size,
            steps=self.pokemon_steps,
            max_steps=self.pokemon_max_steps,
            max_batch=self.pokemon_max_batch,
            job_timeout=self.pokemon_job_timeout,
            explicit=frozenset(v for k, v in fields.items() if k in self.model_fields_set),
            cores=cores,
            free_bytes=free_bytes,
        )
