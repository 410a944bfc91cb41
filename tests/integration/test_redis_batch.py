"""The event loop's Redis batches (platform/redis_batch.py), against a real Redis: the requests of one
loop turn share one round trip, each counted on its own; a request never joins a batch already sent;
owed bumps go before the reads; an unreachable Redis fails fast and is tried again."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
import redis

from minimarket.platform.cache import RedisCache
from minimarket.platform.redis_batch import BackendDown, RedisBatcher
from tests.e2e.servers import free_port
from tests.helpers import REDIS_URL, need_redis

pytestmark = pytest.mark.redis


@pytest.fixture
def store() -> Iterator[tuple[redis.Redis, str]]:
    """A plain client and a key prefix of this test's own (removed after it)."""
    need_redis()
    client = redis.Redis.from_url(REDIS_URL)
    prefix = f"minimarket-test:{uuid.uuid4().hex[:8]}:"
    yield client, prefix
    for name in list(client.scan_iter(match=prefix + "*", count=500)):
        client.delete(name)
    client.close()


def sizes_of(batcher: RedisBatcher) -> list[int]:
    """Record how many requests each batch sent carries."""
    sent: list[int] = []
    send = batcher._send  # noqa: SLF001 - what went out is the point of these tests

    def recording(batch) -> None:  # noqa: ANN001
        sent.append(batch.members)
        send(batch)

    batcher._send = recording  # noqa: SLF001
    return sent


def test_one_loop_turn_is_one_round_trip_and_every_request_is_counted(store) -> None:  # noqa: ANN001
    client, prefix = store
    client.set(prefix + "v:catalog", 41)
    batcher = RedisBatcher(REDIS_URL)
    sent = sizes_of(batcher)

    async def burst() -> list[tuple[int, float, list[str]]]:
        try:
            return await asyncio.gather(*(batcher.run(prefix + "rl", 60, [prefix + "v:catalog", prefix + "v:nuevo"])
                                          for _ in range(30)))
        finally:
            await batcher.close()

    results = asyncio.run(burst())
    assert sent == [30], sent  # one script call for the 30 requests
    assert sorted(count for count, _, _ in results) == list(range(1, 31))  # each its own count
    assert all(0 < reset_in <= 60 for _, reset_in, _ in results)
    assert 0 < client.pttl(prefix + "rl") <= 60_000  # the window has its expiry
    catalog, fresh = {tuple(v) for _, _, v in results}.pop()
    assert catalog == "41"
    # A version nobody had set starts at a random number (never 0 or 1), the same for everybody.
    assert fresh == client.get(prefix + "v:nuevo").decode() and int(fresh) > 1_000


def test_a_request_never_joins_a_batch_already_sent(store) -> None:  # noqa: ANN001
    """The versions of a batch sent before a write's answer went out may predate the write: a request
    that starts after that answer goes in a later batch, and so reads the write."""
    client, prefix = store
    client.set(prefix + "v:product:A", 7)
    batcher = RedisBatcher(REDIS_URL)
    sent = sizes_of(batcher)
    writer = redis.Redis.from_url(REDIS_URL)

    async def scenario() -> tuple[list[str], list[str]]:
        try:
            await batcher.run(None, 0, [prefix + "v:product:A"])  # connected
            sent.clear()
            first = asyncio.ensure_future(batcher.run(None, 0, [prefix + "v:product:A"]))
            for _ in range(3):  # the request joins a batch; at the end of that loop turn the batch goes out
                await asyncio.sleep(0)
            assert sent == [1] and not first.done()  # sent, its reply not read yet
            writer.incr(prefix + "v:product:A")  # a write's bump, acknowledged (then its answer goes out)
            second = await batcher.run(None, 0, [prefix + "v:product:A"])  # starts after that answer
            return (await first)[2], second[2]
        finally:
            await batcher.close()

    try:
        before, after = asyncio.run(scenario())
    finally:
        writer.close()
    assert before == ["7"] and after == ["8"], (before, after)
    assert sent == [1, 1], sent  # the second request made a batch of its own


def test_owed_bumps_go_before_the_reads_of_the_next_batch(store) -> None:  # noqa: ANN001
    client, prefix = store
    cache = RedisCache(REDIS_URL, prefix=prefix)
    client.set(prefix + "v:auth", 100)
    cache._pending.update({"auth", "product:NUEVO"})  # noqa: SLF001 - bumps that failed during an outage

    async def read() -> list[str]:
        try:
            return (await cache.batcher.run(None, 0, [cache.version_key("auth"), cache.version_key("product:NUEVO")]))[2]
        finally:
            await cache.batcher.close()

    auth, product = asyncio.run(read())
    cache.close()
    assert auth == "101"  # bumped first, in the same script, then read
    assert int(product) > 1_000  # a bumped version that did not exist starts at a random number
    assert not cache.owes_bumps


