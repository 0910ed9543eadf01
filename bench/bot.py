"""Bot benchmark: the whole bot end to end against the tests' loopback fake Discord.

The real discord.py client talks over real sockets to `tests/fakediscord`, with the real
storage (a SQLite file), the real `generation-worker` thread and the tiny reference checkpoint
on CPU, built the way `tests/bot/conftest.py`'s `BotRig` builds it. It measures:

- acknowledgement latency: INTERACTION_CREATE sent → the defer callback received (the fake's
  clock), p50/p99, with `--users` users invoking /pokemon at once while the worker is busy;
- per-job overhead outside the pipeline: the job's time minus the engine's denoise time
  (queue hand-off, database writes, text encoding, VAE decode, PNG encoding, upload), p50/p99,
  once for jobs run one at a time (from the interaction) and once under the burst (from the
  moment the worker hands the job's batch to the engine: queue waiting is not overhead).

    python bench/bot.py                      # 50 users, 2 rounds, 20 idle jobs
    python bench/bot.py --quick --json out.json

The fake runs on the bot's own event loop, so its work is included in the latencies (a real
Discord's network time is not). See docs/PERFORMANCE.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, bench/ is first on sys.path and this file would shadow the `bot` package:
# put the repository root in front.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import logging
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bench.common import TINY_MODEL, machine, summary, table, write_json

log = logging.getLogger("bench.bot")

PROMPT = "ピカチュウ"


@dataclass(frozen=True, slots=True)
class EngineCall:
    """One `engine.generate` call as a member of it saw it (monotonic clock)."""

    entered: float
    exited: float
    batch: int
    timings: dict[str, float]


def timed_engine_class() -> type:
    """`GatedEngine` (tests/bot/conftest.py) that also records each request's engine call."""
    from tests.bot.conftest import GatedEngine

    class TimedEngine(GatedEngine):
        def __init__(self, engine: Any) -> None:
            super().__init__(engine)
            # (prompt, seed) -> call; written by the worker thread, read on the loop after
            # the job's result arrived (so after the write).
            self.records: dict[tuple[str, int], EngineCall] = {}

        def generate(
            self,
            requests: Sequence[Any],
            *,
            on_step: Callable[[int, int], None] | None = None,
            is_cancelled: Callable[[int], bool] | None = None,
        ) -> list[Any]:
            entered = time.monotonic()
            results = super().generate(requests, on_step=on_step, is_cancelled=is_cancelled)
            exited = time.monotonic()
            for request, result in zip(requests, results, strict=True):
                self.records[(request.prompt, request.seed)] = EngineCall(
                    entered, exited, len(requests), dict(getattr(result, "timings", {}))
                )
            return results

    return TimedEngine


@dataclass(slots=True)
class Job:
    """One /pokemon invocation and when each thing happened (the fake's monotonic clock)."""

    record: Any  # InteractionRecord
    prompt: str
    seed: int
    acked: float | None = None
    image: float | None = None  # the edit carrying the PNG arrived
    done: float | None = None  # the 🔁 reaction arrived: after mark_done, the job's last write
    call: EngineCall | None = None

    @property
    def delivered(self) -> float:
        return self.record.delivered_at


class BenchError(Exception):
    """Bad input: printed as one line, exit status 2."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the bot end to end against the loopback fake Discord."
    )
    parser.add_argument("--users", type=int, default=None, help="concurrent users (50)")
    parser.add_argument("--rounds", type=int, default=None, help="bursts of --users jobs (2)")
    parser.add_argument("--idle-jobs", type=int, default=None, help="jobs run one at a time (20)")
    parser.add_argument("--steps", type=int, default=None, help="steps per job (POKEMON_STEPS)")
    parser.add_argument("--size", type=int, default=64, help="image side (64)")
    parser.add_argument(
        "--max-batch", type=int, default=None, help="POKEMON_MAX_BATCH (the settings' default)"
    )
    parser.add_argument("--quick", action="store_true", help="10 users, 1 round, 3 steps")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("-v", "--verbose", action="store_true", help="log the bot's INFO lines")
    args = parser.parse_args(argv)
    from bot.settings import Settings

    fields = Settings.model_fields
    if args.users is None:
        args.users = 10 if args.quick else 50
    if args.rounds is None:
        args.rounds = 1 if args.quick else 2
    if args.idle_jobs is None:
        args.idle_jobs = 3 if args.quick else 20
    if args.steps is None:
        args.steps = 3 if args.quick else int(fields["pokemon_steps"].default)
    if args.max_batch is None:
        args.max_batch = int(fields["pokemon_max_batch"].default)
    for name in ("users", "rounds", "idle_jobs", "steps", "max_batch"):
        if getattr(args, name) < 1:
            raise BenchError(f"--{name.replace('_', '-')} must be at least 1")
    if args.size < 64 or args.size % 8:
        raise BenchError(f"--size must be a multiple of 8, at least 64, not {args.size}")
    return args


def _done_at(fake: Any, message_id: int) -> float | None:
    """When the bot's 🔁 on the result message reached the fake (after its `mark_done`)."""
    marker = f"/messages/{message_id}/reactions/"
    for request in fake.requests:
        if request.method == "PUT" and marker in request.path:
            return request.at
    return None


