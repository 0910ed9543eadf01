"""What the bot and the remote workers share on Redis: key names, the wire format, connecting.

The layout (every key under one prefix, `pokemon` by default):

- `P:jobs`: the jobs stream. The bot adds one entry per job it releases; the workers read it
  as the consumer group `workers` (XREADGROUP), keep their own entries fresh while they hold
  them (XCLAIM ... JUSTID), reclaim entries of dead workers (XAUTOCLAIM) and acknowledge an
  entry (XACK, then XDEL) only in the same atomic step that writes its result.
- `P:results`: one terminal entry per job (done with the PNG, failed with a code, cancelled),
  read by the bot as the consumer group `bot`, so results written while the bot was down are
  read when it comes back. The bot acknowledges and deletes an entry once it handed it on.
- `P:events`: started and progress entries (lossy, trimmed to about `EVENTS_MAXLEN`), read by
  the bot in the same XREADGROUP call as the results, so a job's progress is never read after
  its result. A progress entry may carry a `preview` field (a small JPEG, at most
  `PREVIEW_WIRE_MAX_BYTES`; a larger one is left out, the entry still goes); the bot deletes
  such an entry once read.
- `P:job:ID`: a hash per released job (`state`: queued, running, done, delivered) that makes a
  second submit of the same job attach instead of running it twice, and a second completion
  change nothing. While the bot has the job in flight, a missing hash means Redis lost its
  data: the bot sends the job again.
- `P:cancel:ID` (a key with a TTL) and `P:cancels` (a stream): a cancel reaches a job still in
  the stream (the worker checks the key when it reads the entry) and a running one (workers
  follow the stream and stop it within a step).
- `P:dead`: the dead-letter stream: entries delivered more than the limit (poison jobs), kept
  up to `DEAD_MAXLEN`. An entry there is `dead_letter(...)`: ids, counts, the reason and the
  request's numbers only, never its prompts or source picture (they would outlive the bot's
  retention and `forget-user`).
- `P:worker:NAME` (a hash with a TTL, refreshed by the heartbeat) and the set `P:workers`:
  the registry of live workers.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from generation.errors import GenerationError, one_line
from generation.types import DRAW, GeneratedImage, GenerationRequest, GenerationResult, Progress

WORKERS_GROUP = "workers"
BOT_GROUP = "bot"
EVENTS_MAXLEN = 10_000
# A progress entry carries a preview only up to this size (a 128² JPEG is 3-7 KB, a set of four
# side by side up to about 24 KB while still noisy: docs/PERFORMANCE.md). The bot deletes an
# entry with a preview once it read it, so previews stay in Redis only while the bot is behind.
PREVIEW_WIRE_MAX_BYTES = 32 * 1024
CANCELS_MAXLEN = 1_000
DEAD_MAXLEN = 10_000
JOB_TTL_SECONDS = 7 * 86400  # a job's hash outlives any plausible bot downtime
CANCEL_TTL_SECONDS = 86400

log = logging.getLogger(__name__)


class Keys:
    """The Redis key names under one prefix."""

    def __init__(self, prefix: str = "pokemon") -> None:
        self.prefix = prefix
        self.jobs = f"{prefix}:jobs"
        self.results = f"{prefix}:results"
        self.events = f"{prefix}:events"
        self.cancels = f"{prefix}:cancels"
        self.dead = f"{prefix}:dead"
        self.workers = f"{prefix}:workers"

    def job(self, job_id: int) -> str:
        return f"{self.prefix}:job:{job_id}"

    def cancel(self, job_id: int) -> str:
        return f"{self.prefix}:cancel:{job_id}"

    def worker(self, name: str) -> str:
        return f"{self.prefix}:worker:{name}"


def connect(url: str) -> Any:
    """A `redis.asyncio.Redis` for `url` (redis://, rediss:// for TLS, unix://; a password in
    the URL). Connecting happens at the first command. Bytes in, bytes out (PNGs are binary)."""
    import redis.asyncio

    return redis.asyncio.from_url(
        url,
        protocol=2,
        socket_connect_timeout=5,
        health_check_interval=10,
    )


def redis_errors() -> tuple[type[BaseException], ...]:
    """The errors that mean "Redis cannot be reached right now" (retry with back-off)."""
    import redis.exceptions

    return (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


def redact_url(url: str) -> str:
    """The URL without its password, for logs and `doctor`: `redis://:secret@host:6379/0` ->
    `redis://host:6379/0`, `rediss://user:pw@host` -> `rediss://user@host`. Split as redis-py
    splits it (`urllib.parse`), and a `password=` in the query (which redis-py also reads)
    is left out too."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None and "password" not in urllib.parse.parse_qs(parts.query):
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    query = "&".join(
        pair for pair in parts.query.split("&") if pair and pair.split("=")[0] != "password"
    )
    netloc = f"{user}@{host}" if user else host
    # Not urlunsplit: it drops the `//` of an empty host (`unix:///path` would lose it).
    return f"{parts.scheme}://{netloc}{parts.path}{'?' if query else ''}{query}"


