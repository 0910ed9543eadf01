"""A guild's blocklist: words as given, per guild, bounded, and every change audited."""

from __future__ import annotations

import asyncio

import pytest

from storage import MAX_BLOCKLIST_WORDS, Storage, StorageError
from tests.storage.conftest import FakeClock

GUILD, ADMIN, OTHER_ADMIN = 2001, 5, 6


async def count(store: Storage, table: str) -> int:
    sql = {
        "words": "SELECT COUNT(*) FROM blocklist",
        "audit": "SELECT COUNT(*) FROM blocklist_audit",
    }
    return await store.db.read(lambda tx: tx.scalar(sql[table]))


async def test_words_are_added_once_listed_per_guild_and_removed(store: Storage) -> None:
    assert await store.blocklist.add(GUILD, "ぴかちゅう", actor_id=ADMIN)
    assert await store.blocklist.add(GUILD, "ざしあん", actor_id=ADMIN)
    assert not await store.blocklist.add(GUILD, "ぴかちゅう", actor_id=OTHER_ADMIN)
    assert await store.blocklist.add(GUILD + 1, "ぴかちゅう", actor_id=ADMIN)
    assert await store.blocklist.words(GUILD) == ["ざしあん", "ぴかちゅう"]
    assert await store.blocklist.words(GUILD + 1) == ["ぴかちゅう"]
    assert await store.blocklist.words(GUILD + 2) == []

    assert await store.blocklist.remove(GUILD, "ぴかちゅう", actor_id=ADMIN)
    assert not await store.blocklist.remove(GUILD, "ぴかちゅう", actor_id=ADMIN)
    assert await store.blocklist.words(GUILD) == ["ざしあん"]
    assert await store.blocklist.words(GUILD + 1) == ["ぴかちゅう"]


async def test_a_word_is_stored_exactly_as_given(store: Storage) -> None:
    # Normalizing (NFKC, case, kana) is the bot's job; storage must not half-do it.
    for word in ("ﾋﾟｶﾁｭｳ", "ピカチュウ", "Pikachu", "pikachu"):
        assert await store.blocklist.add(GUILD, word, actor_id=ADMIN)
    assert sorted(await store.blocklist.words(GUILD)) == sorted(
        ["ﾋﾟｶﾁｭｳ", "ピカチュウ", "Pikachu", "pikachu"]
    )


async def test_every_change_is_audited_newest_first_and_no_ops_are_not(
    store: Storage, clock: FakeClock
) -> None:
    t1 = clock.now
    await store.blocklist.add(GUILD, "いち", actor_id=ADMIN)
    t2 = clock.advance(minutes=1)
    await store.blocklist.add(GUILD, "いち", actor_id=ADMIN)  # already there
    await store.blocklist.remove(GUILD, "に", actor_id=ADMIN)  # never there
    await store.blocklist.remove(GUILD, "いち", actor_id=OTHER_ADMIN)
    await store.blocklist.add(GUILD + 1, "さん", actor_id=ADMIN)
    audit = await store.blocklist.audit(GUILD)
    assert [(e.guild_id, e.action, e.word, e.actor_id, e.at) for e in audit] == [
        (GUILD, "remove", "いち", OTHER_ADMIN, t2),
        (GUILD, "add", "いち", ADMIN, t1),
    ]
    assert len(await store.blocklist.audit(GUILD, limit=1)) == 1


async def test_a_full_blocklist_refuses_one_more_word_with_its_own_code(store: Storage) -> None:
    for n in range(MAX_BLOCKLIST_WORDS):
        assert await store.blocklist.add(GUILD, f"word{n:03d}", actor_id=ADMIN)
    with pytest.raises(StorageError, match="full") as caught:
        await store.blocklist.add(GUILD, "one-more", actor_id=ADMIN)
    assert caught.value.code == "blocklist_full"
    assert (await count(store, "words"), await count(store, "audit")) == (200, 200)
    # A word already there is still just "already there"; another guild has its own room.
    assert not await store.blocklist.add(GUILD, "word000", actor_id=ADMIN)
    assert await store.blocklist.add(GUILD + 1, "one-more", actor_id=ADMIN)
    await store.blocklist.remove(GUILD, "word000", actor_id=ADMIN)
    assert await store.blocklist.add(GUILD, "one-more", actor_id=ADMIN)


async def test_concurrent_adds_never_pass_the_limit(open_store: object) -> None:
    first = await open_store()  # type: ignore[operator]
    second = await open_store()  # type: ignore[operator]
    for n in range(MAX_BLOCKLIST_WORDS - 5):
        await first.blocklist.add(GUILD, f"word{n:03d}", actor_id=ADMIN)

    async def add(n: int) -> bool | str:
        store = first if n % 2 else second
        try:
            return await store.blocklist.add(GUILD, f"new{n}", actor_id=ADMIN)
        except StorageError as exc:
            return exc.code

    results = await asyncio.gather(*(add(n) for n in range(20)))
    assert results.count(True) == 5
    assert results.count("blocklist_full") == 15
    assert len(await first.blocklist.words(GUILD)) == MAX_BLOCKLIST_WORDS


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("あ" * 101, "at most 100 characters, not 101"),
        ("ピカ\ud800", "not valid text: it has a lone surrogate"),
        (42, "must be text, not int"),
    ],
)
async def test_a_word_the_blocklist_cannot_hold_is_a_value_error(
    store: Storage, word: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        await store.blocklist.add(GUILD, word, actor_id=ADMIN)  # type: ignore[arg-type]
    assert not isinstance(caught.value, UnicodeError)
    with pytest.raises(ValueError, match=message):
        await store.blocklist.remove(GUILD, word, actor_id=ADMIN)  # type: ignore[arg-type]
    assert (await count(store, "words"), await count(store, "audit")) == (0, 0)


async def test_the_longest_word_is_accepted(store: Storage) -> None:
    assert await store.blocklist.add(GUILD, "あ" * 100, actor_id=ADMIN)
    assert await store.blocklist.words(GUILD) == ["あ" * 100]
