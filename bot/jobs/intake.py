"""Intake: the one path every new job takes, whatever its origin: validate against the
settings in force now, check the server's blocklist, admit (rate limit and pending cap, which
writes the `queued` row), record the message it shows in, submit to the generator. A job from
the last process (`ResumedOrigin`) takes the same checks and the same submit; it was admitted
already. Intake shows nothing itself: a refusal is the origin's to show (`origin.refuse`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import discord

from bot.errors import UserFacingError, new_error_id
from bot.i18n import t
from bot.jobs.rows import request_from_job
from bot.jobs.state import ActiveJob
from bot.messaging import TRANSIENT_ERRORS, EditThrottle, relative
from bot.moderation import blocked_word
from bot.permissions import may_use_pokemon
from bot.sources import read_result_picture
from bot.validation import check_request
from generation.errors import (
    GeneratorUnavailableError,
    QueueFullError,
    UpscalerOffError,
    WorkerStoppedError,
)
from generation.types import UPSCALE
from storage import StorageError

if TYPE_CHECKING:
    from bot.command_permissions import CommandPermissions
    from bot.jobs.state import JobContext
    from bot.origins import NewOrigin, Origin, VariationOrigin
    from generation.types import GenerationRequest
    from storage import Admission, JobRecord

log = logging.getLogger(__name__)

# Reads a job's source picture (image-to-image), checked; raises UserFacingError (bot.sources).
SourceReader = Callable[[], Awaitable[bytes]]
# Follows a job the generator took (`Follower.follow`), spawned by `submit`.
Follow = Callable[[ActiveJob], Coroutine[Any, Any, None]]


class Intake:
    def __init__(
        self, ctx: JobContext, *, follow: Follow, on_submitted: Callable[[], None]
    ) -> None:
        self.ctx = ctx
        self._follow = follow
        self._on_submitted = on_submitted  # the row watcher starts while jobs are in hand
        # (user, parent job) pairs being admitted right now: two quick 🔁 from one user must
        # not both pass the pending check before either row exists.
        self._admitting: set[tuple[int, int]] = set()
        # /pokemon's Integrations settings (channels, roles), obeyed by 🔁 and 🎨 (set by the
        # bot; None: not checked).
        self.command_permissions: CommandPermissions | None = None

    async def start(
        self, request: GenerationRequest, origin: NewOrigin, *, source: SourceReader | None = None
    ) -> JobRecord | None:
        """Validate, admit, submit and show a new job; None when it was refused (the refusal
        was shown to the user and no row is left unsettled).

        `source` (image-to-image): reads the source picture after the origin is prepared (the
        defer) and before the admission, so a picture that cannot be used is refused without
        charging anything."""
        ctx = self.ctx
        job: JobRecord | None = None
        try:
            request = check_request(ctx.settings, request, source_coming=source is not None)
            if not ctx.accepting:
                raise UserFacingError("error.shutting_down")
            await origin.prepare()
            await self.check_blocklist(request, origin.guild_id)
            if source is not None:  # kept in the request for the job's life, never stored
                request = replace(request, init_image=await source())
            admission = await ctx.store.admit(origin.new_row(request))
            if not admission.admitted or admission.job is None:
                raise self.refusal(admission, origin.locale, images=request.count)
            job = admission.job
            shown = origin.shown_message_id
            if shown is not None:
                await ctx.store.jobs.set_message(job.id, progress_message_id=shown)
                job = replace(job, progress_message_id=shown)
            await self.submit(job, request, origin)
        except UserFacingError as exc:
            if job is not None:
                await self.settle(job.id, exc.code, "rejected")
            log.info("refused a job for user=%s: %s", origin.user_id, exc.key)
            await origin.refuse(ctx.client, exc.localized(origin.locale))
            return None
        except StorageError as exc:
            # The disk is full, the file is locked for too long: the operator must act, the
            # user can only wait. One line in the log says which.
            log.error("storage failed while starting a job for user=%s: %s", origin.user_id, exc)
            if job is not None:
                await self.settle(job.id, "storage", "ours")
            await origin.refuse(ctx.client, t("error.storage_unavailable", origin.locale))
            return None
        except BaseException as exc:
            if job is not None:
                await self.settle(job.id, "internal", "ours")
            if origin.answers_unexpected and isinstance(exc, Exception):
                error_id = new_error_id()
                log.error("error id=%s starting a job", error_id, exc_info=exc)
                await origin.refuse(
                    ctx.client, t("error.unexpected", origin.locale, error_id=error_id)
                )
                return None
            raise
        log.info(
            "job=%s queued by user=%s guild=%s via %s steps=%s seed=%s",
            job.id,
            origin.user_id,
            origin.guild_id,
            origin.describe(),
            request.steps,
            request.seed,
        )
        return job

    async def start_child(
        self, origin: VariationOrigin, request: GenerationRequest, source: SourceReader | None
    ) -> JobRecord | None:
        """Start a job made from `origin.parent` (🔁, 🎨), once at a time per (user, parent): a
        repeat while one is being admitted or drawn is told so (`origin.answers_duplicates`)."""
        key = (origin.user_id, origin.parent.id)
        if key in self._admitting:
            await self._already_drawing(origin, None)
            return None
        self._admitting.add(key)
        try:
            if not await self.may_use_command(origin):
                await origin.refuse(self.ctx.client, t("error.command_disabled", origin.locale))
                return None
            if request_from_job(origin.parent).kind == UPSCALE:
                # 🔁 and 🎨 start from a drawing: an upscale has no prompt of its own.
                await origin.refuse(self.ctx.client, t("upscale.not_a_drawing", origin.locale))
                return None
            pending = await self.ctx.store.jobs.find_pending(
                origin.user_id, parent_job_id=origin.parent.id
            )
            if pending is not None:  # already drawing one from this result for this user
                await self._already_drawing(origin, pending)
                return None
            if origin.parent.prompt_blanked:  # by the retention policy
                await origin.refuse(self.ctx.client, t("regen.prompt_gone", origin.locale))
                return None
            return await self.start(request, origin, source=source)
        finally:
            self._admitting.discard(key)

    async def _already_drawing(self, origin: VariationOrigin, pending: JobRecord | None) -> None:
        """Tell a repeated press what is already happening, with the place in the queue when
        known (`pending`: the job drawing, None while it is still being admitted)."""
        if not origin.answers_duplicates:
            return  # a repeated reaction stays silent
        active = self.ctx.active.get(pending.id) if pending is not None else None
        position = None
        if active is not None and pending is not None:
            position, _ = active.place(running=pending.state == "running")
        text = self.ctx.presenter.already_drawing_text(origin.locale, position)
        await origin.refuse(self.ctx.client, text)

    def result_picture(
        self, origin: VariationOrigin, message_id: int, picture: int = 1
    ) -> SourceReader:
        """Reads picture `picture` (1-based) of message `message_id` in the origin's channel."""
        client = self.ctx.client

        async def read() -> bytes:
            channel = client.get_partial_messageable(origin.channel_id, guild_id=origin.guild_id)
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

    async def check(self, request: GenerationRequest, guild_id: int | None) -> GenerationRequest:
        """A request admitted earlier (a resumed job), checked again against today's settings
        and blocklist; raises `UserFacingError`."""
        request = check_request(self.ctx.settings, request)
        await self.check_blocklist(request, guild_id)
        return request

    async def check_blocklist(self, request: GenerationRequest, guild_id: int | None) -> None:
        """Refuse a prompt or negative prompt holding a word this server blocked (compared
        after `bot.moderation.normalize`). The refusal never repeats the word."""
        if guild_id is None:
            return
        words = await self.ctx.store.blocklist.words(guild_id)
        if blocked_word((request.prompt, request.negative_prompt), words) is not None:
            raise UserFacingError("error.prompt_blocked")

    def refusal(self, admission: Admission, locale: object, *, images: int = 1) -> UserFacingError:
        """The user-facing reason an admission of a job of `images` pictures was refused.
        When no time is known at which more pictures are possible, the text names none."""
        if admission.reason == "blocked":
            return UserFacingError("error.blocked")
        if admission.reason == "pending":
            return UserFacingError(
                "error.pending_cap", max=self.ctx.settings.pokemon_user_max_pending
            )
        quota = admission.quota
        retry_at = admission.retry_at or quota.reset_at
        retry = relative(retry_at) if retry_at is not None else ""
        suffix = "" if retry else "_no_retry"  # no time known: a text that names none
        period = t(f"pokemon.period.{quota.period}", locale)
        if quota.remaining:  # some left, fewer than asked (several pictures): say how many
            return UserFacingError(
                f"error.not_enough_quota{suffix}",
                code="not_enough_quota",
                asked=t("count.images", locale, count=images),
                left=t("count.images", locale, count=quota.remaining),
                period=period,
                retry=retry,
            )
        return UserFacingError(
            f"error.rate_limited{suffix}",
            code="rate_limited",
            limit=quota.limit if quota.limit is not None else 0,
            period=period,
            retry=retry,
        )

    async def submit(self, job: JobRecord, request: GenerationRequest, origin: Origin) -> None:
        """Hand an admitted job to the generator and follow it. Refusals of the generator
        (full, stopped, unavailable) become `UserFacingError`s; the caller settles the row."""
        ctx = self.ctx
        active = ActiveJob(
            job_id=job.id,
            user_id=job.user_id,
            guild_id=job.guild_id,
            locale=origin.locale,
            request=request,
            dest=origin.destination(ctx.client),
            parent_job_id=job.parent_job_id,
            throttle=EditThrottle(ctx.progress_interval),
            resumed=origin.resumed,
            deferred_public=origin.deferred_public,
            progress_message_id=job.progress_message_id,
            notes=origin.notes,
        )
        try:
            handle = await ctx.generator.submit(job.id, job.user_id, request)
        except QueueFullError as exc:
            raise UserFacingError(
                "error.queue_full", code=exc.code, size=ctx.settings.pokemon_queue_size
            ) from None
        except WorkerStoppedError as exc:
            raise UserFacingError("error.shutting_down", code=exc.code) from None
        except UpscalerOffError as exc:  # off, not loaded, or on remote workers: say which
            raise UserFacingError(f"error.{exc.code}", code=exc.code) from None
        except GeneratorUnavailableError as exc:
            raise UserFacingError("error.generation_unavailable", code=exc.code) from None
        active.handle = handle
        ctx.active[job.id] = active
        ctx.tasks.spawn(self._follow(active), name=f"job-{job.id}")
        self._on_submitted()

    async def settle(self, job_id: int, code: str, fault: str) -> None:
        """A job admitted but never handed to the generator: fail it so it does not stay queued
        on disk (`rejected` and `ours` do not count against the quota)."""
        try:
            await self.ctx.store.jobs.mark_failed(job_id, code, fault=fault)  # pyright: ignore[reportArgumentType]
        except Exception:
            log.exception("could not settle job=%s", job_id)
