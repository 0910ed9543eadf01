"""Load test: many users sending `/pokemon` at once to the real bot on the loopback fake Discord.

    python -m bench.load                      # 50 users × 10 requests (the full run)
    python -m bench.load --users 10 --requests 3 --json out.json

The real discord.py client, the real worker thread on the tiny checkpoint (CPU, 64 px) and a
real SQLite file; the fake Discord enforces the 3 s acknowledgement deadline itself. All users
start at once; each sends its requests one after another, the next as soon as the previous one
was answered, backing off like a person after a "queue full" or "wait for your pictures", so
the queue stays full and every limit (queue, pending cap, rate limit) is hit. The run
checks, and the report states:

- every interaction acknowledged within Discord's 3 s (none rejected as late);
- every accepted job delivered exactly once (one image, in its own interaction response);
- every refused request told why (queue full, pending cap or rate limit; nothing else);
- database rows equal to the accepted jobs (plus one refunded row per queue-full refusal),
  none left queued or running;
- rate limits exact: nobody above the limit, and everyone refused for it exactly at it.

`tests/reliability/test_load.py` runs it small in the default suite and full size as `slow`.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # `python bench/load.py` as well as `python -m bench.load`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import logging
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.common import TINY_MODEL, machine, summary, write_json

log = logging.getLogger("bench.load")

WITHIN = 300.0  # a bound on any single wait: a hang guard, never a measurement


@dataclass(slots=True)
class LoadConfig:
    """The size of the run and the bot's limits under it."""

    users: int = 50
    requests: int = 10
    queue_size: int = 8
    max_pending: int = 2
    rate_limit: int = 3  # per user per day
    steps: int = 2
    size: int = 64
    progress_interval: float = 2.0  # production pacing of progress edits


@dataclass(slots=True)
class LoadReport:
    """What happened, and every invariant that failed (empty `problems` = all held)."""

    config: LoadConfig
    interactions: int = 0
    accepted: int = 0
    delivered: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    rejected_callbacks: int = 0
    ack_seconds: list[float] = field(default_factory=list)
    result_seconds: list[float] = field(default_factory=list)
    wall_seconds: float = 0.0
    db_rows: int = 0
    db_counted_rows: int = 0
    rate_limited_users: int = 0
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "users": self.config.users,
            "requests_per_user": self.config.requests,
            "queue_size": self.config.queue_size,
            "max_pending": self.config.max_pending,
            "rate_limit_per_day": self.config.rate_limit,
            "interactions": self.interactions,
            "accepted": self.accepted,
            "delivered": self.delivered,
            "refused": dict(self.refused),
            "late_or_rejected_callbacks": self.rejected_callbacks,
            "ack_seconds": summary(self.ack_seconds),
            "result_seconds": summary(self.result_seconds),
            "wall_seconds": self.wall_seconds,
            "images_per_second": self.delivered / self.wall_seconds if self.wall_seconds else 0,
            "db_rows": self.db_rows,
            "db_counted_rows": self.db_counted_rows,
            "rate_limited_users": self.rate_limited_users,
            "problems": self.problems,
        }


def refusal_kind(text: str, config: LoadConfig) -> str | None:
    """Which refusal an ephemeral answer is (None: not one we expect under load)."""
    from bot.i18n import t

    if text == t("error.queue_full", "en", size=config.queue_size):
        return "queue_full"
    if text == t("error.pending_cap", "en", max=config.max_pending):
        return "pending_cap"
    limited = t("error.rate_limited", "en", limit=config.rate_limit, period="PERIOD", retry="WHEN")
    pattern = re.escape(limited).replace("PERIOD", ".+").replace("WHEN", ".+")
    if re.fullmatch(pattern, text):
        return "rate_limited"
    return None


def _images(fake: Any) -> int:
    return sum(1 for m in fake.bot_messages() if m.attachments)


def _has_image(record: Any) -> bool:
    message = record.original_message
    return message is not None and bool(message.attachments)


