"""`generation.queue.FairQueue` on its own: no threads, no engine, just the policy."""

from __future__ import annotations

import pytest

from generation.errors import QueueFullError
from generation.queue import FairQueue

SQUARE = ("512x512", 25)
TALL = ("512x768", 25)


def queue_of(*jobs: tuple[int, int, object], capacity: int = 32) -> FairQueue[str]:
    """Jobs as (job id, user, batch key); items are named "u<user>j<job>"."""
    queue: FairQueue[str] = FairQueue(capacity)
    for job_id, user, key in jobs:
        queue.push(f"u{user}j{job_id}", job_id=job_id, user_id=user, key=key)
    return queue


def test_fifo_for_one_user() -> None:
    queue = queue_of((1, 7, SQUARE), (2, 7, SQUARE), (3, 7, SQUARE))
    assert [queue.take(1) for _ in range(3)] == [["u7j1"], ["u7j2"], ["u7j3"]]
    assert queue.take(1) == []


def test_round_robin_puts_a_second_user_after_the_first_users_first_job() -> None:
    queue = queue_of(*[(n, 1, SQUARE) for n in range(1, 6)], (6, 2, SQUARE))
    assert queue.order() == ["u1j1", "u2j6", "u1j2", "u1j3", "u1j4", "u1j5"]


def test_rotation_over_three_users_keeps_each_users_order() -> None:
    queue = queue_of((1, 1, SQUARE), (2, 1, SQUARE), (3, 2, SQUARE), (4, 3, SQUARE), (5, 2, SQUARE))
    assert queue.drain() == ["u1j1", "u2j3", "u3j4", "u1j2", "u2j5"]
    assert len(queue) == 0


def test_a_user_served_last_waits_behind_others_when_queueing_again() -> None:
    queue = queue_of((1, 1, SQUARE), (2, 2, SQUARE))
    assert queue.take(1) == ["u1j1"]
    queue.push("u1j3", job_id=3, user_id=1, key=SQUARE)  # user 1 is back while 2 waits
    assert queue.take(1) == ["u2j2"]
    assert queue.take(1) == ["u1j3"]


def test_capacity_refuses_the_next_push_with_queue_full() -> None:
    queue = queue_of((1, 1, SQUARE), (2, 2, SQUARE), capacity=2)
    assert queue.full
    with pytest.raises(QueueFullError):
        queue.push("x", job_id=3, user_id=3, key=SQUARE)
    queue.take(1)
    queue.push("u3j3", job_id=3, user_id=3, key=SQUARE)  # room again
    assert len(queue) == 2


def test_a_job_id_cannot_be_queued_twice() -> None:
    queue = queue_of((1, 1, SQUARE))
    with pytest.raises(ValueError, match="already queued"):
        queue.push("again", job_id=1, user_id=2, key=SQUARE)


def test_batch_takes_other_users_first_jobs_of_the_same_key_only() -> None:
    queue = queue_of((1, 1, SQUARE), (2, 2, TALL), (3, 2, SQUARE), (4, 3, SQUARE), (5, 1, SQUARE))
    # User 2's first job is TALL, so their SQUARE job may not jump ahead of it.
    assert queue.take(4) == ["u1j1", "u3j4", "u1j5"]
    assert queue.take(4) == ["u2j2"]
    assert queue.take(4) == ["u2j3"]


def test_batch_is_capped_at_max_batch() -> None:
    queue = queue_of(*[(n, n, SQUARE) for n in range(1, 7)])
    assert len(queue.take(4)) == 4
    assert len(queue) == 2


def test_positions_count_batches_in_the_order_they_will_run() -> None:
    queue = queue_of((1, 1, SQUARE), (2, 1, SQUARE), (3, 2, SQUARE), (4, 3, TALL))
    assert queue.positions(1) == {1: 1, 3: 2, 4: 3, 2: 4}
    assert queue.positions(2) == {1: 1, 3: 1, 4: 2, 2: 3}
    assert len(queue) == 4  # asking changed nothing


def test_cancel_removes_a_queued_job_and_later_ones_move_up() -> None:
    queue = queue_of((1, 1, SQUARE), (2, 2, SQUARE), (3, 3, SQUARE))
    assert queue.remove(2) == "u2j2"
    assert queue.remove(2) is None
    assert 2 not in queue
    assert queue.positions(1) == {1: 1, 3: 2}
    assert queue.drain() == ["u1j1", "u3j3"]


def test_max_batch_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        queue_of((1, 1, SQUARE)).take(0)
    with pytest.raises(ValueError, match="capacity"):
        FairQueue(0)


def test_the_batch_budget_counts_each_jobs_pictures_and_takes_a_heavy_head_whole() -> None:
    queue: FairQueue[str] = FairQueue(8)
    for job_id, user, weight in ((1, 1, 3), (2, 2, 2), (3, 3, 1), (4, 4, 4)):
        queue.push(f"u{user}j{job_id}", job_id=job_id, user_id=user, key=SQUARE, weight=weight)
    # 3 + 2 would pass 4: user 2 waits, user 3's single picture fills the batch.
    assert queue.positions(4) == {1: 1, 3: 1, 2: 2, 4: 3}
    assert queue.take(4) == ["u1j1", "u3j3"]
    assert queue.take(4) == ["u2j2"]  # 2 + 4 would pass 4
    assert queue.take(1) == ["u4j4"]  # heavier than the budget alone: taken whole
    with pytest.raises(ValueError, match="weight"):
        queue.push("x", job_id=9, user_id=9, key=SQUARE, weight=0)
