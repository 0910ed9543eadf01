"""How the bot talks: ephemeral refusals, the progress bar, the result embed, and `send_safely()`.

Every message goes out with the client's `AllowedMentions.none()`; echoed prompts are also
markdown- and mention-escaped, so `@everyone` in a prompt neither pings nor renders as a ping.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
import discord

from bot.i18n import t

if TYPE_CHECKING:
    from storage import Quota

log = logging.getLogger(__name__)

T = TypeVar("T")

RESULT_FILENAME = "pokemon.png"
PREVIEW_FILENAME = "preview.jpg"  # a running job's preview (replaced by its picture)
REGENERATE_EMOJI = "🔁"
REGENERATE_EMOJIS = frozenset({"🔁", "🔁\ufe0f"})  # with and without the variation selector
VARY_EMOJI = "🎨"  # a reaction: the strong variation of the picture (image-to-image)
VARY_EMOJIS = frozenset({"🎨", "🎨\ufe0f"})
DELETE_EMOJIS = frozenset({"🗑️", "🗑"})  # with and without the emoji variation selector
# An interaction token lives 15 minutes; below this much left we post to the channel instead.
TOKEN_MARGIN = dt.timedelta(seconds=60)
PROGRESS_INTERVAL = 2.0  # seconds between edits of one message (Discord's rate limits)
EMBED_FIELD_MAX = 1024
EMBED_DESCRIPTION_MAX = 4096
# A translation is short (the translator stops at 96 tokens); bounded so the embed stays
# under Discord's 6000 characters even beside the longest prompt and negative prompt.
TRANSLATED_FIELD_MAX = 400
# Pauses before each of our own retries when Discord answers 5xx or the connection drops.
# discord.py retries 500, 502, 504 and 524 itself (about 16 s in all) but raises at once on 503
# and after its last try, and retries a reset connection only for BSD/Windows errno values,
# never Linux's; a finished picture is worth another half minute of trying.
SERVER_ERROR_RETRY_DELAYS: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)


# What "the request may or may not have landed" looks like from here: Discord's 5xx, and a
# connection that broke mid-request (aiohttp raises those as they are, not as HTTPException;
# TimeoutError is an OSError).
class MayHaveLanded(Exception):
    """A send failed with a 4xx after an earlier try of it failed in a way that may have
    landed (5xx, dropped connection): the message may already show it, so it must be read
    back, never shown a second time through another route."""


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    discord.DiscordServerError,
    aiohttp.ClientError,
    OSError,
    MayHaveLanded,
)


def relative(when: dt.datetime | float) -> str:
    """`<t:UNIX:R>`: each client renders it in its own language ("in 2 minutes", "2分後")."""
    if not isinstance(when, dt.datetime):
        when = dt.datetime.fromtimestamp(when, tz=dt.UTC)
    return discord.utils.format_dt(when, "R")


def escape_user_text(text: str, limit: int | None = None) -> str:
    """User text made inert for Discord: no markdown, no mentions; cut to `limit` characters."""
    escaped = discord.utils.escape_mentions(discord.utils.escape_markdown(text))
    if limit is not None and len(escaped) > limit:
        escaped = escaped[: limit - 1] + "…"
    return escaped


def progress_bar(step: int, total: int, width: int = 16) -> str:
    """`▰▰▰▰▱▱▱▱`: a fixed-width bar (the message beside it says the step count)."""
    total = max(total, 1)
    step = min(max(step, 0), total)
    filled = round(width * step / total)
    return f"{'▰' * filled}{'▱' * (width - filled)}"


def quota_text(quota: Quota | None, locale: object) -> str:
    """The remaining quota and when it frees up, or "unlimited"."""
    if quota is None or quota.limit is None:
        return t("pokemon.quota_unlimited", locale)
    text = t(
        "pokemon.quota_remaining",
        locale,
        remaining=max(quota.remaining or 0, 0),
        limit=quota.limit,
        period=t(f"pokemon.period.{quota.period}", locale),
    )
    if quota.reset_at is not None:
        text += " · " + t("pokemon.quota_reset", locale, when=relative(quota.reset_at))
    return text


def result_embed(
    locale: object,
    *,
    prompt: str,
    negative_prompt: str,
    seeds: Sequence[int],
    steps: int,
    seconds: float,
    user_id: int,
    quota: Quota | None,
    truncated: bool,
    parent_job_id: int | None = None,
    used: tuple[str, str] | None = None,
    untranslated: bool = False,
    strength: float | None = None,
    withheld: int = 0,
    guidance: float | None = None,
    sampler: str | None = None,
    size: tuple[int, int] | None = None,
    model: str | None = None,
    notes: Sequence[str] = (),
) -> discord.Embed:
    """The embed that carries a finished image: prompt, seed, steps, time, requester, quota,
    and (when given) the rest of what makes the picture: guidance, sampler, size (width,
    height) and model, so that it can be drawn again (ℹ️ gives the command line).

    `seeds`: one per picture, in the attachments' order; several pictures are shown as the
    message's gallery with every seed listed; `used`: the (prompt, negative prompt) the model was given when
    translation changed them; `untranslated`: English went to the model as it was typed;
    `strength`: the picture was painted over a source picture this much; `withheld`: pictures
    of the set that did not come out (blank, or flagged by the safety checker); `notes`:
    one-line notices for the requester, each its own field at the end.
    """
    embed = discord.Embed(
        description=escape_user_text(prompt, EMBED_DESCRIPTION_MAX),
        colour=discord.Colour.from_rgb(238, 21, 21),
    )
    if len(seeds) <= 1:  # one picture shows inside the embed; several as a gallery below it
        embed.set_image(url=f"attachment://{RESULT_FILENAME}")
    if negative_prompt:
        embed.add_field(
            name=t("pokemon.field_negative", locale),
            value=escape_user_text(negative_prompt, EMBED_FIELD_MAX),
            inline=False,
        )
    if used is not None:
        prompt_used, negative_used = used
        if prompt_used != prompt:
            embed.add_field(
                name=t("pokemon.translated", locale),
                value=escape_user_text(prompt_used, TRANSLATED_FIELD_MAX),
                inline=False,
            )
        if negative_used != negative_prompt and negative_used:
            embed.add_field(
                name=t("pokemon.translated_negative", locale),
                value=escape_user_text(negative_used, TRANSLATED_FIELD_MAX),
                inline=False,
            )
    if untranslated:
        embed.add_field(name="⚠️", value=t("pokemon.untranslated", locale), inline=False)
    if withheld:
        embed.add_field(name="⚠️", value=t("pokemon.withheld", locale, count=withheld), inline=False)
    seed_field = "pokemon.field_seeds" if len(seeds) > 1 else "pokemon.field_seed"
    embed.add_field(name=t(seed_field, locale), value=", ".join(str(s) for s in seeds))
    if strength is not None:
        embed.add_field(name=t("pokemon.field_strength", locale), value=f"{strength:g}")
    embed.add_field(name=t("pokemon.field_steps", locale), value=str(steps))
    if guidance is not None:
        embed.add_field(name=t("pokemon.field_guidance", locale), value=f"{guidance:g}")
    if sampler is not None:
        embed.add_field(name=t("pokemon.field_sampler", locale), value=sampler)
    if size is not None:
        embed.add_field(name=t("pokemon.field_size", locale), value=f"{size[0]}×{size[1]}")
    if model is not None:
        embed.add_field(
            name=t("pokemon.field_model", locale), value=escape_user_text(model, EMBED_FIELD_MAX)
        )
    embed.add_field(name=t("pokemon.field_time", locale), value=f"{seconds:.1f} s")
    # Mentions inside embeds never ping, and they show who asked (useful under 🔁 replies).
    embed.add_field(name=t("pokemon.field_requester", locale), value=f"<@{user_id}>")
    if quota is not None:  # None: not known (the database could not be read): say nothing
        embed.add_field(name=t("pokemon.field_quota", locale), value=quota_text(quota, locale))
    if truncated:
        embed.add_field(name="⚠️", value=t("pokemon.truncated", locale), inline=False)
    for note in notes:
        embed.add_field(name="ℹ️", value=note[:EMBED_FIELD_MAX], inline=False)
    footer = t("pokemon.footer_regen", locale, emoji=REGENERATE_EMOJI)
    footer += " · " + t("pokemon.footer_vary", locale, emoji=VARY_EMOJI)
    if parent_job_id is not None:
        footer = t("pokemon.footer_variation", locale) + " · " + footer
    embed.set_footer(text=footer)
    return embed


class EditThrottle:
    """At most one edit per `interval` seconds for one message; `clock` is injectable for tests."""

    def __init__(
        self, interval: float = PROGRESS_INTERVAL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self.clock = clock
        self._last: float | None = None

    def ready(self) -> bool:
        """Whether an edit now would respect the interval."""
        return self._last is None or self.clock() - self._last >= self.interval

    def wait_time(self) -> float:
        """Seconds until an edit would respect the interval (0 when ready)."""
        if self._last is None:
            return 0.0
        return max(self.interval - (self.clock() - self._last), 0.0)

    def mark(self) -> None:
        """Record that an edit was just made."""
        self._last = self.clock()


class NoMessageToEdit(Exception):
    """`send_safely(..., new_post=False)`: every message of the job is gone (or was never
    known) and showing the state now would take a new channel message."""


@dataclass(slots=True)
class Destination:
    """Where one job's messages go. Mutable: once the token is too old, or an edit through it
    fails, the job moves to a channel message (a reply) and later edits go there."""

    channel_id: int
    guild_id: int | None
    interaction: discord.Interaction[Any] | None = None
    # The channel message that shows the job (a full message once we posted or read it; a
    # partial one for a message from before a restart, edited through the channel endpoint).
    message: discord.Message | discord.PartialMessage | None = None
    reply_to: int | None = None
    handoff_text: str | None = None  # left in the original response when moving to the channel

    def token_usable(self, now: dt.datetime | None = None) -> bool:
        """Whether the interaction token has comfortably more than a minute left."""
        if self.interaction is None:
            return False
        now = now or discord.utils.utcnow()
        return self.interaction.expires_at - now > TOKEN_MARGIN


def _files(png: bytes | None, files: Sequence[tuple[str, bytes]]) -> list[discord.File]:
    # A File is consumed by one upload, so each attempt gets fresh ones.
    named = [(RESULT_FILENAME, png)] if png is not None else []
    return [discord.File(io.BytesIO(data), filename=name) for name, data in [*named, *files]]


def new_nonce() -> str:
    """A message nonce (at most 25 characters) for `enforce_nonce` sends."""
    return secrets.token_hex(10)


async def retry_transient(
    call: Callable[[], Awaitable[T]], delays: Sequence[float], what: str
) -> T:
    """Run `call`, and again after each of `delays` while Discord answers 5xx or the
    connection drops (`TRANSIENT_ERRORS`).

    Only for calls that are safe to repeat when the failed attempt actually landed: edits
    (PATCH sets the same content again) and sends carrying an enforced nonce (Discord returns
    the message the first attempt created instead of posting a second one).
    """
    for attempt in range(len(delays) + 1):
        try:
            return await call()
        except TRANSIENT_ERRORS as exc:
            count_discord_error(exc)
            if attempt == len(delays):
                raise
            delay = delays[attempt]
            log.warning(
                "%s: %s; retry %s/%s in %.1f s",
                what,
                _describe(exc),
                attempt + 1,
                len(delays),
                delay,
            )
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def count_discord_error(exc: BaseException) -> None:
    """Count a Discord API error in `pokemon_discord_api_errors_total{kind}` (README,
    "Metrics"): `5xx`, `4xx` or `connection`."""
    from generation.metrics import DISCORD_API_ERRORS

    if isinstance(exc, discord.DiscordServerError):
        kind = "5xx"
    elif isinstance(exc, discord.HTTPException):
        kind = "4xx"
    else:
        kind = "connection"
    DISCORD_API_ERRORS.labels(kind=kind).inc()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, discord.DiscordServerError):
        return f"Discord answered {exc.status}"
    return f"connection failed ({type(exc).__name__}: {exc})"


async def send_safely(
    client: discord.Client,
    dest: Destination,
    *,
    content: str | None = None,
    embed: discord.Embed | None = None,
    png: bytes | None = None,
    files: Sequence[tuple[str, bytes]] = (),
    view: discord.ui.View | None = None,
    retry_delays: Sequence[float] = (),
    new_post: bool = True,
    drop_attachments: bool = False,
) -> discord.Message:
    """Show `content`/`embed`/`png` (as `pokemon.png`), `files` ((name, bytes) pairs) and the
    buttons of `view` (None: no buttons; each call sets the message's whole state) as this
    job's message, through the best route still open.

    1. the interaction's original response, while the token has more than a minute left;
    2. the channel message this job already posted (bot token: no expiry);
    3. a new channel message replying to `dest.reply_to` (or to the original response).
    A 4xx on route 1 (token expired early, response deleted) falls through to 2 and 3. A 5xx
    or a dropped connection is retried on the same route after each of `retry_delays` (never
    moved to another route: the failed attempt may have landed, and a second route would post
    the picture twice). With `new_post=False`, route 3 raises `NoMessageToEdit` instead of
    posting (the caller posts and records a message first, then edits it).

    An edit with `png` or `files` replaces every attachment the message had (a preview goes
    when the picture comes); one without keeps them, unless `drop_attachments`.
    """

    def edit_kwargs() -> dict[str, Any]:
        edit: dict[str, Any] = {"content": content, "embed": embed, "view": view}
        if png is not None or files:
            edit["attachments"] = _files(png, files)  # fresh Files per attempt
        elif drop_attachments:
            edit["attachments"] = []
        return edit

    if dest.interaction is not None and dest.message is None:
        interaction = dest.interaction
        if dest.token_usable():
            failed_transiently = False

            async def edit_original() -> discord.InteractionMessage:
                nonlocal failed_transiently
                try:
                    return await interaction.edit_original_response(**edit_kwargs())
                except TRANSIENT_ERRORS:
                    failed_transiently = True
                    raise

            try:
                return await retry_transient(
                    edit_original, retry_delays, "edit of the original response"
                )
            except discord.DiscordServerError:
                raise  # may have landed: never move to a second route (see above)
            except discord.HTTPException as exc:
                count_discord_error(exc)
                if failed_transiently:
                    # A retry refused (the token expired during our retries, say) after a
                    # try that may have landed: the caller reads the message back.
                    raise MayHaveLanded(f"edit of the original response: {exc}") from exc
                log.info("edit of original response failed (%s); posting to the channel", exc)
        elif not interaction.is_expired():
            # The last use of the token: say where the job went, and learn the message id the
            # channel post will reply to (otherwise "thinking…" would hang there).
            try:
                original = await interaction.edit_original_response(
                    content=dest.handoff_text, embed=None, view=None
                )
                dest.reply_to = dest.reply_to or original.id
            except discord.HTTPException as exc:
                log.info("could not hand the original response over: %s", exc)
        dest.interaction = None
    if dest.message is not None:
        message = dest.message
        try:
            return await retry_transient(
                lambda: message.edit(**edit_kwargs()), retry_delays, "edit of the job's message"
            )
        except discord.NotFound:
            log.info("message %s was deleted; posting a new one", message.id)
            dest.message = None
    if not new_post:
        raise NoMessageToEdit
    channel = client.get_partial_messageable(dest.channel_id, guild_id=dest.guild_id)
    reference = None
    if dest.reply_to is not None:
        reference = discord.MessageReference(
            message_id=dest.reply_to, channel_id=dest.channel_id, fail_if_not_exists=False
        )
    nonce = new_nonce()  # one per message, kept across retries: Discord dedupes on it

    def send() -> Awaitable[discord.Message]:
        kwargs: dict[str, Any] = {"content": content, "embed": embed, "reference": reference}
        if view is not None:
            kwargs["view"] = view
        if png is not None or files:
            kwargs["files"] = _files(png, files)
        return channel.send(nonce=nonce, **kwargs)

    dest.message = await retry_transient(send, retry_delays, "post to the channel")
    return dest.message


async def send_ephemeral(
    interaction: discord.Interaction[Any], content: str, *, after_public_defer: bool = False
) -> None:
    """A refusal or error only the invoking user sees, before or after the defer.

    A public "thinking…" defer cannot turn ephemeral, and the first followup after a defer
    replaces the deferred message with the defer's flags. So after a public defer (the caller
    knows: it made it with `defer_public`) we delete the original response first; the followup
    then is a new message and honours `ephemeral`.
    """
    if interaction.is_expired():
        log.info("interaction %s expired before we could answer it", interaction.id)
        return
    if not interaction.response.is_done():
        await interaction.response.send_message(content, ephemeral=True)
        return
    if after_public_defer:
        try:
            await interaction.delete_original_response()
        except discord.HTTPException as exc:
            log.debug("could not delete the original response: %s", exc)
    await interaction.followup.send(content, ephemeral=True)


async def defer_public(interaction: discord.Interaction[Any]) -> int | None:
    """Defer with a visible "thinking…" state (answer refusals with `after_public_defer`).
    Returns the id of the message the defer created (the original response), when Discord
    says it: a job records it at once, so a restart can find that message."""
    callback = await interaction.response.defer(thinking=True)
    return callback.message_id if callback is not None else None


class ChannelPacer:
    """Spaces out our own bursts of messages in one channel (resumed jobs updating their
    messages after a restart): at most one every `interval` seconds per channel, under
    Discord's per-channel limit of 5 per 5 s, so other traffic keeps room."""

    def __init__(self, interval: float = 1.2, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._next: dict[int, float] = {}

    async def wait(self, channel_id: int) -> None:
        now = self.clock()
        slot = max(now, self._next.get(channel_id, now))
        self._next[channel_id] = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


async def channel_notice(
    client: discord.Client,
    channel_id: int,
    user_id: int,
    text: str,
    *,
    guild_id: int | None = None,
    reply_to: int | None = None,
    delete_after: float | None = None,
    ping: bool = True,
) -> discord.Message | None:
    """A channel message addressed to one user, pinging that user only (or nobody, with
    `ping=False`: the mention still shows who it is for); None if it failed."""
    channel = client.get_partial_messageable(channel_id, guild_id=guild_id)
    reference = None
    if reply_to is not None:
        reference = discord.MessageReference(
            message_id=reply_to, channel_id=channel_id, fail_if_not_exists=False
        )
    try:
        # discord.py's `send` overloads omit None for `reference` and `delete_after`, though the
        # implementation defaults both to None and treats None as "not given".
        return await channel.send(  # pyright: ignore[reportCallIssue, reportUnknownVariableType]
            f"<@{user_id}> {text}",
            nonce=new_nonce(),  # discord.py repeats a POST after some 5xx: no second notice
            reference=reference,  # pyright: ignore[reportArgumentType]
            allowed_mentions=discord.AllowedMentions(
                everyone=False,
                roles=False,
                replied_user=False,
                users=[discord.Object(user_id)] if ping else False,
            ),
            delete_after=delete_after,  # pyright: ignore[reportArgumentType]
        )
    except discord.HTTPException as exc:
        log.warning("could not post a notice in channel %s: %s", channel_id, exc)
        return None