def test_an_unreachable_redis_fails_fast_gives_back_what_it_owed_and_is_tried_again(store) -> None:  # noqa: ANN001
    _, prefix = store
    dead = f"redis://127.0.0.1:{free_port()}/0"
    given_back: list[str] = []
    failures: list[str] = []
    batcher = RedisBatcher(dead, retry_seconds=0.3, owed=lambda: [prefix + "v:auth"], give_back=given_back.extend)
    batcher.failure_listeners.append(lambda: failures.append("caída"))

    async def scenario() -> list[str]:
        outcomes = []
        for pause in (0, 0, 0.4):
            await asyncio.sleep(pause)
            try:
                await batcher.run("rl", 60, [prefix + "v:auth"])
                outcomes.append("ok")
            except BackendDown as exc:
                outcomes.append(str(exc)[:40])
        return outcomes

    first, second, third = asyncio.run(scenario())
    assert first.startswith("ConnectionRefusedError") or "Connect" in first, first
    assert second == "Redis no respondió hace instantes"  # no new attempt within retry_seconds
    assert third != second  # tried again after them
    assert failures == ["caída", "caída"]  # the read caches are told once per attempt that failed
    assert given_back == [], given_back  # never sent: nothing was taken from the owed bumps


def test_a_redis_error_reply_fails_the_batch_not_the_connection(store) -> None:  # noqa: ANN001
    client, prefix = store
    client.set(prefix + "rl", "no-es-un-numero")  # INCR fails inside the script
    batcher = RedisBatcher(REDIS_URL)

    async def scenario() -> tuple[str, list[str]]:
        try:
            try:
                await batcher.run(prefix + "rl", 60, [])
                refused = ""
            except BackendDown as exc:
                refused = str(exc)
            batcher._retry_at = 0.0  # noqa: SLF001 - skip the pause after a failure
            return refused, (await batcher.run(None, 0, [prefix + "v:x"]))[2]
        finally:
            await batcher.close()

    refused, values = asyncio.run(scenario())
    assert "error" in refused.lower(), refused
    assert len(values) == 1 and values[0].isdigit()


def test_bumps_of_a_write_on_the_event_loop_go_in_the_batch_before_its_reads(store) -> None:  # noqa: ANN001
    from minimarket.platform.read_cache import invalidate_on_loop, note_changed, note_narrow

    client, prefix = store
    cache = RedisCache(REDIS_URL, prefix=prefix)
    client.set(prefix + "v:product:A", 7)
    client.set(prefix + "v:catalog", 50)
    info: dict = {}
    note_narrow(info)
    note_changed(info, "product:A")

    async def write_then_read() -> list[str]:
        try:
            # Joined in the same loop turn: one batch, the write's bumps before the other request's reads.
            _, (_, _, seen) = await asyncio.gather(
                invalidate_on_loop(cache, info),
                cache.batcher.run(None, 0, [cache.version_key("product:A"), cache.version_key("catalog")]))
            return seen
        finally:
            await cache.batcher.close()

    seen = asyncio.run(write_then_read())
    cache.close()
    assert seen == ["8", "50"]  # the product's version moved; the catalogue's not (a narrow write)
    assert not cache.owes_bumps


def test_bumps_of_a_write_on_the_event_loop_are_owed_while_redis_is_down(store) -> None:  # noqa: ANN001
    from minimarket.platform.read_cache import invalidate_on_loop, note_changed, note_narrow

    client, prefix = store
    cache = RedisCache(REDIS_URL, prefix=prefix)
    client.set(prefix + "v:product:B", 3)
    info: dict = {}
    note_narrow(info)
    note_changed(info, "product:B")
    # The event loop's way in finds no Redis (the blocking client, used below, still does).
    cache.batcher = RedisBatcher(f"redis://127.0.0.1:{free_port()}/0", owed=cache._take_pending,  # noqa: SLF001
                                 give_back=cache._give_back)  # noqa: SLF001

    async def down() -> None:
        await invalidate_on_loop(cache, info)  # does not raise: the answer goes out, the bump is owed
        await invalidate_on_loop(cache, info)  # within retry_seconds: not even tried, owed all the same

    asyncio.run(down())
    assert cache.owes_bumps
    assert client.get(prefix + "v:product:B") == b"3"
    assert cache.versions(["product:B"]) == ["4"]  # the next read (Redis back) sends what was owed first (once)
    assert not cache.owes_bumps
    cache.close()