async def _finish(rig: Any, engine: Any, job: Job, within: float) -> None:
    """Wait for the job's image and 🔁, and fill in its times."""
    from bot.messaging import REGENERATE_EMOJI

    fake = rig.fake
    record = job.record
    await record.wait_response(within)
    job.acked = record.first_response_at
    message = await rig.wait_result(record, within)
    await fake.wait_until(lambda: message.reaction_users(REGENERATE_EMOJI), within)
    job.image = next((e.at for e in record.edits if e.attachments), None)
    job.done = _done_at(fake, message.id)
    job.call = engine.records.get((job.prompt, job.seed))


async def _invoke(fake: Any, user: Any, prompt: str, seed: int) -> Job:
    record = await fake.invoke("pokemon", {"prompt": prompt, "seed": seed}, user=user)
    return Job(record=record, prompt=prompt, seed=seed)


async def run_bench(args: argparse.Namespace, engine: Any) -> dict[str, Any]:
    """Start the fake, the bot and its worker; run the idle jobs, then the bursts."""
    from bot.messaging import PROGRESS_INTERVAL
    from bot.settings import Settings
    from tests.bot.conftest import BotRig
    from tests.fakediscord import FakeDiscord

    within = 120.0
    with tempfile.TemporaryDirectory(prefix="bench-bot-") as tmp:
        # The fake runs on the bot's event loop: its check of every call against Discord's
        # spec (0.1-3 ms a call) would be timed as the bot's; the tests hold the bot to it.
        async with FakeDiscord(hold_to_spec=False) as fake:
            users = []
            for index in range(args.users):
                user = fake.add_user(f"user{index}")
                fake.add_member(fake.guild, user)
                users.append(user)
            settings = Settings(
                _env_file=None,
                discord_token=fake.token,
                pokemon_model=str(TINY_MODEL),
                pokemon_device="cpu",
                pokemon_db=Path(tmp) / "bench.sqlite3",
                pokemon_size=args.size,
                pokemon_steps=args.steps,
                pokemon_max_steps=max(args.steps, 50),
                pokemon_queue_size=2 * args.users + 8,
                pokemon_max_batch=args.max_batch,
                pokemon_user_max_pending=2,
                pokemon_safety_checker="off",
                pokemon_rate_limit=100_000,  # the bench measures speed, not quotas
                pokemon_rate_period="day",
            )
            # Production's progress pacing (tests use 0 to see every step).
            rig = BotRig(
                fake=fake, settings=settings, engine=engine, progress_interval=PROGRESS_INTERVAL
            )
            async with rig.run() as bot:
                # Warm-up: first job allocates, fills caches, opens the upload path.
                warm = await _invoke(fake, fake.alice, f"{PROMPT} warm-up", 0)
                await _finish(rig, engine, warm, within)

                log.info("%s jobs one at a time…", args.idle_jobs)
                idle: list[Job] = []
                for index in range(args.idle_jobs):
                    job = await _invoke(fake, fake.alice, f"{PROMPT} idle {index}", index)
                    await _finish(rig, engine, job, within)
                    idle.append(job)

                burst: list[Job] = []
                for round_index in range(args.rounds):
                    log.info(
                        "round %s: %s users at once, worker busy…", round_index + 1, args.users
                    )
                    # A long job first, so the worker is computing when the burst lands.
                    blocker = await _invoke(
                        fake, fake.bob, f"{PROMPT} blocker {round_index}", round_index
                    )
                    await fake.wait_until(lambda: bot.generator.worker.running > 0, within)
                    jobs = await asyncio.gather(
                        *(
                            _invoke(fake, user, f"{PROMPT} r{round_index} u{i}", i)
                            for i, user in enumerate(users)
                        )
                    )
                    await asyncio.gather(*(_finish(rig, engine, job, within) for job in jobs))
                    await _finish(rig, engine, blocker, within)
                    burst.extend(jobs)
                rejected = sum(len(job.record.rejected) for job in [*idle, *burst])
    return _report(args, idle, burst, rejected)


@dataclass(frozen=True, slots=True)
class Timed:
    """A finished job's moments (monotonic seconds) and the engine's own timings."""

    delivered: float
    acked: float
    image: float
    done: float
    entered: float
    exited: float
    batch: int
    timings: dict[str, float]

    @property
    def denoise(self) -> float:
        return self.timings["denoise"]

    def parts(self) -> dict[str, float]:
        """Where one job's time went, from the interaction to its last write."""
        return {
            "end_to_end": self.done - self.delivered,
            "ack": self.acked - self.delivered,
            "admit_and_queue": self.entered - self.acked,
            "text_encode": self.timings.get("encode", 0.0),
            "denoise": self.denoise,
            "vae_decode": self.timings.get("decode", 0.0),
            "png_encode": self.timings.get("png", 0.0),
            "engine_other": (self.exited - self.entered)
            - sum(self.timings.get(k, 0.0) for k in ("encode", "denoise", "decode", "png")),
            "handoff_and_upload": self.image - self.exited,
            "mark_done_and_react": self.done - self.image,
        }