def url_secrets(url: str) -> list[str]:
    """The password a Redis URL holds (as written, and decoded as redis-py reads it), in its
    user part or as `password=` in its query: what the log must never show. The rest of the
    URL may be shown (`redact_url`)."""
    parts = urllib.parse.urlsplit(url)
    written = [parts.password or "", *urllib.parse.parse_qs(parts.query).get("password", [])]
    found = {form for secret in written for form in (secret, urllib.parse.unquote(secret))}
    return sorted(found - {""}, key=len, reverse=True)


class Reachability:
    """Says in the log whether Redis can be reached, without a line per retry: one warning when
    it cannot (naming the URL without its password, and what that means for `impact`), again
    once every `repeat` seconds while that lasts, and one line when it can again."""

    def __init__(
        self,
        url: str,
        *,
        impact: str,
        repeat: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.where = redact_url(url)
        self.impact = impact
        self.repeat = repeat
        self._clock = clock
        self._down_since: float | None = None
        self._said_at = 0.0
        self.reason = "not connected yet"

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def failed(self, exc: BaseException) -> None:
        """A try to reach Redis failed with `exc`."""
        now = self._clock()
        self.reason = one_line(exc)
        if self._down_since is None:
            self._down_since = self._said_at = now
            log.warning("cannot reach Redis at %s: %s; %s", self.where, self.reason, self.impact)
        elif now - self._said_at >= self.repeat:
            self._said_at = now
            log.warning(
                "Redis at %s still cannot be reached after %.0f s: %s; %s",
                self.where,
                now - self._down_since,
                self.reason,
                self.impact,
            )

    def reached(self) -> None:
        """A command reached Redis: says so once if it could not before."""
        if self._down_since is not None:
            log.warning(
                "Redis at %s can be reached again (after %.0f s)",
                self.where,
                self._clock() - self._down_since,
            )
            self._down_since = None
        self.reason = ""


# ---- the wire format ---------------------------------------------------------------------------


def text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


def field(fields: Mapping[bytes, bytes], name: str) -> str:
    return text(fields.get(name.encode()))


Entry = tuple[bytes, dict[bytes, bytes]]  # (entry id, fields); fields are empty once deleted


def by_stream(reply: Any) -> dict[str, list[Entry]]:
    """An XREAD / XREADGROUP reply as stream name -> its entries."""
    found: dict[str, list[Entry]] = {}
    pairs: list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes] | None]]]] = reply or []
    for stream, entries in pairs:
        found[text(stream)] = [(entry_id, fields or {}) for entry_id, fields in entries]
    return found


_BYTES = "__bytes__"  # JSON has no bytes: {"__bytes__": base64} stands for a bytes value


def _to_json(values: dict[str, Any]) -> str:
    return json.dumps(
        {
            name: {_BYTES: base64.b64encode(value).decode()} if isinstance(value, bytes) else value
            for name, value in values.items()
        },
        ensure_ascii=False,
    )


def _from_json(data: str) -> dict[str, Any]:
    values: dict[str, Any] = json.loads(data)
    return {name: _bytes_or_value(value) for name, value in values.items()}


def _bytes_or_value(value: object) -> object:
    if not isinstance(value, dict):
        return value
    marked = cast("dict[str, object]", value)
    encoded = marked.get(_BYTES)
    if len(marked) == 1 and isinstance(encoded, str):
        return base64.b64decode(encoded)
    return marked


def encode_request(request: GenerationRequest) -> str:
    """Every field of the request (bytes, such as an image-to-image source, as base64), so new
    fields travel without changes here; but a drawing's `kind`, so that a worker older than
    request kinds still reads every drawing."""
    values = dataclasses.asdict(request)
    if values["kind"] == DRAW:
        del values["kind"]
    return _to_json(values)


