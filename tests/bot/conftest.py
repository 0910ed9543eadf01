"""Fixtures that run the whole bot end to end: the real discord.py client over real sockets
against the loopback fake Discord (`tests/fakediscord`), the real generation worker thread on
the tiny reference checkpoint on CPU, and a real SQLite file in `tmp_path`.

Fixtures (all function-scoped unless noted):

- `tiny_engine` (session): the real `Engine` from `tests/reference/tiny-pokemon-ja`, CPU,
  safety checker off (its random weights would flag images at random). Loaded once: ~5 s.
- `fake_discord`: a started `FakeDiscord`, discord.py redirected to it (from the plugin).
- `bot_settings`: `Settings` for tests: POKEMON_DEVICE=cpu, POKEMON_SIZE=64, POKEMON_STEPS=3,
  POKEMON_DB=`tmp_path/bot.sqlite3`, the fake's token; override with `bot_rig.settings =
  bot_settings.model_copy(update={...})` before `run()`.
- `bot_rig`: a `BotRig`; `async with bot_rig.run() as bot:` starts storage, worker and bot
  (setup_hook, command sync, resume) and waits for READY; leaving it stops all three. Run it
  twice in one test to restart on the same database. `bot_rig.engine` is a `GatedEngine`:
  `close_gate()` holds every generation before its first step until `open_gate()`, to keep
  jobs queued or running as long as a test needs (the engine itself is the real one);
  `hold_each()` then `let_through(n)` lets calls through one at a time (a queue that moves);
  `fail_with = FatalDeviceError(...)` makes the next call fail as a broken GPU would;
  `step_seconds` makes every denoising step take that long (a job of a few seconds).
- `pokemon_bot`: `bot_rig.run()` already entered: a ready `PokemonBot`.
- `tiny_upscale_runner` (session): the tiny random-weight 4x upscaler (`tiny_upscaler`), loaded
  for the worker; `bot_rig.upscaler` is it (⬆️ works), None turns upscaling off.

Helpers: `BotRig.wait_result(record)` waits for the final image on an interaction and returns
the result `FakeMessage`; `png_of(message)` decodes its attachment with Pillow;
`notices_for(fake, user, channel)` / `only_notice_for(...)` find the bot's channel notices
addressed to a user (a 🔁 refusal, a failure told in the channel).
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from PIL import Image

from bot.client import PokemonBot
from bot.settings import Settings
from generation.errors import GenerationError
from generation.local import ThreadGenerator
from generation.preview import PreviewPacing
from generation.types import GeneratedImage, GenerationRequest, TokenizedPrompt
from generation.worker import GenerationWorker
from storage import Storage
from tests.fakediscord import FakeDiscord, FakeMessage, InteractionRecord, run_client
from tests.fakediscord.plugin import fake_discord  # noqa: F401 - the fixture, re-exported

TINY_MODEL = Path(__file__).resolve().parents[1] / "reference" / "tiny-pokemon-ja"


class GatedEngine:
    """The real engine behind a gate the test controls (open by default)."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self._gate = threading.Event()
        self._gate.set()
        self.device: str = engine.device
        self.dtype: str = engine.dtype
        self.safety_checker: bool = engine.safety_checker
        self.model: str = engine.model
        self.calls = 0  # pipeline calls started (read on the loop; written by the worker)
        self.fail_with: BaseException | None = None  # raised by the next call (a device fault)
        # `hold_each()`: every call waits for its own permit (`let_through`), one batch at a time.
        self._permits: threading.Semaphore | None = None
        # Seconds each denoising step is made to take (a slow device: a job of a few seconds).
        self.step_seconds = 0.0

    def close_gate(self) -> None:
        self._gate.clear()

    def open_gate(self) -> None:
        self._gate.set()
        if self._permits is not None:
            self._permits.release(1000)  # let every held call go
            self._permits = None

    def hold_each(self) -> None:
        """From now on each pipeline call waits until `let_through()` gives it a permit."""
        self._permits = threading.Semaphore(0)

    def let_through(self, calls: int = 1) -> None:
        assert self._permits is not None, "hold_each() first"
        self._permits.release(calls)

    def tokenize(self, text: str) -> TokenizedPrompt:
        return self._engine.tokenize(text)

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        *,
        on_step: Callable[[int, int, Callable[[], Any]], None] | None = None,
        is_cancelled: Callable[[int], bool] | None = None,
    ) -> list[GeneratedImage | GenerationError]:
        self.calls += 1
        self._gate.wait(timeout=60)
        permits = self._permits
        if permits is not None:
            permits.acquire(timeout=60)
        if self.fail_with is not None:
            error, self.fail_with = self.fail_with, None
            raise error
        delay = self.step_seconds
        if delay and on_step is not None:
            forward = on_step

            def slow_step(step: int, total: int, peek: Callable[[], Any]) -> None:
                time.sleep(delay)
                forward(step, total, peek)

            on_step = slow_step
        return self._engine.generate(requests, on_step=on_step, is_cancelled=is_cancelled)


