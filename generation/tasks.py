"""The one way to run background work on the event loop (python-discord's `scheduling`).

`Tasks.spawn()` keeps a reference (so the task is not garbage-collected mid-flight), logs a
failure with its traceback the moment the task ends, and `close()` cancels and awaits whatever
is still running at shutdown. Every fire-and-forget coroutine in the bot and in generation goes
through one (it lives here, not in `bot/`, because generation may not import the bot).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class Tasks:
    """A set of named background tasks owned by one component."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
        """Run `coro` in the background; a failure is logged with its traceback."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    async def wait(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait until every task now running has ended; False if `timeout` ran out first."""
        if not self._tasks:
            return True
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        return not pending

    async def close(self) -> None:
        """Cancel every task still running and wait for them to end."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error(
                "%s: background task %s failed",
                self.owner,
                task.get_name(),
                exc_info=(type(error), error, error.__traceback__),
            )
