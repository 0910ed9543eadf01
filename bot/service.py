"""The job service: the one owner of a job's life, from a request to a picture on Discord.

It has one way in, `start()`, used by `/pokemon`, by 🔁 and (through `resume()`) by jobs left
on disk by the last process: validate against the settings in force now, admit (rate limit and
pending cap, which writes the `queued` row), submit to the generator, show. It follows the
job's events (queue place, progress, done, failed, cancelled), delivers the picture and settles
the row. Nothing else writes a job's state: cogs and buttons only translate Discord events into
calls here.

Its dependencies are explicit: the store, the generator (any `generation.generator.Generator`),
the settings, and the Discord client it shows messages through.

Delivery rules (docs/RELIABILITY.md): a failed upload is retried on the same route while
Discord answers 5xx or the connection drops; when it finally fails, the message is read back
before anything is declared lost, and the original response is never deleted while an upload
to it may have landed. Jobs resumed after a restart continue in the message the user already
has: once the gateway is connected that message is read back (a picture already there is
recorded, not drawn again), then the job is queued; its message is updated paced per channel.
A resumed job the generator cannot take yet waits on disk and is offered again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import discord

from bot.buttons import cancel_buttons, result_buttons
from bot.errors import UserFacingError, new_error_id
from bot.i18n import catalog, t
from bot.jobs import new_job, request_as_drawn, request_from_job, source_picture_of
from bot.messaging import (
    PROGRESS_INTERVAL,
    REGENERATE_EMOJI,
    RESULT_FILENAME,
    SERVER_ERROR_RETRY_DELAYS,
    TRANSIENT_ERRORS,
    ChannelPacer,
    Destination,
    EditThrottle,
    NoMessageToEdit,
    channel_notice,
    defer_public,
    progress_bar,
    relative,
    result_embed,
    send_ephemeral,
    send_safely,
)
from bot.moderation import blocked_word
from bot.origins import (
    ButtonOrigin,
    CommandOrigin,
    Origin,
    VariationOrigin,
)
from bot.permissions import may_use_pokemon
from bot.sources import read_result_picture
from bot.validation import check_request, random_seed
from generation import metrics
from generation.errors import (
    GenerationError,
    GeneratorUnavailableError,
    QueueFullError,
    WorkerStoppedError,
)
from generation.generator import (
    Cancelled,
    Done,
    Failed,
    Generator,
    JobHandle,
    Queued,
    Started,
)
from generation.pnginfo import sampler_name
from generation.tasks import Tasks
from generation.translate import needs_translation
from generation.types import GenerationRequest, GenerationResult, Progress
from storage import JSON, StorageError

if TYPE_CHECKING:
    from bot.command_permissions import CommandPermissions
    from bot.settings import Settings
    from storage import Admission, JobRecord, Quota, Storage

log = logging.getLogger(__name__)

REFUSAL_SECONDS = 10  # a refusal posted in the channel (for a reaction) deletes itself
CANCEL_WAIT_SECONDS = 30.0  # how long forgetting a user waits for their running job to stop
# While jobs are in hand, how often the database is asked whether another process (such as
# `pokemon-bot forget-user`) changed it; a job whose row went is then taken from the generator.
ROW_WATCH_SECONDS = 1.0
# A resumed job the generator cannot take yet is offered again after 1 s, doubling to 30 s.
RESUME_RETRY_FIRST = 1.0
RESUME_RETRY_MAX = 30.0
RESUME_READS_AT_ONCE = 5  # resumed jobs' messages read back at the same time

# What became of a job from the last process offered to the generator again (`_resubmit`).
ResumeOutcome = Literal["queued", "waiting", "unavailable", "refused", "skipped", "stopped"]

# Reads a job's source picture (image-to-image), checked; raises UserFacingError (bot.sources).
SourceReader = Callable[[], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class QueuePlace:
    """One of a user's unfinished jobs as `/queue` shows it."""

    job_id: int
    position: int | None  # batches before it (1 = next); 0 running; None not known yet
    eta_seconds: float | None


@dataclass(frozen=True, slots=True)
class QueuePlaces:
    """`JobService.queue_places`: a user's jobs, and the whole queue's size."""

    jobs: list[QueuePlace]
    queued: int  # every job waiting, everyone's
    running: int  # every job drawing now


# ---- what a result says about translation --------------------------------------------------


def translation_shown(
    request: GenerationRequest, prompt_used: str, negative_used: str
) -> tuple[str, str] | None:
    """(prompt, negative) the model was given, when translation changed either; else None
    (also when the generator did not report them: an empty `prompt_used`)."""
    if not request.translate or not prompt_used:
        return None
    if (prompt_used, negative_used) == (request.prompt, request.negative_prompt):
        return None
    return prompt_used, negative_used


def without_job(quota: Quota, images: int) -> Quota:
    """`quota` as it reads once a job of `images` pictures, the newest counted, is refunded
    (the oldest counted job, which `reset_at` is about, stays; none is left when it was
    the only one)."""
    used = max(quota.used - images, 0)
    # As storage counts it: what the limit leaves, never below 0 (a lowered limit may be
    # exceeded); None when unlimited.
    remaining = None if quota.limit is None else max(0, quota.limit - used)
    return replace(quota, used=used, remaining=remaining, reset_at=quota.reset_at if used else None)


def untranslated(request: GenerationRequest, prompt_used: str, negative_used: str) -> bool:
    """Translation was asked for English text, but the model got the English (the translation
    model is not loaded, or failed): the result says so."""
    if not request.translate:
        return False
    return any(
        needs_translation(text) and used == text
        for text, used in (
            (request.prompt, prompt_used),
            (request.negative_prompt, negative_used),
        )
    )


# ---- one job the generator holds ------------------------------------------------------------


@dataclass(slots=True, eq=False)
class ActiveJob:
    """The loop-side state of one job: where it shows, and its edit pacing."""

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
    queued_at: Queued | None = None
    edit_scheduled: bool = False
    finished: bool = False
    progress_message_id: int | None = None
    running: asyncio.Task[Any] | None = None  # mark_running, awaited before the final state
    delivered: bool = False  # the picture is on Discord (even if recording that failed)
    cancelled_by: int | None = None  # who pressed ✖ (JobService.cancel)


