"""What the parts of the job layer share: the jobs in hand (`ActiveJob`) and the context they
all work in (`JobContext`). Only the job layer changes these."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from generation.tasks import Tasks

if TYPE_CHECKING:
    import discord

    from bot.jobs.presenter import Presenter
    from bot.messaging import Destination, EditThrottle
    from bot.settings import Settings
    from generation.generator import Generator, JobHandle, Queued
    from generation.types import GenerationRequest, Progress
    from storage import Storage


@dataclass(slots=True, eq=False)
class ActiveJob:
    """The loop-side state of one job the generator holds: where it shows, its edit pacing."""

    job_id: int
    user_id: int
    guild_id: int | None
    locale: str
    request: GenerationRequest
    dest: Destination
    parent_job_id: int | None
    throttle: EditThrottle
    resumed: bool = False  # from the last process: show nothing before the gateway is up
    deferred_public: bool = False  # the interaction was deferred with a visible "thinking…"
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    handle: JobHandle | None = None
    latest: Progress | None = None
    preview: bytes | None = None  # the newest preview of its picture so far (from a Progress)
    preview_shown: bytes | None = None  # the preview its message carries now
    queued_at: Queued | None = None
    edit_scheduled: bool = False
    finished: bool = False
    progress_message_id: int | None = None
    running: asyncio.Task[Any] | None = None  # mark_running, awaited before the final state
    delivered: bool = False  # the picture is on Discord (even if recording that failed)
    cancelled_by: int | None = None  # who pressed ✖ (JobService.cancel)
    notes: tuple[str, ...] = ()  # one-line notices its picture's message carries (the origin's)

    @property
    def live(self) -> bool:
        """Held by the generator and not ended yet."""
        return self.handle is not None and not self.finished and not self.handle.done

    def place(self, running: bool = False) -> tuple[int | None, float | None]:
        """(batches before it, 1 = next; 0 drawing; None not known yet), and the estimate in
        seconds until it starts when known. `running`: its row says it is."""
        if self.latest is not None or running:
            return 0, None
        if self.queued_at is not None:
            return self.queued_at.position, self.queued_at.eta_seconds
        return None, None


@dataclass(slots=True, eq=False)
class JobContext:
    """The dependencies and shared state of the job layer's parts. Every method of every part
    runs on the event loop."""

    store: Storage
    generator: Generator
    settings: Settings
    client: discord.Client
    presenter: Presenter
    progress_interval: float
    tasks: Tasks = field(default_factory=lambda: Tasks("job service"))
    active: dict[int, ActiveJob] = field(default_factory=dict[int, ActiveJob])
    accepting: bool = True  # False once intake stopped: new work is refused
    stopping: bool = False  # draining: nothing cosmetic is shown any more
    # Set once the gateway is connected: resumed jobs wait for it before showing anything.
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    # stop_intake() or drain(): nothing more is resumed.
    ending: asyncio.Event = field(default_factory=asyncio.Event)