def decode_request(data: str) -> GenerationRequest:
    """A request from its JSON; unknown fields (from a newer bot) are a clear error."""
    values = _from_json(data)
    known = {f.name for f in dataclasses.fields(GenerationRequest)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise GenerationError(f"this worker does not know the request fields {unknown}")
    return GenerationRequest(**values)


# What a dead-letter entry keeps of its request: enough to see why it failed (its size,
# steps, pictures, sampler, strength), named one by one so that a new field, which may hold
# user text, is left out until it is added here.
DEAD_REQUEST_FIELDS = (
    "seed",
    "steps",
    "guidance",
    "width",
    "height",
    "scheduler",
    "translate",
    "strength",
    "count",
)


def dead_letter(
    fields: Mapping[bytes, bytes], *, reason: str, attempts: int, deliveries: int, worker: str
) -> dict[str, str]:
    """The `P:dead` entry for a jobs-stream entry set aside as poison: the job and user ids,
    when it was submitted, why and by which worker, and the request's numbers (with the size
    of its source picture, if any). Prompts and the picture itself are left out: the stream is
    outside the bot's retention and `forget-user`."""
    entry = {
        "job": field(fields, "job"),
        "reason": reason,
        "attempts": str(attempts),
        "deliveries": str(deliveries),
        "worker": worker,
    }
    for name in ("user", "submitted"):
        if field(fields, name):
            entry[name] = field(fields, name)
    summary: dict[str, object] = {}
    try:
        request: object = json.loads(field(fields, "request"))
    except ValueError:
        request = None
    if isinstance(request, dict):
        values = cast("dict[str, object]", request)
        summary = {
            name: values[name]
            for name in DEAD_REQUEST_FIELDS
            if isinstance(values.get(name), bool | int | float | str)
        }
        image = values.get("init_image")
        if image is not None:
            summary["init_image_bytes"] = _encoded_size(image)
    entry["request"] = json.dumps(summary, ensure_ascii=False)
    return entry


def _encoded_size(value: object) -> int | None:
    """How many bytes a `{"__bytes__": base64}` value holds (None if it is not one)."""
    if isinstance(value, dict):
        encoded = cast("dict[str, object]", value).get(_BYTES)
        if isinstance(encoded, str):
            return len(encoded) * 3 // 4 - encoded[-2:].count("=")
    return None


def encode_progress(progress: Progress) -> dict[str, str | bytes]:
    """A progress entry's fields; its preview only when within `PREVIEW_WIRE_MAX_BYTES` (a
    larger one is left out: the progress still goes)."""
    entry: dict[str, str | bytes] = {
        "type": "progress",
        "job": str(progress.job_id),
        "step": str(progress.step),
        "total": str(progress.total),
        "elapsed": f"{progress.elapsed:.3f}",
    }
    preview = progress.preview
    if preview is not None and len(preview) <= PREVIEW_WIRE_MAX_BYTES:
        entry["preview"] = preview
    return entry


def encode_result(result: GenerationResult) -> dict[str, str | bytes]:
    """A finished job: each picture's PNG as raw bytes in its own field (`png0`, `png1`, ...),
    everything else as JSON in `meta`."""
    meta = dataclasses.asdict(result)
    fields: dict[str, str | bytes] = {"type": "done"}
    for index, image in enumerate(meta["images"]):
        fields[f"png{index}"] = image.pop("png")
    fields["meta"] = _to_json(meta)
    return fields


def decode_result(fields: Mapping[bytes, bytes]) -> GenerationResult:
    """A finished job from its fields. Fields this bot does not know (from a newer worker) are
    left out, and fields an older worker did not send take their defaults (`model`: "")."""
    meta = _from_json(field(fields, "meta"))
    images = tuple(
        GeneratedImage(
            png=bytes(fields.get(f"png{index}".encode(), b"")), **_known(GeneratedImage, image)
        )
        for index, image in enumerate(meta.pop("images"))
    )
    return GenerationResult(images=images, **_known(GenerationResult, meta))


def _known(cls: type[Any], values: dict[str, Any]) -> dict[str, Any]:
    names = {spec.name for spec in dataclasses.fields(cls)}
    return {name: value for name, value in values.items() if name in names}


def encode_error(error: GenerationError) -> dict[str, str | bytes]:
    return {"type": "failed", "code": error.code, "message": str(error)}


def _error_classes() -> dict[str, type[GenerationError]]:
    found: dict[str, type[GenerationError]] = {}
    pending: list[type[GenerationError]] = [GenerationError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return found


def decode_error(fields: Mapping[bytes, bytes]) -> GenerationError:
    """The worker's error as the same class (by its code), so the bot maps it as for the thread."""
    cls = _error_classes().get(field(fields, "code"), GenerationError)
    return cls(field(fields, "message") or cls.code)


async def ensure_group(client: Any, stream: str, group: str, *, start: str = "0") -> None:
    """Create the consumer group (and the stream) unless it exists."""
    import redis.exceptions

    try:
        await client.xgroup_create(stream, group, id=start, mkstream=True)
    except redis.exceptions.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


# ---- the worker registry -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One live worker, as its heartbeat hash says."""

    name: str
    device: str
    model: str
    max_batch: int
    jobs_done: int
    running: int
    started_at: float  # Unix time
    seen_at: float  # Unix time of the last heartbeat

    def to_fields(self) -> dict[str, str]:
        return {f.name: str(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_fields(cls, fields: Mapping[bytes, bytes]) -> WorkerInfo:
        return cls(
            name=field(fields, "name"),
            device=field(fields, "device"),
            model=field(fields, "model"),
            max_batch=int(field(fields, "max_batch") or 1),
            jobs_done=int(field(fields, "jobs_done") or 0),
            running=int(field(fields, "running") or 0),
            started_at=float(field(fields, "started_at") or 0),
            seen_at=float(field(fields, "seen_at") or 0),
        )


async def read_workers(client: Any, keys: Keys) -> list[WorkerInfo]:
    """The workers whose heartbeat has not expired, by name; expired names are forgotten."""
    names = sorted(text(name) for name in await client.smembers(keys.workers))
    if not names:
        return []
    async with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hgetall(keys.worker(name))
        hashes = await pipe.execute()
    live: list[WorkerInfo] = []
    gone: list[str] = []
    for name, fields in zip(names, hashes, strict=True):
        if fields:
            try:
                live.append(WorkerInfo.from_fields(fields))
            except ValueError:
                gone.append(name)
        else:
            gone.append(name)
    if gone:
        await client.srem(keys.workers, *gone)
    return live