async def _user(
    fake: Any, user: Any, config: LoadConfig, index: int, idle: Callable[[], bool]
) -> list[Any]:
    """One user's requests, sent one after another, each as soon as the previous one was
    answered. Like a person, a user told "queue full" waits until some picture comes out, and
    one told "wait for your pictures" waits until one of theirs is done; an accepted request
    is followed at once by the next (so the pending cap is hit too)."""
    records: list[Any] = []
    for n in range(config.requests):
        record = await fake.invoke("pokemon", {"prompt": f"ピカチュウ {index}-{n}"}, user=user)
        await fake.wait_until(lambda r=record: r.followups or r.edits or r.rejected, WITHIN)
        records.append(record)
        if not record.followups:
            continue
        kind = refusal_kind(record.followups[0].content, config)
        if kind == "queue_full":
            # Users retry at different times (as people do), not all on the next picture.
            after = _images(fake) + 1 + index % 8
            await fake.wait_until(lambda after=after: _images(fake) >= after or idle(), WITHIN)
        elif kind == "pending_cap":
            mine = sum(_has_image(r) for r in records)
            await fake.wait_until(
                lambda mine=mine: sum(_has_image(r) for r in records) > mine, WITHIN
            )
    return records


async def run_load(rig: Any, config: LoadConfig) -> LoadReport:
    """Drive `rig` (a `tests.bot.conftest.BotRig`, not yet running) with the load; check it."""
    from bot.messaging import REGENERATE_EMOJI

    fake = rig.fake
    report = LoadReport(config=config)
    users = []
    for index in range(config.users):
        user = fake.add_user(f"load-user-{index}")
        fake.add_member(fake.guild, user)
        users.append(user)
    async with rig.run() as bot:

        def idle() -> bool:
            return bot.generator.worker.queued == 0 and bot.generator.worker.running == 0

        started = time.perf_counter()
        per_user = await asyncio.gather(
            *(_user(fake, user, config, i, idle) for i, user in enumerate(users))
        )
        records = [r for rs in per_user for r in rs]
        accepted = [r for r in records if not r.followups and not r.rejected]
        for record in accepted:
            message = await rig.wait_result(record, WITHIN)
            await fake.wait_until(lambda m=message: m.reaction_users(REGENERATE_EMOJI), WITHIN)
            image_at = next(e.at for e in record.edits if e.attachments)
            report.result_seconds.append(image_at - record.delivered_at)
        await fake.wait_until(lambda: not bot.service.active, WITHIN)
        report.wall_seconds = time.perf_counter() - started

        report.interactions = len(records)
        report.accepted = len(accepted)
        for record in records:
            report.rejected_callbacks += len(record.rejected)
            if record.response_delay is None:
                report.problems.append(f"interaction {record.id} was never acknowledged")
            else:
                report.ack_seconds.append(record.response_delay)
            if record.followups:
                (answer,) = record.followups
                kind = refusal_kind(answer.content, config)
                if kind is None or not answer.ephemeral:
                    report.problems.append(f"unexpected answer: {answer.content!r}")
                report.refused[kind or "other"] += 1

        # Exactly once: one picture per accepted job, in its own response, nowhere else.
        images = [m for m in fake.bot_messages() if m.attachments]
        report.delivered = len(images)
        own = {r.original_message_id for r in accepted}
        if len(images) != len(accepted) or {m.id for m in images} != own:
            report.problems.append(f"{len(images)} images for {len(accepted)} accepted jobs")
        if report.rejected_callbacks:
            report.problems.append(f"{report.rejected_callbacks} callbacks late or rejected")

        # The database holds exactly the accepted jobs (plus refunded queue-full rows).
        rows = [
            row
            for user in users
            for row in await bot.store.jobs.recent_for_user(user.id, limit=1000)
        ]
        report.db_rows = len(rows)
        counted = [r for r in rows if r.fault != "rejected"]
        report.db_counted_rows = len(counted)
        if len(counted) != len(accepted) or any(r.state != "done" for r in counted):
            report.problems.append(f"{len(counted)} counted rows for {len(accepted)} accepted")
        if len(rows) - len(counted) != report.refused["queue_full"]:
            report.problems.append("refunded rows do not match the queue-full refusals")
        if await bot.store.jobs.pending():
            report.problems.append("jobs left queued or running")

        # Rate limits exact: never above; a user refused for the limit is exactly at it.
        for user, user_records in zip(users, per_user, strict=True):
            used = sum(1 for r in counted if r.user_id == user.id)
            limited = any(
                refusal_kind(r.followups[0].content, config) == "rate_limited"
                for r in user_records
                if r.followups
            )
            report.rate_limited_users += limited
            if used > config.rate_limit or (limited and used != config.rate_limit):
                report.problems.append(f"user {user.id}: {used} images, limit {config.rate_limit}")
    return report


