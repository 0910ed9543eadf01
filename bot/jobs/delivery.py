"""Delivery: where a job's message lives, and getting a picture or a notice there.

The routes are `bot.messaging.send_safely`'s (the original response while its token lasts,
the job's channel message, a new reply). On top of them, delivery owns: the placeholder posted
and recorded before a picture would go out as a new message; the read-back of a message an
upload "may have landed" in (a 5xx or a dropped connection on the last try); recording the
outcome, retried in the background while the database refuses; and where a failure is told.
The contents (texts, embed, buttons) come made from the caller (`bot.jobs.presenter`).

Rules (docs/RELIABILITY.md): a failed upload is retried on the same route while Discord answers
5xx or the connection drops; when it finally fails, the message is read back before anything
is declared lost, and the original response is never deleted while an upload to it may have
landed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING

import discord

from bot.messaging import (
    PREVIEW_FILENAME,
    REGENERATE_EMOJI,
    SERVER_ERROR_RETRY_DELAYS,
    TRANSIENT_ERRORS,
    NoMessageToEdit,
    channel_notice,
    send_ephemeral,
    send_safely,
)
from storage import JSON, StorageError

if TYPE_CHECKING:
    from bot.jobs.state import ActiveJob, JobContext
    from storage import JobRecord

log = logging.getLogger(__name__)

Write = Callable[[], Awaitable[object]]
DISCORD_ERRORS = (discord.HTTPException, *TRANSIENT_ERRORS)


class Delivery:
    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        # Pauses between our retries of a final upload (tests shorten them).
        self.retry_delays: tuple[float, ...] = SERVER_ERROR_RETRY_DELAYS
        # Outcomes of delivered jobs the database refused, retried until it accepts them.
        self.unrecorded: dict[int, Write] = {}
        self.record_retry_delay = 1.0

    # ---- the job's message ------------------------------------------------------------------

    async def show(self, active: ActiveJob, text: str, *, preview: bytes | None = None) -> None:
        """Show a queue place or progress `text` with the job's ✖ (each edit sets the buttons),
        and `preview` (a JPEG) in place of the one the message had; without one, the message
        keeps what it had. Cosmetic: the job is on the generator already and never fails with
        its message."""
        view = self.ctx.presenter.progress_view(active.job_id, active.locale)
        files = [(PREVIEW_FILENAME, preview)] if preview is not None else []
        try:
            message = await send_safely(
                self.ctx.client, active.dest, content=text, view=view, files=files
            )
        except DISCORD_ERRORS as exc:
            log.warning("job=%s: progress message failed: %s", active.job_id, exc)
            return
        if preview is not None:
            active.preview_shown = preview
        await self.remember(active, message)

    async def remember(self, active: ActiveJob, message: discord.Message) -> None:
        """Record the message that shows the job, so a restart edits (and reads back) it."""
        if active.dest.reply_to is None:
            active.dest.reply_to = message.id  # fallback replies point at what the user saw
        if message.id != active.progress_message_id:
            active.progress_message_id = message.id
            try:
                await self.ctx.store.jobs.set_message(active.job_id, progress_message_id=message.id)
            except StorageError as exc:  # bookkeeping only: the picture still goes out
                log.warning("job=%s: progress message id not recorded: %s", active.job_id, exc)

    async def post_placeholder(self, active: ActiveJob) -> None:
        """Before a picture would go out as a new channel message (no message of the job is
        known, the token is too old, or the job's message was deleted meanwhile), post that
        message without it and record its id; the picture then becomes an edit of a message
        the row names.

        A new message's id is only known once Discord answers, so a picture posted directly
        and a process that died before recording the answer would leave the row pointing at
        the handed-over original response (or at nothing, for a 🔁): the restart would find
        no picture there, draw the job again and post it a second time. An edit of a
        recorded message is read back after a restart instead (`bot.jobs.resume`).
        """
        try:
            message = await send_safely(
                self.ctx.client,
                active.dest,
                content=self.ctx.presenter.posting_text(active.locale),
                retry_delays=self.retry_delays,
            )
        except DISCORD_ERRORS as exc:
            log.warning(
                "job=%s: placeholder not posted (%s); posting the picture", active.job_id, exc
            )
            return
        await self.remember(active, message)

    # ---- the picture ------------------------------------------------------------------------

    async def deliver(
        self,
        active: ActiveJob,
        *,
        embed: discord.Embed,
        files: Sequence[tuple[str, bytes]],
        outcome: dict[str, JSON],
        refund: bool,
        view: discord.ui.View | None = None,
        react: bool = True,
    ) -> None:
        """Put the finished picture(s) in the job's message (a placeholder first when there is
        none to edit), read back when every try failed in a way that may have landed, and
        record the outcome. Raises when the picture is not on Discord. `view`: the buttons
        under it (None: a result's, `Presenter.result_view`); `react`: add 🔁 to it."""
        presenter = self.ctx.presenter
        if view is None:
            view = presenter.result_view(active.job_id, active.locale, pictures=len(files))
        async with active.lock:
            active.finished = True  # no progress edit may land after the image

            async def show_picture(new_post: bool) -> discord.Message:
                return await send_safely(
                    self.ctx.client,
                    active.dest,
                    content=None,
                    embed=embed,
                    files=files,
                    view=view,
                    retry_delays=self.retry_delays,
                    new_post=new_post,
                )

            try:
                try:
                    message = await show_picture(new_post=False)
                except NoMessageToEdit:  # no message of the job to edit: placeholder first
                    await self.post_placeholder(active)
                    # It becomes the picture's message; if it could not be posted, the
                    # picture is posted itself.
                    message = await show_picture(new_post=True)
            except TRANSIENT_ERRORS:
                # Every try failed in a way that may have landed: look before giving up.
                landed = await self.read_back(active)
                if landed is None:
                    raise
                log.warning("job=%s: the upload landed although its answer was lost", active.job_id)
                message = landed
            active.delivered = True
        await self.finish_delivered(active.job_id, message, outcome, refund=refund, react=react)

    async def drop(self, active: ActiveJob) -> None:
        """The job was cancelled or deleted meanwhile: its message goes, nothing is posted."""
        async with active.lock:
            active.finished = True
            with contextlib.suppress(*DISCORD_ERRORS):
                if active.dest.message is not None:
                    await active.dest.message.delete()
                elif active.dest.interaction is not None and active.dest.token_usable():
                    await active.dest.interaction.delete_original_response()

    async def finish_delivered(
        self,
        job_id: int,
        message: discord.Message | discord.PartialMessage,
        outcome: dict[str, JSON] | None = None,
        *,
        refund: bool = False,
        react: bool = True,
    ) -> None:
        """A picture is on Discord in `message`: record it (with what generation reported, when
        known; `refund`: not counted), add 🔁 (unless not `react`), log."""
        await self.record(
            job_id,
            lambda: self.ctx.store.jobs.mark_done(
                job_id, result_message_id=message.id, outcome=outcome, refund=refund
            ),
        )
        if react:
            try:
                await message.add_reaction(REGENERATE_EMOJI)
            except DISCORD_ERRORS as exc:
                log.warning("job=%s: could not add %s: %s", job_id, REGENERATE_EMOJI, exc)
        log.info("job=%s delivered to message=%s", job_id, message.id)

    async def read_back(self, active: ActiveJob) -> discord.Message | None:
        """The job's message as Discord has it now, if it carries a picture; else None.

        The job's channel message if it has one; else the original response, through the
        interaction while its token lasts, and through the channel (its id was recorded at
        the defer: the bot's own message) when the token is spent or refused."""
        dest = active.dest
        channel = self.ctx.client.get_partial_messageable(dest.channel_id, guild_id=dest.guild_id)
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
            except DISCORD_ERRORS as exc:
                log.info("job=%s: could not read its message back: %s", active.job_id, exc)
                continue
            return message if message.attachments else None
        return None

    # ---- recording the outcome --------------------------------------------------------------

    async def record(self, job_id: int, write: Write) -> None:
        """Record a delivered job's outcome. If the database refuses (a full disk), keep
        trying in the background: a row left `running` would be drawn again after a restart
        (where reading its message back would still save it from being posted twice)."""
        try:
            await write()
        except StorageError as exc:
            log.warning(
                "job=%s: outcome not recorded (%s); retrying in the background", job_id, exc
            )
            self.unrecorded[job_id] = write
            self.ctx.tasks.spawn(self._record_later(job_id, write), name=f"record-{job_id}")

    async def _record_later(self, job_id: int, write: Write) -> None:
        delay = self.record_retry_delay
        while job_id in self.unrecorded:
            await asyncio.sleep(delay)
            try:
                await write()
            except StorageError:
                delay = min(delay * 2, 60.0)
                continue
            self.unrecorded.pop(job_id, None)
            log.info("job=%s: outcome recorded after a retry", job_id)

    async def record_remaining(self) -> None:
        """At shutdown: try once more to record the outcomes the database refused."""
        for job_id, write in list(self.unrecorded.items()):
            try:
                await write()
                self.unrecorded.pop(job_id, None)
            except StorageError as exc:
                log.error("job=%s: outcome still not recorded at shutdown: %s", job_id, exc)

    # ---- a job that ends without a picture --------------------------------------------------

    async def say_ended(self, active: ActiveJob, text: str) -> None:
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
                with contextlib.suppress(*DISCORD_ERRORS):
                    await dest.message.edit(
                        content=f"<@{active.user_id}> {text}",
                        embed=None,
                        view=None,
                        attachments=[],  # a preview shown before the restart goes
                    )
                    return
            if dest.message is not None:
                with contextlib.suppress(*DISCORD_ERRORS):
                    await dest.message.delete()
        await self.tell_failure(active, text, private_first=False)

    async def say_cancelled(self, active: ActiveJob, text: str) -> None:
        """A ✖ stopped the job: its own message says so, without its buttons."""
        async with active.lock:
            active.finished = True
            try:
                await send_safely(
                    self.ctx.client,
                    active.dest,
                    content=text,
                    embed=None,
                    view=None,
                    # A preview goes (this process's, or one shown before a restart).
                    drop_attachments=active.preview_shown is not None or active.resumed,
                )
            except DISCORD_ERRORS as exc:
                log.info("job=%s: could not say it was cancelled: %s", active.job_id, exc)

    async def edit_recorded(self, job: JobRecord, text: str) -> None:
        """Say `text` in the message a job's row names (a job no process follows), if any."""
        if job.progress_message_id is None:
            return
        channel = self.ctx.client.get_partial_messageable(
            job.channel_id or 0, guild_id=job.guild_id
        )
        with contextlib.suppress(*DISCORD_ERRORS):
            await channel.get_partial_message(job.progress_message_id).edit(
                content=text, embed=None, view=None
            )

    async def tell_failure(
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
            except DISCORD_ERRORS as notice_error:
                log.info("job=%s: notice failed: %s", active.job_id, notice_error)
            else:
                return
        await channel_notice(
            self.ctx.client,
            dest.channel_id,
            active.user_id,
            text,
            guild_id=dest.guild_id,
            reply_to=dest.reply_to,
        )