def _timed(jobs: list[Job]) -> list[Timed]:
    done = []
    for job in jobs:
        call = job.call
        if None in (job.acked, job.image, job.done) or call is None:
            continue
        if "denoise" not in call.timings:
            continue
        done.append(
            Timed(
                delivered=job.delivered,
                acked=job.acked,  # type: ignore[arg-type]
                image=job.image,  # type: ignore[arg-type]
                done=job.done,  # type: ignore[arg-type]
                entered=call.entered,
                exited=call.exited,
                batch=call.batch,
                timings=call.timings,
            )
        )
    return done


def _report(
    args: argparse.Namespace, idle: list[Job], burst: list[Job], rejected: int
) -> dict[str, Any]:
    idle_ok, burst_ok = _timed(idle), _timed(burst)
    idle_parts = [t.parts() for t in idle_ok]
    return {
        "benchmark": "bot",
        "machine": machine("cpu"),
        "config": {
            "users": args.users,
            "rounds": args.rounds,
            "idle_jobs": args.idle_jobs,
            "steps": args.steps,
            "size": args.size,
            "max_batch": args.max_batch,
            "model": str(TINY_MODEL),
            "safety_checker": "off",
            "quick": args.quick,
        },
        "ack_latency_s": summary([j.acked - j.delivered for j in burst if j.acked is not None]),
        "idle_ack_latency_s": summary([t.acked - t.delivered for t in idle_ok]),
        # One at a time: everything from the interaction to the job's last write, but denoising.
        "job_overhead_idle_s": summary([t.done - t.delivered - t.denoise for t in idle_ok]),
        # Under the burst: from when the job's batch entered the engine (queueing is waiting,
        # not overhead) to the job's last write, but denoising.
        "job_overhead_busy_s": summary([t.done - t.entered - t.denoise for t in burst_ok]),
        "idle_breakdown_s": {
            name: summary([parts[name] for parts in idle_parts])
            for name in (idle_parts[0] if idle_parts else {})
        },
        "busy": {
            "queue_wait_s": summary([t.entered - t.acked for t in burst_ok]),
            "end_to_end_s": summary([t.done - t.delivered for t in burst_ok]),
            "batch_sizes_seen": dict(Counter(str(t.batch) for t in burst_ok)),
        },
        "jobs": {
            "idle": len(idle),
            "burst": len(burst),
            "complete": len(idle_ok) + len(burst_ok),
            "rejected_calls": rejected,
        },
    }


def render(results: dict[str, Any]) -> str:
    config = results["config"]
    ms = 1000.0
    rows = []
    for key, label in (
        ("ack_latency_s", f"ack latency, {config['users']} users at once, worker busy"),
        ("idle_ack_latency_s", "ack latency, one job at a time"),
        ("job_overhead_idle_s", "per-job overhead, one job at a time"),
        ("job_overhead_busy_s", "per-job overhead, under the burst"),
    ):
        row = results[key]
        rows.append([label, row["p50"] * ms, row["p99"] * ms, row["max"] * ms, row["n"]])
    breakdown = results["idle_breakdown_s"]
    parts = [[name, row["p50"] * ms, row["p99"] * ms] for name, row in breakdown.items()]
    info = results["machine"]
    return "\n".join(
        [
            f"bot end to end: {info['cpu']}, {info['cpus']} CPUs; tiny model {config['size']}², "
            f"{config['steps']} steps, max_batch={config['max_batch']}, {config['rounds']} "
            f"round(s) of {config['users']} users; rejected calls: "
            f"{results['jobs']['rejected_calls']}",
            "",
            table(rows, ["measure", "p50 ms", "p99 ms", "max ms", "n"]),
            "",
            "one job at a time, where the time went:",
            "",
            table(parts, ["part", "p50 ms", "p99 ms"]),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: 0 on success, 2 on bad input."""
    try:
        args = parse_args(argv)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for name in ("generation", "bot", "discord", "storage", "tests", "aiohttp"):
        logging.getLogger(name).setLevel(logging.INFO if args.verbose else logging.WARNING)
    logging.getLogger("discord.client").setLevel(logging.ERROR)  # no voice: not a problem here
    from generation.loader import load_engine

    # Safety checker off, as in the tests: the tiny model's random weights flag at random.
    tiny = load_engine(TINY_MODEL, device="cpu", safety_checker=False)
    engine = timed_engine_class()(tiny)
    results = asyncio.run(run_bench(args, engine))
    print(render(results))
    if args.json is not None:
        write_json(args.json, results)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
