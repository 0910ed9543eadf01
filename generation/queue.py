"""The scheduling policy: a bounded queue, fair between users, that hands out compatible batches.

A plain class with no threads and no locks (TGI's router keeps `append`/`next_batch` apart
from the task that runs batches the same way). The in-process worker thread and the remote
generator both hold one under their own lock and only ask it what runs next.

Fairness is "least recently served first": each batch taken stamps its users with a rising
counter, and the next head is the queued user with the oldest stamp (never served first), ties
going to the user whose oldest job came first. While every user stays queued this is plain
rotation; unlike a rotation list it also stays fair when the user who is running now queues
again before anyone else arrives. Within one user, jobs keep their order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from generation.errors import QueueFullError

T = TypeVar("T")


@dataclass(eq=False, slots=True)
class _Entry(Generic[T]):
    item: T
    job_id: int
    user_id: int
    key: Hashable
    seq: int = field(default=0)
    weight: int = 1


class FairQueue(Generic[T]):
    """Queued items per user and the round-robin order of users; bounded by `capacity`.

    Each item is pushed with its job id (unique while queued), its user, its batch key
    (items with equal keys may run as one batch) and its weight (the pictures it makes): a
    batch holds at most `max_batch` of weight, except that its head is always taken whole (a
    job of 4 pictures runs even where `max_batch` is 1, as one batch of its own).
    """

    __slots__ = ("_by_id", "_count", "_jobs", "_seq", "_served", "_stamps", "capacity")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._jobs: dict[int, deque[_Entry[T]]] = {}  # user -> FIFO of their queued entries
        self._by_id: dict[int, _Entry[T]] = {}
        self._stamps: dict[int, int] = {}  # user -> counter when last served
        self._served = 0
        self._seq = 0
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[T]:
        """Queued items, user by user (not in run order: see `order()`)."""
        for entries in self._jobs.values():
            for entry in entries:
                yield entry.item

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._by_id

    @property
    def full(self) -> bool:
        return self._count >= self.capacity

    def push(self, item: T, *, job_id: int, user_id: int, key: Hashable, weight: int = 1) -> None:
        """Queue `item` last among its user's. Raises `QueueFullError` when at capacity and
        `ValueError` when `job_id` is queued already."""
        if self.full:
            raise QueueFullError(f"the generation queue is full ({self.capacity} jobs)")
        if job_id in self._by_id:
            raise ValueError(f"job {job_id} is already queued")
        if weight < 1:
            raise ValueError(f"weight must be at least 1, got {weight}")
        self._seq += 1
        entry = _Entry(item, job_id, user_id, key, self._seq, weight)
        self._jobs.setdefault(user_id, deque()).append(entry)
        self._by_id[job_id] = entry
        self._count += 1

    def remove(self, job_id: int) -> T | None:
        """Take a queued item out (a cancel); None if it is not queued."""
        entry = self._by_id.pop(job_id, None)
        if entry is None:
            return None
        jobs = self._jobs[entry.user_id]
        jobs.remove(entry)
        self._count -= 1
        if not jobs:
            del self._jobs[entry.user_id]
        return entry.item

    def take(self, max_batch: int) -> list[T]:
        """The next batch (empty when nothing is queued): the head by round-robin, filled
        with compatible items.

        Filling goes round the other users in round-robin order (then the head's user again),
        taking only each user's *first* queued item when compatible and when its weight still
        fits under `max_batch`, so every user's items stay in FIFO order.
        """
        return [entry.item for entry in self._take(max_batch)]

    def drain(self) -> list[T]:
        """Empty the queue; the items come back in the order they would have run one by one."""
        items: list[T] = []
        while self._count:
            items.extend(self.take(1))
        return items

    def positions(self, max_batch: int) -> dict[int, int]:
        """job id -> the batch it will run in (1 = next), replaying the policy on a copy."""
        twin = self._copy()
        out: dict[int, int] = {}
        position = 0
        while twin._count:
            position += 1
            for entry in twin._take(max_batch):
                out[entry.job_id] = position
        return out

    def order(self) -> list[T]:
        """Queued items in the order they would run one by one (a copy; nothing changes)."""
        return self._copy().drain()

    # ---- internals -------------------------------------------------------------------------

    def _copy(self) -> FairQueue[T]:
        twin: FairQueue[T] = FairQueue(self.capacity)
        twin._jobs = {user: deque(entries) for user, entries in self._jobs.items()}
        twin._by_id = dict(self._by_id)
        twin._stamps = dict(self._stamps)
        twin._served, twin._seq, twin._count = self._served, self._seq, self._count
        return twin

    def _order_users(self) -> list[int]:
        return sorted(
            self._jobs, key=lambda user: (self._stamps.get(user, -1), self._jobs[user][0].seq)
        )

    def _take(self, max_batch: int) -> list[_Entry[T]]:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if not self._count:
            return []
        order = self._order_users()
        head_user = order[0]
        head = self._jobs[head_user].popleft()
        batch, served = [head], {head_user}
        weight = head.weight
        rounds = [*order[1:], head_user]
        while weight < max_batch:
            added = False
            for user in rounds:
                jobs = self._jobs[user]
                if jobs and jobs[0].key == head.key and weight + jobs[0].weight <= max_batch:
                    weight += jobs[0].weight
                    batch.append(jobs.popleft())
                    served.add(user)
                    added = True
            if not added:
                break
        self._count -= len(batch)
        for entry in batch:
            del self._by_id[entry.job_id]
        self._served += 1
        for user in served:
            self._stamps[user] = self._served
        for user in order:
            if not self._jobs[user]:
                del self._jobs[user]
        # Forget users that are neither queued nor in this batch; they rank as new when back.
        self._stamps = {u: s for u, s in self._stamps.items() if u in self._jobs or u in served}
        return batch
