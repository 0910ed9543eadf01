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
"""

from __future__ import annotations

import collections
import threading
import time

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


def start_metrics_server(port: int, addr: str = "0.0.0.0") -> None:  # noqa: S104
    """Serve /metrics on `port` (a daemon thread). Raises OSError when the port is taken."""
    start_http_server(port, addr=addr)