def make_rig(fake: Any, engine: Any, db: Path, config: LoadConfig) -> Any:
    """A `BotRig` with the load's limits."""
    from bot.settings import Settings
    from tests.bot.conftest import BotRig, GatedEngine

    settings = Settings(
        _env_file=None,
        discord_token=fake.token,
        pokemon_model=str(TINY_MODEL),
        pokemon_device="cpu",
        pokemon_db=db,
        pokemon_size=config.size,
        pokemon_steps=config.steps,
        pokemon_queue_size=config.queue_size,
        pokemon_max_batch=1,
        pokemon_user_max_pending=config.max_pending,
        pokemon_safety_checker="off",
        pokemon_rate_limit=config.rate_limit,
        pokemon_rate_period="day",
        pokemon_owner_ids=[],
        pokemon_dev_guild=None,
    )
    return BotRig(
        fake=fake,
        settings=settings,
        engine=GatedEngine(engine),
        progress_interval=config.progress_interval,
    )


def render(report: LoadReport) -> str:
    d = report.as_dict()
    ack, res = d["ack_seconds"], d["result_seconds"]
    lines = [
        f"{d['users']} users × {d['requests_per_user']} requests, queue {d['queue_size']}, "
        f"pending cap {d['max_pending']}, limit {d['rate_limit_per_day']}/day",
        f"interactions {d['interactions']}: accepted {d['accepted']}, refused {d['refused']}",
        f"delivered {d['delivered']} (exactly once: {d['delivered'] == d['accepted']})",
        f"ack p50 {ack['p50']:.3f} s, p99 {ack['p99']:.3f} s, max {ack['max']:.3f} s; "
        f"late/rejected callbacks {d['late_or_rejected_callbacks']}",
        f"request → image p50 {res['p50']:.2f} s, p99 {res['p99']:.2f} s, max {res['max']:.2f} s",
        f"wall {d['wall_seconds']:.1f} s, {d['images_per_second']:.2f} images/s",
        f"db rows {d['db_rows']} (counted {d['db_counted_rows']}); "
        f"users stopped by the rate limit {d['rate_limited_users']}",
        "problems: " + ("none" if not d["problems"] else "; ".join(d["problems"][:10])),
    ]
    return "\n".join(lines)


async def _main(args: argparse.Namespace) -> LoadReport:
    from generation.loader import load_engine
    from tests.fakediscord import FakeDiscord

    engine = load_engine(TINY_MODEL, device="cpu", safety_checker=False)
    config = LoadConfig(users=args.users, requests=args.requests, queue_size=args.queue_size)
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        # The fake runs on the bot's event loop: its check of every call against Discord's
        # spec (0.1-3 ms a call) would be timed as the bot's; the tests hold the bot to it.
        async with FakeDiscord(hold_to_spec=False) as fake:
            return await run_load(
                make_rig(fake, engine, Path(tmp) / "load.sqlite3", config), config
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--queue-size", type=int, default=8)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if min(args.users, args.requests, args.queue_size) < 1:
        print(
            "bench.load: --users, --requests and --queue-size must be at least 1", file=sys.stderr
        )
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s [%(threadName)s] %(message)s")
    report = asyncio.run(_main(args))
    print(render(report))
    if args.json is not None:
        write_json(args.json, {"machine": machine("cpu"), "load": report.as_dict()})
    return 0 if not report.problems else 1


if __name__ == "__main__":
    sys.exit(main())
