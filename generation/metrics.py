"""Prometheus metrics of the bot and the workers (prometheus-client), served only when asked.

The metric objects always exist and cost a few counters; `start_metrics_server(port)` (when
`POKEMON_METRICS_PORT` is set) serves them at http://HOST:PORT/metrics. The bot and each worker
are separate processes with their own endpoint; a worker's series carry its name in `worker`.

Names (documented in the README, "More than one GPU"):

- `pokemon_jobs_total{outcome}`: finished jobs by outcome (done, failed code, cancelled).
- `pokemon_queue_length`: jobs waiting (bot: held plus in flight not started; worker: local).
- `pokemon_running_jobs`: jobs generating now.
- `pokemon_queued_seconds`: histogram, submit to start.
- `pokemon_generating_seconds`: histogram, start to result.
- `pokemon_images_total` and `pokemon_images_per_second` (the last minute).
- `pokemon_workers_online` and `pokemon_worker_capacity` (bot: from the registry).
- `pokemon_discord_api_errors_total{kind}`: Discord API errors the bot met (the bot counts them).
- `pokemon_time_to_picture_seconds`: histogram, a request to its picture on Discord (the bot).
- `pokemon_disk_free_bytes{path}` and `pokemon_disk_size_bytes{path}`: the disk of a watched
  folder (the bot: its database's), read at each scrape.

`deploy/prometheus/` and `deploy/grafana/` (README, "Monitoring") chart and alert on these.
"""

from __future__ import annotations

import collections
import math
import shutil
import threading
import time
from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram, start_http_server

# Seconds: from a warm GPU's sub-second job to a CPU's minutes.
_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
RATE_WINDOW_SECONDS = 60.0

JOBS = Counter("pokemon_jobs", "Finished jobs by outcome.", ["outcome"])
QUEUE_LENGTH = Gauge("pokemon_queue_length", "Jobs waiting to run.")
RUNNING = Gauge("pokemon_running_jobs", "Jobs generating now.")
QUEUED_SECONDS = Histogram("pokemon_queued_seconds", "Time from submit to start.", buckets=_BUCKETS)
GENERATING_SECONDS = Histogram(
    "pokemon_generating_seconds", "Time from start to result.", buckets=_BUCKETS
)
IMAGES = Counter("pokemon_images", "Images generated.")
IMAGES_PER_SECOND = Gauge(
    "pokemon_images_per_second", f"Images per second over the last {RATE_WINDOW_SECONDS:g} s."
)
WORKERS_ONLINE = Gauge("pokemon_workers_online", "Generation workers with a live heartbeat.")
WORKER_CAPACITY = Gauge("pokemon_worker_capacity", "Sum of the live workers' batch sizes.")
DISCORD_API_ERRORS = Counter(
    "pokemon_discord_api_errors", "Discord API errors the bot met.", ["kind"]
)
# What a user waits, from the command (or 🔁) to the picture: a resumed job's wait includes the
# restart, hence the long tail.
TIME_TO_PICTURE = Histogram(
    "pokemon_time_to_picture_seconds",
    "Time from a request to its picture on Discord.",
    buckets=(1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0),
)
DISK_FREE = Gauge(
    "pokemon_disk_free_bytes", "Bytes free to the bot on the disk of a folder.", ["path"]
)
DISK_SIZE = Gauge("pokemon_disk_size_bytes", "Size in bytes of the disk of a folder.", ["path"])


class _Rate:
    """Events per second over a sliding window, for the images-per-second gauge."""

    def __init__(self, window: float) -> None:
        self._window = window
        self._times: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def add(self, count: int = 1) -> None:
        now = time.monotonic()
        with self._lock:
            self._times.extend([now] * count)
            self._trim(now)

    def value(self) -> float:
        with self._lock:
            self._trim(time.monotonic())
            return len(self._times) / self._window

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self._window:
            self._times.popleft()


_rate = _Rate(RATE_WINDOW_SECONDS)
IMAGES_PER_SECOND.set_function(_rate.value)


def record_outcome(
    outcome: str, *, queued: float | None = None, run: float | None = None, images: int = 1
) -> None:
    """One finished job: its outcome, its times when known, and (done) how many pictures."""
    JOBS.labels(outcome=outcome).inc()
    if queued is not None:
        QUEUED_SECONDS.observe(max(0.0, queued))
    if run is not None:
        GENERATING_SECONDS.observe(max(0.0, run))
    if outcome == "done":
        IMAGES.inc(images)
        _rate.add(images)


def record_delivery(seconds: float) -> None:
    """A picture reached Discord `seconds` after it was asked for."""
    TIME_TO_PICTURE.observe(max(0.0, seconds))


def watch_disk(folder: Path) -> None:
    """Report the free and total bytes of the disk that holds `folder` at each scrape (NaN
    while it cannot be read, so an alert on the free space is not fooled by a zero)."""
    label = str(folder.resolve())

    def read(field: str) -> float:
        try:
            return float(getattr(shutil.disk_usage(folder), field))
        except OSError:
            return math.nan

    DISK_FREE.labels(path=label).set_function(lambda: read("free"))
    DISK_SIZE.labels(path=label).set_function(lambda: read("total"))


def start_metrics_server(port: int, addr: str = "0.0.0.0") -> None:  # noqa: S104
    """Serve /metrics on `port` (a daemon thread). Raises OSError when the port is taken."""
    start_http_server(port, addr=addr)