class JobService:
    """Owns every job's life. All methods run on the event loop."""

    def __init__(
        self,
        *,
        store: Storage,
        generator: Generator,
        settings: Settings,
        client: discord.Client,
        progress_interval: float = PROGRESS_INTERVAL,
    ) -> None:
        self.store = store
        self.generator = generator
        self.settings = settings
        self.client = client
        self.progress_interval = progress_interval
        self.accepting = True
        self.stopping = False
        self.active: dict[int, ActiveJob] = {}
        # Set once the gateway is connected: resumed jobs wait for it before showing anything.
        self.connected = asyncio.Event()
        # Pauses between our retries of a final upload (tests shorten them).
        self.retry_delays: tuple[float, ...] = SERVER_ERROR_RETRY_DELAYS
        # Our cosmetic edits (queue places, progress) in one channel stay under Discord's
        # per-channel limit together: at most one every 0.6 × the per-message interval.
        self.pacer = ChannelPacer(interval=0.6 * progress_interval)
        self.tasks = Tasks("job service")
        # Outcomes of delivered jobs the database refused, retried until it accepts them.
        self._unrecorded: dict[int, Callable[[], Awaitable[object]]] = {}
        self.record_retry_delay = 1.0
        # Resumed jobs the generator could not take yet, oldest first, and the task that
        # offers them again until it can (`_offer_waiting`); ended by `_ending`.
        self.resume_max_age = float("inf")
        self._waiting: list[JobRecord] = []
        self._offering: asyncio.Task[None] | None = None
        self._ending = asyncio.Event()  # stop_intake() or drain(): nothing more is resumed
        # (user, parent job) pairs being admitted right now: two quick 🔁 from one user must
        # not both pass the pending check before either row exists.
        self._admitting: set[tuple[int, int]] = set()
        # /pokemon's Integrations settings (channels, roles), obeyed by 🔁 (set by the bot;
        # None: not checked).
        self.command_permissions: CommandPermissions | None = None
        # Notices jobs cancelled or deleted by another process (`_watch_rows`), while any run.
        self.row_watch_interval = ROW_WATCH_SECONDS
        self._row_watch: asyncio.Task[None] | None = None

    # ---- the one way in -----------------------------------------------------------------

    async def start(
        self, request: GenerationRequest, origin: Origin, *, source: SourceReader | None = None
    ) -> JobRecord | None:
        """Validate, admit, submit and show a new job; None when it was refused (the refusal
        was shown to the user and no row is left unsettled).

        `source` (image-to-image): reads the source picture after the defer and before the
        admission, so a picture that cannot be used is refused without charging anything."""
        job: JobRecord | None = None
        try:
            request = check_request(self.settings, request, source_coming=source is not None)
            if not self.accepting:
                raise UserFacingError("error.shutting_down")
            if isinstance(origin, CommandOrigin):
                # Defer well inside Discord's 3 s; nothing slow before it.
                origin.message_id = await defer_public(origin.interaction)
                origin.deferred = True
            await self.check_blocklist(request, origin.guild_id)
            if source is not None:  # kept in the request for the job's life, never stored
                request = replace(request, init_image=await source())
            admission = await self.store.admit(self._row(request, origin))
            if not admission.admitted or admission.job is None:
                raise self.refusal(admission, origin.locale, images=request.count)
            job = admission.job
            if isinstance(origin, CommandOrigin) and origin.message_id is not None:
                # Known before anything is drawn, so that after a crash the job is found in
                # the message that may already carry its picture.
                await self.store.jobs.set_message(job.id, progress_message_id=origin.message_id)
                job = replace(job, progress_message_id=origin.message_id)
            await self._submit(job, request, self._destination(origin), origin.locale, origin)
        except UserFacingError as exc:
            if job is not None:
                await self._settle(job.id, exc.code, "rejected")
            log.info("refused a job for user=%s: %s", origin.user_id, exc.key)
            await self._refuse(origin, exc.localized(origin.locale))
            return None
        except StorageError as exc:
            # The disk is full, the file is locked for too long: the operator must act, the
            # user can only wait. One line in the log says which.
            log.error("storage failed while starting a job for user=%s: %s", origin.user_id, exc)
            if job is not None:
                await self._settle(job.id, "storage", "ours")
            await self._refuse(origin, t("error.storage_unavailable", origin.locale))
            return None
        except BaseException as exc:
            if job is not None:
                await self._settle(job.id, "internal", "ours")
            if isinstance(origin, CommandOrigin) and isinstance(exc, Exception):
                error_id = new_error_id()
                log.error("error id=%s starting a job", error_id, exc_info=exc)
                await self._refuse(origin, t("error.unexpected", origin.locale, error_id=error_id))
                return None
            raise
        log.info(
            "job=%s queued by user=%s guild=%s via %s steps=%s seed=%s",
            job.id,
            origin.user_id,
            origin.guild_id,
            "command"
            if isinstance(origin, CommandOrigin)
            else f"reaction on job={origin.parent.id}",
            request.steps,
            request.seed,
        )
        return job

    async def regenerate(self, origin: VariationOrigin) -> JobRecord | None:
        """🔁 (reaction or button): the parent's request with a fresh seed (a set of the same
        count), for the user who asked, once at a time per (user, parent), where that user
        may use /pokemon."""
        request = replace(request_as_drawn(origin.parent), seed=random_seed())
        source = None
        if request.strength and origin.parent.reply_to_message_id is not None:
            # A 🎨 result: a new variation of the same source picture, read again from the
            # message it replied to (a picture from `/pokemon image:` is gone: refused).
            source = self._result_picture(
                origin, origin.parent.reply_to_message_id, source_picture_of(origin.parent)
            )
        return await self._start_child(origin, request, source)

    async def vary(self, origin: VariationOrigin, strength: float) -> JobRecord | None:
        """🎨 (reaction or button): a new picture from the result picture (`origin.picture`
        of a set; a reaction takes the first), repainting `strength` of it, with the parent's prompt and a new seed, for
        whoever asked (their quota), replying to that picture; as `regenerate` otherwise."""
        request = replace(
            request_as_drawn(origin.parent),
            seed=random_seed(),
            count=1,  # one picture from one picture
            strength=strength,
        )
        return await self._start_child(
            origin, request, self._result_picture(origin, origin.message_id, origin.picture)
        )

    async def _start_child(
        self, origin: VariationOrigin, request: GenerationRequest, source: SourceReader | None
    ) -> JobRecord | None:
        """Start a job made from `origin.parent` (🔁, 🎨), once at a time per (user, parent)."""
        key = (origin.user_id, origin.parent.id)
        if key in self._admitting:
            return None
        self._admitting.add(key)
        try:
            if not await self.may_use_command(origin):
                await self._refuse(origin, t("error.command_disabled", origin.locale))
                return None
            pending = await self.store.jobs.find_pending(
                origin.user_id, parent_job_id=origin.parent.id
            )
            if pending is not None:  # already drawing one from this result for this user
                if isinstance(origin, ButtonOrigin):  # a press gets a private word; a
                    await self._refuse(origin, t("regen.already_pending", origin.locale))
                return None  # repeated reaction stays silent, as before
            if origin.parent.prompt_blanked:  # by the retention policy
                await self._refuse(origin, t("regen.prompt_gone", origin.locale))
                return None
            return await self.start(request, origin, source=source)
        finally:
            self._admitting.discard(key)

    def _result_picture(
        self, origin: VariationOrigin, message_id: int, picture: int = 1
    ) -> SourceReader:
        """Reads picture `picture` (1-based) of message `message_id` in the origin's channel."""

        async def read() -> bytes:
            channel = self.client.get_partial_messageable(
                origin.channel_id, guild_id=origin.guild_id
            )
            try:
                message = await channel.fetch_message(message_id)
            except discord.NotFound:
                raise UserFacingError("error.source_gone") from None
            except (discord.HTTPException, *TRANSIENT_ERRORS):
                raise UserFacingError("error.image_unavailable") from None
            return await read_result_picture(message, picture)

        return read

    async def may_use_command(self, origin: VariationOrigin) -> bool:
        """Whether /pokemon's Integrations settings let this user use it in this channel:
        Discord checks them for the slash command only, so 🔁 asks here."""
        return await may_use_pokemon(
            self.command_permissions,
            guild_id=origin.guild_id,
            channel_id=origin.channel_id,
            member=origin.member,
            user_id=origin.user_id,
        )

    async def check_blocklist(self, request: GenerationRequest, guild_id: int | None) -> None:
        """Refuse a prompt or negative prompt holding a word this server blocked (compared
        after `bot.moderation.normalize`). The refusal never repeats the word."""
        if guild_id is None:
            return
        words = await self.store.blocklist.words(guild_id)
        if blocked_word((request.prompt, request.negative_prompt), words) is not None:
            raise UserFacingError("error.prompt_blocked")

    def refusal(self, admission: Admission, locale: object, *, images: int = 1) -> UserFacingError:
        """The user-facing reason an admission of a job of `images` pictures was refused."""
        if admission.reason == "blocked":
            return UserFacingError("error.blocked")
        if admission.reason == "pending":
            return UserFacingError("error.pending_cap", max=self.settings.pokemon_user_max_pending)
        quota = admission.quota
        retry_at = admission.retry_at or quota.reset_at
        if quota.remaining:  # some left, fewer than asked (several pictures): say how many
            return UserFacingError(
                "error.not_enough_quota",
                asked=t("count.images", locale, count=images),
                left=t("count.images", locale, count=quota.remaining),
                period=t(f"pokemon.period.{quota.period}", locale),
                retry=relative(retry_at) if retry_at is not None else "—",
            )
        return UserFacingError(
            "error.rate_limited",
            limit=quota.limit if quota.limit is not None else 0,
            period=t(f"pokemon.period.{quota.period}", locale),
            retry=relative(retry_at) if retry_at is not None else "—",
        )

    def _row(self, request: GenerationRequest, origin: Origin) -> Any:
        if isinstance(origin, CommandOrigin):
            return new_job(
                request,
                user_id=origin.user_id,
                guild_id=origin.guild_id,
                channel_id=origin.interaction.channel_id,
                locale=origin.locale,
                images=request.count,  # each picture counts against the quota
                interaction_expires_at=origin.interaction.expires_at,
            )
        return new_job(  # 🔁, a reaction or a button: replying to the picture
            request,
            user_id=origin.user_id,
            guild_id=origin.guild_id,
            channel_id=origin.channel_id,
            locale=origin.locale,
            images=request.count,
            parent_job_id=origin.parent.id,
            reply_to_message_id=origin.message_id,
            source_picture=self._source_picture(request, origin),
        )

    @staticmethod
    def _source_picture(request: GenerationRequest, origin: VariationOrigin) -> int | None:
        """For a picture drawn from a picture: which picture of the message it replies to a
        later 🔁 reads again (the one a 🎨 button named; 1 for a reaction or 🔁)."""
        return origin.picture if request.is_img2img else None

    def _destination(self, origin: Origin) -> Destination:
        if isinstance(origin, CommandOrigin):
            return Destination(
                channel_id=origin.channel_id,
                guild_id=origin.guild_id,
                interaction=origin.interaction,
                handoff_text=t("pokemon.handoff", origin.locale),
            )
        return Destination(
            channel_id=origin.channel_id, guild_id=origin.guild_id, reply_to=origin.message_id
        )

    async def _refuse(self, origin: Origin, text: str) -> None:
        if isinstance(origin, CommandOrigin | ButtonOrigin):
            deferred = isinstance(origin, CommandOrigin) and origin.deferred
            try:
                await send_ephemeral(origin.interaction, text, after_public_defer=deferred)
            except discord.HTTPException as exc:
                log.warning("could not tell user=%s about a refusal: %s", origin.user_id, exc)
            return
        # A reaction cannot be answered privately: a short-lived notice that names the user
        # without pinging them (a refusal is not worth a notification).
        await channel_notice(
            self.client,
            origin.channel_id,
            origin.user_id,
            text,
            guild_id=origin.guild_id,
            delete_after=REFUSAL_SECONDS,
            ping=False,
        )

    async def _submit(
        self,
        job: JobRecord,
        request: GenerationRequest,
        dest: Destination,
        locale: str,
        origin: Origin | None,
        *,
        resumed: bool = False,
    ) -> ActiveJob:
        """Hand an admitted job to the generator and follow it. Refusals of the generator
        (full, stopped, unavailable) become `UserFacingError`s; the caller settles the row."""
        active = ActiveJob(
            job_id=job.id,
            user_id=job.user_id,
            guild_id=job.guild_id,
            locale=locale,
            request=request,
            dest=dest,
            parent_job_id=job.parent_job_id,
            throttle=EditThrottle(self.progress_interval),
            resumed=resumed,
            deferred_public=isinstance(origin, CommandOrigin) and origin.deferred,
            progress_message_id=job.progress_message_id,
        )
        try:
            handle = await self.generator.submit(job.id, job.user_id, request)
        except QueueFullError as exc:
            raise UserFacingError(
                "error.queue_full", code=exc.code, size=self.settings.pokemon_queue_size
            ) from None
        except WorkerStoppedError as exc:
            raise UserFacingError("error.shutting_down", code=exc.code) from None
        except GeneratorUnavailableError as exc:
            raise UserFacingError("error.generation_unavailable", code=exc.code) from None
        active.handle = handle
        self.active[job.id] = active
        self.tasks.spawn(self._follow(active), name=f"job-{job.id}")
        if self._row_watch is None or self._row_watch.done():
            self._row_watch = self.tasks.spawn(self._watch_rows(), name="row-watch")
        return active

    # ---- following a job ----------------------------------------------------------------

    async def _follow(self, active: ActiveJob) -> None:
        assert active.handle is not None
        try:
            if active.resumed:
                await self.connected.wait()  # then shown paced, like every cosmetic edit
            outcome: Done | Failed | Cancelled | None = None
            async for event in active.handle.events():
                if isinstance(event, Queued):
                    first = active.queued_at is None
                    active.queued_at = event
                    if first:
                        await self._show_queued(active)
                    else:  # the queue moved: the new place, throttled like progress edits
                        self._request_progress_edit(active)
                elif isinstance(event, Started):
                    active.running = self.tasks.spawn(self._mark_running(active))
                elif isinstance(event, Progress):
                    active.latest = event
                    self._request_progress_edit(active)
                else:
                    outcome = event
            if active.running is not None:
                await asyncio.shield(active.running)  # the row is `running` before it ends
            await self._conclude(active, outcome)
        except Exception as exc:
            await self._undelivered(active, exc)
        finally:
            active.finished = True
            self.active.pop(active.job_id, None)

    async def _conclude(self, active: ActiveJob, outcome: Done | Failed | Cancelled | None) -> None:
        if isinstance(outcome, Done):
            if await self._blocked_once_translated(active, outcome.result):
                return
            await self._deliver(active, outcome.result)
            return
        if isinstance(outcome, Failed) and isinstance(outcome.error, WorkerStoppedError):
            # The generator stopped before (or while) running it: a shutdown, or a fatal device
            # error that is about to restart the process. The row stays queued/running on disk
            # and the next start resumes it in the message shown here.
            log.info("job=%s left for resumption (%s)", active.job_id, outcome.error.code)
            return
        if (
            isinstance(outcome, Cancelled)
            and active.cancelled_by is None  # not a ✖: the shutdown's
            and (self.stopping or not self.accepting)
        ):
            log.info("job=%s left for resumption (cancelled by the shutdown)", active.job_id)
            return
        error = outcome.error if isinstance(outcome, Failed) else None
        await self._fail(active, error)

    async def _show_queued(self, active: ActiveJob) -> None:
        text = self._queued_text(active)
        if text is not None:
            await self._show(active, text)

    def _queued_text(self, active: ActiveJob) -> str | None:
        queued = active.queued_at
        if queued is None or active.latest is not None:
            return None  # already running: progress edits take over
        if queued.eta_seconds is not None:
            when = relative(discord.utils.utcnow() + dt.timedelta(seconds=queued.eta_seconds))
            return t("pokemon.queued", active.locale, position=queued.position, eta=when)
        return t("pokemon.queued_no_eta", active.locale, position=queued.position)

    def _request_progress_edit(self, active: ActiveJob) -> None:
        """Coalesce steps: edit now if the throttle allows, else once when it next allows."""
        if active.finished or active.edit_scheduled:
            return
        active.edit_scheduled = True
        if active.throttle.ready():
            self.tasks.spawn(self._edit_progress(active))
        else:
            asyncio.get_running_loop().call_later(
                active.throttle.wait_time(), lambda: self.tasks.spawn(self._edit_progress(active))
            )

    async def _edit_progress(self, active: ActiveJob) -> None:
        async with active.lock:
            active.edit_scheduled = False
            progress = active.latest
            if active.finished or (progress is None and active.queued_at is None):
                return
            if not active.throttle.ready():  # a queued-position edit slipped in meanwhile
                self._request_progress_edit(active)
                return
            if progress is None:  # still waiting: its new place in the queue
                text = self._queued_text(active)
                if text is not None:
                    await self._show_locked(active, text)
                return
            text = t(
                "pokemon.progress",
                active.locale,
                bar=progress_bar(progress.step, progress.total),
                step=progress.step,
                total=progress.total,
            )
            await self._show_locked(active, text)

    async def _show(self, active: ActiveJob, text: str) -> None:
        async with active.lock:
            if not active.finished:
                await self._show_locked(active, text)

    async def _show_locked(self, active: ActiveJob, text: str) -> None:
        if self.stopping:
            return  # shutting down: the job resumes (and shows itself) after the restart
        await self.pacer.wait(active.dest.channel_id)
        try:
            # ✖ under every queue place and progress step (each edit sets the buttons).
            view = cancel_buttons(active.job_id, active.locale)
            message = await send_safely(self.client, active.dest, content=text, view=view)
        except (discord.HTTPException, *TRANSIENT_ERRORS) as exc:
            # Cosmetic: the job is on the generator already and must not fail with its message.
            log.warning("job=%s: progress message failed: %s", active.job_id, exc)
            return
        finally:
            active.throttle.mark()
        await self._remember_message(active, message)

    async def _remember_message(self, active: ActiveJob, message: discord.Message) -> None:
        """Record the message that shows the job, so a restart edits (and reads back) it."""
        if active.dest.reply_to is None:
            active.dest.reply_to = message.id  # fallback replies point at what the user saw
        if message.id != active.progress_message_id:
            active.progress_message_id = message.id
            try:
                await self.store.jobs.set_message(active.job_id, progress_message_id=message.id)
            except StorageError as exc:  # bookkeeping only: the picture still goes out
                log.warning("job=%s: progress message id not recorded: %s", active.job_id, exc)

    async def _post_placeholder(self, active: ActiveJob) -> None:
        """Before a picture would go out as a new channel message (no message of the job is
        known, the token is too old, or the job's message was deleted meanwhile), post that
        message without it and record its id; the picture then becomes an edit of a message
        the row names.

        A new message's id is only known once Discord answers, so a picture posted directly
        and a process that died before recording the answer would leave the row pointing at
        the handed-over original response (or at nothing, for a 🔁): the restart would find
        no picture there, draw the job again and post it a second time. An edit of a
        recorded message is read back after a restart instead (`_read_back_resumed`).
        """
        try:
            message = await send_safely(
                self.client,
                active.dest,
                content=t("pokemon.posting", active.locale),
                retry_delays=self.retry_delays,
            )
        except (discord.HTTPException, *TRANSIENT_ERRORS) as exc:
            log.warning(
                "job=%s: placeholder not posted (%s); posting the picture", active.job_id, exc
            )
            return
        await self._remember_message(active, message)

    async def _mark_running(self, active: ActiveJob) -> None:
        # Bookkeeping only: a row left `queued` still becomes `done` (or resumes) later, so a
        # database that refuses writes right now must not stop the picture being delivered.
        try:
            await self.store.jobs.mark_running(active.job_id)
        except StorageError as exc:
            log.warning("job=%s: running state not recorded: %s", active.job_id, exc)

    # ---- outcomes -----------------------------------------------------------------------

    async def _blocked_once_translated(self, active: ActiveJob, result: GenerationResult) -> bool:
        """The server's blocklist, checked again on the Japanese an English prompt became:
        admission saw only what the user typed. A picture drawn from a blocked word is never
        posted; the job ends refused (not counted), and the word is not repeated."""
        first = result.first
        request = active.request
        used = (first.prompt_used, first.negative_used)
        if active.guild_id is None or used == (request.prompt, request.negative_prompt):
            return False
        words = await self.store.blocklist.words(active.guild_id)
        if blocked_word(used, words) is None:
            return False
        await self.store.jobs.mark_failed(active.job_id, "prompt_blocked", fault="rejected")
        log.info("job=%s: its translation holds a blocked word; not posted", active.job_id)
        await self._say_ended(active, t("error.prompt_blocked", active.locale))
        return True

    async def _deliver(self, active: ActiveJob, result: GenerationResult) -> None:
        row = await self.store.jobs.get(active.job_id)
        if row is None or row.state == "cancelled":
            # Cancelled or deleted from outside this process (`pokemon-bot forget-user`):
            # the picture is dropped, never posted.
            log.info("job=%s was cancelled or deleted meanwhile; not posting it", active.job_id)
            async with active.lock:
                active.finished = True
                with contextlib.suppress(discord.HTTPException, *TRANSIENT_ERRORS):
                    if active.dest.message is not None:
                        await active.dest.message.delete()
                    elif active.dest.interaction is not None and active.dest.token_usable():
                        await active.dest.interaction.delete_original_response()
            return
        quota = None
        if active.guild_id is not None:
            try:
                quota = await self.store.limits.quota(active.guild_id, active.user_id)
            except StorageError as exc:  # the picture matters more than the quota line
                log.warning("job=%s: quota not shown: %s", active.job_id, exc)
        request, first = active.request, result.first
        # English asked to be translated reached the model as typed (the translation model
        # is not available): delivered with a note, and not counted.
        refund = untranslated(request, first.prompt_used, first.negative_used)
        if refund and quota is not None:
            quota = without_job(quota, request.count)
        seeds = [image.seed for image in result.images]
        # Several pictures: one attachment each, named by its seed, shown as a gallery.
        files = (
            [(RESULT_FILENAME, first.png)]
            if len(result.images) == 1
            else [(f"pokemon-{image.seed}.png", image.png) for image in result.images]
        )
        embed = result_embed(
            active.locale,
            prompt=request.prompt,
            negative_prompt=request.negative_prompt,
            seeds=seeds,
            steps=first.steps,
            seconds=result.run_seconds,
            user_id=active.user_id,
            quota=quota,
            truncated=any(image.truncated for image in result.images),
            parent_job_id=active.parent_job_id,
            # The text the model was given, when translation changed it (or could not).
            used=translation_shown(request, first.prompt_used, first.negative_used),
            untranslated=refund,
            strength=request.strength if request.is_img2img else None,
            withheld=request.count - len(result.images),
            guidance=request.guidance,
            sampler=sampler_name(request.scheduler),
            size=(first.width, first.height),
            model=result.model or self.settings.pokemon_model,  # the model that drew it
        )
        # Both texts are stored: the request keeps the user's, the outcome what was drawn,
        # so 🔁 and 🎨 reuse the translation (see `bot.jobs.request_as_drawn`).
        outcome: dict[str, JSON] = {
            "seeds": list[JSON](seeds),
            "prompt_used": first.prompt_used,
            "negative_used": first.negative_used,
            "model": result.model or self.settings.pokemon_model,
        }
        async with active.lock:
            active.finished = True  # no progress edit may land after the image

            async def show_picture(new_post: bool) -> discord.Message:
                return await send_safely(
                    self.client,
                    active.dest,
                    content=None,
                    embed=embed,
                    files=files,
                    view=result_buttons(active.job_id, active.locale, pictures=len(files)),
                    retry_delays=self.retry_delays,
                    new_post=new_post,
                )

            try:
                try:
                    message = await show_picture(new_post=False)
                except NoMessageToEdit:  # no message of the job to edit: placeholder first
                    await self._post_placeholder(active)
                    # It becomes the picture's message; if it could not be posted, the
                    # picture is posted itself.
                    message = await show_picture(new_post=True)
            except TRANSIENT_ERRORS:
                # Every try failed in a way that may have landed: look before giving up.
                landed = await self._read_back(active)
                if landed is None:
                    raise
                log.warning("job=%s: the upload landed although its answer was lost", active.job_id)
                message = landed
            active.delivered = True
        metrics.record_delivery((discord.utils.utcnow() - row.created_at).total_seconds())
        await self._finish_delivered(active.job_id, message, outcome, refund=refund)

    async def _finish_delivered(
        self,
        job_id: int,
        message: discord.Message | discord.PartialMessage,
        outcome: dict[str, JSON] | None = None,
        *,
        refund: bool = False,
    ) -> None:
        """A picture is on Discord in `message`: record it (with what generation reported, when
        known; `refund`: not counted), add 🔁, log."""
        await self._record(
            job_id,
            lambda: self.store.jobs.mark_done(
                job_id, result_message_id=message.id, outcome=outcome, refund=refund
            ),
        )
        try:
            await message.add_reaction(REGENERATE_EMOJI)
        except (discord.HTTPException, *TRANSIENT_ERRORS) as exc:
            log.warning("job=%s: could not add %s: %s", job_id, REGENERATE_EMOJI, exc)
        log.info("job=%s delivered to message=%s", job_id, message.id)

    async def _read_back(self, active: ActiveJob) -> discord.Message | None:
        """The job's message as Discord has it now, if it carries a picture; else None.

        The job's channel message if it has one; else the original response, through the
        interaction while its token lasts, and through the channel (its id was recorded at
        the defer: the bot's own message) when the token is spent or refused."""
        dest = active.dest
        channel = self.client.get_partial_messageable(dest.channel_id, guild_id=dest.guild_id)
        reads: list[Callable[[], Awaitable[discord.Message]]] = []
        if dest.message is not None:
            reads.append(partial(channel.fetch_message, dest.message.id))
        else:
            interaction = dest.interaction
            if interaction is not None and not interaction.is_expired():
                reads.append(interaction.original_response)
            if active.progress_message_id is not None:
                reads.append(partial(channel.fetch_message, active.progress_message_id))
        for read in reads:
            try:
                message = await read()
            except (discord.HTTPException, *TRANSIENT_ERRORS) as exc:
                log.info("job=%s: could not read its message back: %s", active.job_id, exc)
                continue
            return message if message.attachments else None
        return None

    async def _record(self, job_id: int, write: Callable[[], Awaitable[object]]) -> None:
        """Record a delivered job's outcome. If the database refuses (a full disk), keep
        trying in the background: a row left `running` would be drawn again after a restart
        (where reading its message back would still save it from being posted twice)."""
        try:
            await write()
        except StorageError as exc:
            log.warning(
                "job=%s: outcome not recorded (%s); retrying in the background", job_id, exc
            )
            self._unrecorded[job_id] = write
            self.tasks.spawn(self._record_later(job_id, write), name=f"record-{job_id}")

    async def _record_later(self, job_id: int, write: Callable[[], Awaitable[object]]) -> None:
        delay = self.record_retry_delay
        while job_id in self._unrecorded:
            await asyncio.sleep(delay)
            try:
                await write()
            except StorageError:
                delay = min(delay * 2, 60.0)
                continue
            self._unrecorded.pop(job_id, None)
            log.info("job=%s: outcome recorded after a retry", job_id)

    async def _undelivered(self, active: ActiveJob, exc: Exception) -> None:
        """The picture could not be posted (no permission, Discord down, bot removed) or its
        outcome not recorded: settle the row, and tell the user if any route still works.
        Nothing is deleted here: the original response may hold the picture."""
        if isinstance(exc, discord.Forbidden | discord.NotFound):
            log.warning("job=%s: could not deliver: %s", active.job_id, exc)
        else:
            log.error("job=%s: delivery failed", active.job_id, exc_info=exc)
        try:
            if active.delivered:
                # On Discord already: never fail it (a restart would not resume it either).
                await self._record(active.job_id, lambda: self.store.jobs.mark_done(active.job_id))
            else:
                await self.store.jobs.mark_failed(active.job_id, "delivery_failed", fault="ours")
        except Exception:
            log.exception("job=%s: could not record the outcome", active.job_id)
        if active.delivered:
            return
        await self._tell_failure(active, t("error.gen.delivery_failed", active.locale))

    async def _fail(self, active: ActiveJob, error: GenerationError | None) -> None:
        if error is None and active.cancelled_by is not None:
            await self._cancelled_by_user(active, active.cancelled_by)
            return
        if error is None:
            await self.store.jobs.mark_cancelled(active.job_id)
            code = "cancelled"
        else:
            await self.store.jobs.mark_failed(
                active.job_id, error.code, fault="ours" if error.ours else "user"
            )
            code = error.code
        log.info("job=%s ended (%s); telling user=%s", active.job_id, code, active.user_id)
        key = f"error.gen.{code}"
        text = t(key if key in catalog("en") else "error.gen.generation_failed", active.locale)
        await self._say_ended(active, text)

    async def _say_ended(self, active: ActiveJob, text: str) -> None:
        """Tell the user why their job ended without a picture, where they are looking."""
        async with active.lock:
            active.finished = True
            dest = active.dest
            if dest.message is None and dest.token_usable() and dest.interaction is not None:
                # Nothing was drawn: the "Drawing…" response goes, the reason comes privately.
                await send_ephemeral(
                    dest.interaction, text, after_public_defer=active.deferred_public
                )
                return
            if dest.message is not None and active.resumed:
                # The message the user has had since before the restart says it, in place.
                with contextlib.suppress(discord.HTTPException, *TRANSIENT_ERRORS):
                    await dest.message.edit(
                        content=f"<@{active.user_id}> {text}", embed=None, view=None
                    )
                    return
            if dest.message is not None:
                with contextlib.suppress(discord.HTTPException, *TRANSIENT_ERRORS):
                    await dest.message.delete()
        await self._tell_failure(active, text, private_first=False)

    async def _tell_failure(
        self, active: ActiveJob, text: str, *, private_first: bool = True
    ) -> None:
        dest = active.dest
        if (
            private_first
            and dest.message is None
            and dest.interaction is not None
            and dest.token_usable()
        ):
            # Said in the original response itself (edited, never deleted: if an upload
            # landed there after all, the user still has the picture's message).
            try:
                await dest.interaction.edit_original_response(content=text, embed=None, view=None)
            except (discord.HTTPException, *TRANSIENT_ERRORS) as notice_error:
                log.info("job=%s: notice failed: %s", active.job_id, notice_error)
            else:
                return
        await channel_notice(
            self.client,
            dest.channel_id,
            active.user_id,
            text,
            guild_id=dest.guild_id,
            reply_to=dest.reply_to,
        )

    async def _settle(self, job_id: int, code: str, fault: str) -> None:
        """A job admitted but never handed to the generator: fail it so it does not stay queued
        on disk (`rejected` and `ours` do not count against the quota)."""
        try:
            await self.store.jobs.mark_failed(job_id, code, fault=fault)  # pyright: ignore[reportArgumentType]
        except Exception:
            log.exception("could not settle job=%s", job_id)

    # ---- resume after a restart ---------------------------------------------------------

    async def resume(self, *, max_age: float) -> tuple[int, int]:
        """Queue again the jobs the last process left queued or running; returns (resumed or
        being read back, refused now). Fast and silent: no Discord call is made here, so the
        gateway connects at once; messages are updated once it is connected, paced per channel.

        A job whose message is known (every slash job, and a 🔁 that showed its place) may
        already carry its picture, whatever its state says: the `running` write is
        bookkeeping only, and the process may have died before `done` was recorded. Those
        are read back once the gateway is up (`_read_back_resumed`), before anything is drawn
        again. Jobs with no message are queued at once. A job the generator cannot take yet
        (no worker online, Redis down) stays on disk and is offered again (`_offer_waiting`)."""
        self.resume_max_age = max_age
        resumed = refused = 0
        to_read: list[JobRecord] = []
        for job in await self.store.jobs.pending():
            if job.progress_message_id is not None:
                to_read.append(job)
                resumed += 1
                continue
            outcome = await self._resubmit(job)
            if outcome == "stopped":
                break
            if outcome == "refused":
                refused += 1
            elif outcome != "skipped":
                resumed += 1
        if to_read:
            self.tasks.spawn(self._read_back_resumed(to_read), name="resume-read-back")
        if resumed or refused:
            log.info(
                "resuming %d jobs (%d read back first), refused %d (too old or no longer valid)",
                resumed,
                len(to_read),
                refused,
            )
        return resumed, refused

    def _expired(self, job: JobRecord) -> bool:
        created = job.created_at if job.created_at.tzinfo else job.created_at.replace(tzinfo=dt.UTC)
        return (discord.utils.utcnow() - created).total_seconds() > self.resume_max_age

    async def _read_back_resumed(self, jobs: list[JobRecord]) -> None:
        """Jobs from the last process whose message is known, oldest first: once the gateway
        is up, read their messages (a few at a time), then, in order, record as done each one
        whose picture had landed, and queue the others again."""
        await self.connected.wait()
        if self.stopping or not self.accepting:
            return  # shutting down before the gateway came up: they stay on disk
        limit = asyncio.Semaphore(RESUME_READS_AT_ONCE)
        async with asyncio.TaskGroup() as group:
            reads = [group.create_task(self._resumed_message(job, limit)) for job in jobs]
            for n, (job, read) in enumerate(zip(jobs, reads, strict=True)):
                message = await read
                try:
                    if message is not None and message.attachments:
                        log.info("job=%s: its picture had landed before the restart", job.id)
                        await self._finish_delivered(job.id, message)
                        continue
                    if await self._resubmit(job) == "stopped":
                        for later in reads[n + 1 :]:
                            later.cancel()
                        return  # this job and the rest stay on disk for the next start
                except Exception:  # one job's trouble (a locked database) stops no other
                    log.exception("job=%s: could not resume it", job.id)

    async def _resumed_message(
        self, job: JobRecord, limit: asyncio.Semaphore
    ) -> discord.Message | None:
        """A resumed job's message as Discord has it now (None: gone, or unreadable now)."""
        assert job.progress_message_id is not None
        channel = self.client.get_partial_messageable(job.channel_id or 0, guild_id=job.guild_id)
        async with limit:
            try:
                return await channel.fetch_message(job.progress_message_id)
            except discord.NotFound:
                return None
            except (discord.HTTPException, *TRANSIENT_ERRORS) as exc:
                log.info("job=%s: could not read its message before resuming: %s", job.id, exc)
                return None

    async def _resubmit(self, job: JobRecord) -> ResumeOutcome:
        """Queue a job from the last process again, if it still may run; behind those already
        waiting for the generator, to keep their order."""
        if not self._waiting:
            outcome = await self._offer(job)
            if outcome != "unavailable":
                return outcome
        self._wait_for_generator(job)
        return "waiting"

    async def _offer(self, job: JobRecord) -> ResumeOutcome:
        """Hand a job from the last process to the generator, as its row says now: a ✖ or
        /privacy may have cancelled it while its message was read back or while it waited.
        Too old, or no longer valid under today's settings: refused and its user told."""
        if not self.accepting:
            return "stopped"  # shutting down: it stays on disk for the next start
        row = await self.store.jobs.get(job.id)
        if row is None or row.state not in ("queued", "running"):
            log.info("job=%s was cancelled or deleted before it resumed; not drawn", job.id)
            return "skipped"
        if self._expired(row):
            await self._refuse_resumed(row, "expired", t("pokemon.resume_expired", row.locale))
            return "refused"
        try:
            request = check_request(self.settings, request_from_job(row))
            await self.check_blocklist(request, row.guild_id)  # words blocked since are obeyed
            channel = self.client.get_partial_messageable(
                row.channel_id or 0, guild_id=row.guild_id
            )
            message = (
                channel.get_partial_message(row.progress_message_id)
                if row.progress_message_id is not None
                else None
            )
            dest = Destination(
                channel_id=row.channel_id or 0,
                guild_id=row.guild_id,
                message=message,
                # A 🔁 variation replies to the picture reacted to; a slash job's fallback reply
                # points at the message the user already had.
                reply_to=row.reply_to_message_id or row.progress_message_id,
            )
            await self._submit(row, request, dest, row.locale, None, resumed=True)
        except UserFacingError as exc:
            if exc.code == WorkerStoppedError.code:
                log.info("generator stopped while resuming; job=%s and later ones left", job.id)
                return "stopped"
            if exc.code == GeneratorUnavailableError.code:
                return "unavailable"
            await self._refuse_resumed(row, exc.code, exc.localized(row.locale))
            return "refused"
        return "queued"

    def _wait_for_generator(self, job: JobRecord) -> None:
        log.info("job=%s: generation is unavailable; it stays queued and is offered again", job.id)
        self._waiting.append(job)
        if self._offering is None or self._offering.done():
            self._offering = self.tasks.spawn(self._offer_waiting(), name="resume-waiting")

    async def _offer_waiting(self) -> None:
        """Offer the resumed jobs the generator could not take (a bot and its workers started
        together: none has announced itself yet; Redis down) again, oldest first, waiting 1 s
        doubling to 30 s between rounds, until each is taken, refused (too old by now, no
        longer valid), cancelled, or the service stops (they stay on disk for the next start).
        Meanwhile their rows stay queued/running and their users are told nothing: a new
        command is still refused at once, but these were accepted already."""
        delay = RESUME_RETRY_FIRST
        while self._waiting:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ending.wait(), delay)
            if self._ending.is_set():
                log.info("%d resumed jobs left on disk for the next start", len(self._waiting))
                self._waiting.clear()
                return
            delay = min(delay * 2, RESUME_RETRY_MAX)
            while self._waiting:
                job = self._waiting[0]
                try:
                    outcome = await self._offer(job)
                except StorageError as exc:  # a locked or full database: try again later
                    log.warning("job=%s: could not resume it yet: %s", job.id, exc)
                    outcome = "unavailable"
                except Exception:
                    log.exception("job=%s: could not resume it", job.id)
                    outcome = "skipped"
                if outcome == "unavailable":
                    break
                self._waiting.pop(0)
                if outcome == "stopped":
                    self._waiting.clear()
                    return
                if outcome == "queued":
                    log.info("job=%s: taken by the generator after waiting", job.id)

    async def _refuse_resumed(self, job: JobRecord, code: str, text: str) -> None:
        """A job from the last process that will not run: record it (not counted), and say so
        in its message once the gateway is up."""
        await self._settle(job.id, code, "ours" if code == "expired" else "rejected")
        self.tasks.spawn(self._tell_resumed(job, text), name=f"resume-notice-{job.id}")

    async def _tell_resumed(self, job: JobRecord, text: str) -> None:
        await self.connected.wait()
        channel_id = job.channel_id or 0
        await self.pacer.wait(channel_id)
        if job.progress_message_id is not None:
            channel = self.client.get_partial_messageable(channel_id, guild_id=job.guild_id)
            try:
                await channel.get_partial_message(job.progress_message_id).edit(
                    content=f"<@{job.user_id}> {text}", view=None
                )
                return
            except (discord.HTTPException, *TRANSIENT_ERRORS) as exc:
                log.info("job=%s: could not edit its message: %s", job.id, exc)
        await channel_notice(
            self.client,
            channel_id,
            job.user_id,
            text,
            guild_id=job.guild_id,
            reply_to=job.reply_to_message_id,
        )

    # ---- cancel and shutdown ------------------------------------------------------------

    async def cancel(self, job_id: int, by_user_id: int) -> bool:
        """✖: cancel a queued job (it never runs) or a running one (it stops within a step
        and nothing is decoded). The caller checked that `by_user_id` may (the requester or
        an admin). The row ends `cancelled` with who did it (never counted against a quota)
        and the job's message says so. Works after a restart too: a job on disk that no
        generator holds any more is marked cancelled and its message edited. False when the
        job had already finished."""
        active = self.active.get(job_id)
        if active is not None and active.handle is not None:
            if active.finished or active.handle.done:
                return False
            active.cancelled_by = by_user_id
            if not active.handle.cancel():
                active.cancelled_by = None
                return False
            log.info("job=%s cancel requested by user=%s", job_id, by_user_id)
            return True  # _follow sees Cancelled and calls _cancelled_by_user
        handle = self.generator.handle(job_id)
        if handle is not None:  # held by the generator but not followed here: let it end
            return handle.cancel() and await self.store.jobs.mark_cancelled(job_id, by=by_user_id)
        job = await self.store.jobs.get(job_id)
        if job is None or not await self.store.jobs.mark_cancelled(job_id, by=by_user_id):
            return False
        log.info("job=%s (on disk only) cancelled by user=%s", job_id, by_user_id)
        if job.progress_message_id is not None:
            channel = self.client.get_partial_messageable(
                job.channel_id or 0, guild_id=job.guild_id
            )
            text = t("job.cancelled_by", job.locale, user=f"<@{by_user_id}>")
            with contextlib.suppress(discord.HTTPException, *TRANSIENT_ERRORS):
                await channel.get_partial_message(job.progress_message_id).edit(
                    content=text, embed=None, view=None
                )
        return True

    async def _cancelled_by_user(self, active: ActiveJob, by_user_id: int) -> None:
        """A ✖ stopped this job: record who, and say it in the job's own message (mentions
        in it never ping: every message goes out with no allowed mentions)."""
        await self.store.jobs.mark_cancelled(active.job_id, by=by_user_id)
        log.info("job=%s cancelled by user=%s", active.job_id, by_user_id)
        text = t("job.cancelled_by", active.locale, user=f"<@{by_user_id}>")
        async with active.lock:
            active.finished = True
            try:
                await send_safely(self.client, active.dest, content=text, embed=None, view=None)
            except (discord.HTTPException, *TRANSIENT_ERRORS) as exc:
                log.info("job=%s: could not say it was cancelled: %s", active.job_id, exc)

    async def queue_places(self, user_id: int) -> QueuePlaces:
        """`/queue`: this user's unfinished jobs, oldest first, with their place (from the
        latest queue event of each) and the generator's queue as a whole."""
        places: list[QueuePlace] = []
        for job in await self.store.jobs.by_user_pending(user_id):
            active = self.active.get(job.id)
            if active is None:
                places.append(QueuePlace(job.id, None, None))
            elif active.latest is not None or job.state == "running":
                places.append(QueuePlace(job.id, 0, None))
            elif active.queued_at is not None:
                queued = active.queued_at
                places.append(QueuePlace(job.id, queued.position, queued.eta_seconds))
            else:
                places.append(QueuePlace(job.id, None, None))
        status = await self.generator.status()
        return QueuePlaces(places, queued=status.queued, running=status.running)

    async def forget_user(self, user_id: int) -> tuple[list[int], int]:
        """`/privacy`'s delete: stop the user's jobs this process runs (`cancel_user_jobs`),
        then cancel and delete their data in one storage operation
        (`PrivacyRepository.forget_user`, as `pokemon-bot forget-user` does). Returns the job
        ids cancelled and the rows deleted; other users' data is untouched."""
        stopped = await self.cancel_user_jobs(user_id)
        forgotten = await self.store.privacy.forget_user(user_id)
        return sorted({*stopped, *forgotten.cancelled}), forgotten.deleted

    async def cancel_user_jobs(self, user_id: int) -> list[int]:
        """The generator's side of forgetting a user: cancel every job of `user_id` this
        process follows (a queued one leaves the queue, never drawn; a running one stops within
        a step, never posted) and wait for them to end. Their rows are the storage's
        (`PrivacyRepository.forget_user`). Returns the ids cancelled."""
        mine = [
            active
            for active in self.active.values()
            if active.user_id == user_id and active.handle is not None and not active.finished
        ]
        for active in mine:
            assert active.handle is not None
            active.handle.cancel()
        for active in mine:
            assert active.handle is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(active.handle.wait(), CANCEL_WAIT_SECONDS)
        return [active.job_id for active in mine]

    async def _watch_rows(self) -> None:
        """While jobs are in hand: when another process changed the database (`pokemon-bot
        forget-user` cancels and deletes a user's jobs), cancel each job whose row is no longer
        queued or running, so a queued one leaves the generator's queue and is never drawn. A
        job already drawing stops within a step; one that finishes first is never posted
        (`_deliver` reads the row). Costs one `PRAGMA data_version` a second, a query only
        when something changed. Ends when no job is left; `_submit` starts it again."""
        seen: int | None = None
        while self.active and not self.stopping:
            await asyncio.sleep(self.row_watch_interval)
            try:
                version = await self.store.data_version()
                if version == seen:
                    continue
                live = [
                    active
                    for active in self.active.values()
                    if active.handle is not None and not active.finished and not active.handle.done
                ]
                pending: set[int] = (
                    {job.id for job in await self.store.jobs.pending()} if live else set()
                )
            except StorageError as exc:
                log.warning("could not check for jobs cancelled elsewhere: %s", exc)
                continue
            seen = version
            for active in live:
                handle = active.handle
                if active.job_id in pending or handle is None or handle.done or active.finished:
                    continue
                log.info(
                    "job=%s was cancelled or deleted by another process; stopping it",
                    active.job_id,
                )
                handle.cancel()

    def stop_intake(self) -> None:
        """New commands and 🔁 are refused from now on; running work carries on."""
        self.accepting = False
        self._ending.set()

    async def drain(self, within: float | None = None) -> None:
        """Wait for deliveries in flight (after the generator stopped) so none is cut off, then
        try once more to record outcomes the database refused (see `_record`)."""
        self.stopping = True
        self._ending.set()
        self.connected.set()  # a resumed job still waiting to show itself may leave now
        await self.tasks.wait(within)
        for job_id, write in list(self._unrecorded.items()):
            try:
                await write()
                self._unrecorded.pop(job_id, None)
            except StorageError as exc:
                log.error("job=%s: outcome still not recorded at shutdown: %s", job_id, exc)
        await self.tasks.close()