@pytest.fixture(scope="session")
def tiny_engine() -> Any:
    from generation.loader import load_engine

    return load_engine(TINY_MODEL, device="cpu", safety_checker=False)


@pytest.fixture
def bot_settings(tmp_path: Path, fake_discord: FakeDiscord) -> Settings:  # noqa: F811
    return Settings(
        _env_file=None,
        discord_token=fake_discord.token,
        pokemon_model=str(TINY_MODEL),
        pokemon_device="cpu",
        pokemon_db=tmp_path / "bot.sqlite3",
        pokemon_size=64,
        pokemon_steps=3,
        pokemon_max_steps=10,
        pokemon_queue_size=8,
        pokemon_max_batch=1,
        pokemon_user_max_pending=2,
        pokemon_safety_checker="off",
        pokemon_rate_limit=20,
        pokemon_rate_period="day",
        pokemon_owner_ids=[],
        pokemon_dev_guild=None,
    )


@dataclass
class BotRig:
    """Builds and runs the bot the way `bot.app.run_bot` does, minus signals and model loading."""

    fake: FakeDiscord
    settings: Settings
    engine: GatedEngine
    upscaler: Any = None  # the worker's upscale runner (None: upscaling off)
    progress_interval: float = 0.0  # every step may edit (production: 2 s), so tests see them
    # While POKEMON_PREVIEW=on, previews paced like this instead of production's (after 2 s,
    # then every 2 s): a test's job of a few seconds shows some.
    preview_pacing: PreviewPacing | None = None
    bots: list[PokemonBot] = field(default_factory=list)

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[PokemonBot]:
        settings = self.settings
        store = await Storage.open(
            settings.pokemon_db,
            default_limit=settings.default_limit,
            owner_ids=settings.pokemon_owner_ids,
            max_pending=settings.pokemon_user_max_pending,
        )
        pacing = settings.preview_pacing()
        worker = GenerationWorker(
            self.engine,
            upscaler=self.upscaler,
            queue_size=settings.pokemon_queue_size,
            max_batch=settings.pokemon_max_batch,
            job_timeout=settings.pokemon_job_timeout,
            previews=pacing and (self.preview_pacing or pacing),
        )
        generator = ThreadGenerator(worker)
        await generator.start()
        bot = PokemonBot(
            settings=settings,
            store=store,
            generator=generator,
            progress_interval=self.progress_interval,
        )
        self.bots.append(bot)
        try:
            async with run_client(self.fake, bot):
                yield bot
                self.engine.open_gate()
                bot.service.stop_intake()
                await worker.stop(timeout=10.0)
                await bot.service.drain(within=10.0)
        finally:
            self.engine.open_gate()
            await worker.stop(timeout=10.0)
            await store.close()

    async def wait_result(self, record: InteractionRecord, within: float = 30.0) -> FakeMessage:
        """The interaction's original response once it carries the image."""

        def done() -> bool:
            message = record.original_message
            return message is not None and bool(message.attachments) and bool(message.embeds)

        await self.fake.wait_until(done, within)
        message = record.original_message
        assert message is not None
        return message


def notices_for(
    fake: FakeDiscord, user: object, channel_id: int | None = None
) -> list[FakeMessage]:
    """The bot's channel notices addressed to `user` (they start with its mention)."""
    uid = getattr(user, "id", user)
    return [m for m in fake.bot_messages(channel_id) if m.content.startswith(f"<@{uid}>")]


async def only_notice_for(fake: FakeDiscord, user: object, channel_id: int) -> FakeMessage:
    """Wait for the bot's one notice to `user` in the channel, and return it."""
    await fake.wait_until(lambda: notices_for(fake, user, channel_id))
    (notice,) = notices_for(fake, user, channel_id)
    return notice


def png_of(message: FakeMessage) -> Image.Image:
    """The message's first attachment, decoded (raises if it is not an image)."""
    assert message.attachments, "the message has no attachment"
    image = Image.open(io.BytesIO(message.attachments[0].data))
    image.load()
    return image


@pytest.fixture(scope="session")
def tiny_upscale_runner(tiny_upscaler: Path) -> Any:
    from generation.upscale_job import load_upscale_runner

    return load_upscale_runner(str(tiny_upscaler), device="cpu")


@pytest.fixture
def bot_rig(
    fake_discord: FakeDiscord,  # noqa: F811
    bot_settings: Settings,
    tiny_engine: Any,
    tiny_upscale_runner: Any,
) -> BotRig:
    return BotRig(
        fake=fake_discord,
        settings=bot_settings,
        engine=GatedEngine(tiny_engine),
        upscaler=tiny_upscale_runner,
    )


@pytest_asyncio.fixture
async def pokemon_bot(bot_rig: BotRig) -> AsyncIterator[PokemonBot]:
    async with bot_rig.run() as bot:
        yield bot
