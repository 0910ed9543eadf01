"""`/history`'s page: a user's pictures in this server, newest first (pure: builds text only).

Each line: when, seed, size, a link to the picture's message, and the prompt (or a note that
the retention policy blanked it; for a ⬆️ upscale, the job it enlarged, from its source size). The bot stores no pictures: the link is the picture.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.i18n import t
from bot.messaging import escape_user_text
from generation.types import MAX_COUNT, UPSCALE

if TYPE_CHECKING:
    from storage import JobRecord

HISTORY_SIZE = 25  # pictures /history looks back over
PAGE_SIZE = 5  # pictures on one page
PAGES = HISTORY_SIZE // PAGE_SIZE
PROMPT_SHOWN = 150  # characters of each prompt on the page
DESCRIPTION_MAX = 4096  # an embed description's limit


def message_link(guild_id: int, channel_id: int, message_id: int) -> str:
    return f"https://discord.com/channels/{guild_id}/{channel_id}/{message_id}"


def history_line(job: JobRecord, number: int, locale: str) -> str:
    """One picture of the page (`number` counts from 1 across pages)."""
    request = job.request
    seeds = (job.outcome or {}).get("seeds")
    seed = seeds[0] if isinstance(seeds, list) and seeds else request.get("seed")
    link = message_link(job.guild_id or 0, job.channel_id or 0, job.result_message_id or 0)
    head = t(
        "history.line",
        locale,
        number=number,
        when=f"<t:{int(job.created_at.timestamp())}:f>",
        seed=seed,
        width=request.get("width"),
        height=request.get("height"),
        link=link,
    )
    if 1 < job.images <= MAX_COUNT:
        head += " " + t("history.set", locale, count=job.images)
    if request.get("kind") == UPSCALE:  # no prompt of its own: which picture it enlarged
        return f"{head}\n{t('history.upscale', locale, job=job.parent_job_id or '?')}"
    prompt = request.get("prompt")
    if job.prompt_blanked or not isinstance(prompt, str):
        return f"{head}\n{t('history.prompt_blanked', locale)}"
    return f"{head}\n> {escape_user_text(' '.join(prompt.split()), PROMPT_SHOWN)}"


def history_text(jobs: list[JobRecord], page: int, locale: str) -> str:
    """The description of page `page` (0-based) for these jobs (that page's, newest first)."""
    if not jobs:
        return t("history.empty" if page == 0 else "history.page_empty", locale)
    lines = [
        history_line(job, page * PAGE_SIZE + index, locale)
        for index, job in enumerate(jobs, start=1)
    ]
    text = "\n\n".join(lines)
    return text if len(text) <= DESCRIPTION_MAX else text[: DESCRIPTION_MAX - 1] + "…"
