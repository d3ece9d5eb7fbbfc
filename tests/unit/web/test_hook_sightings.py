"""Webhook replays are told apart by the provider's event id, remembered in Redis for a
day; a request that fails forgets its ids again, so the provider's retry is applied."""

from __future__ import annotations

import uuid

import redis

from digest.web.hooks import WEBHOOK_DEDUPE_SECONDS, Sightings
from tests.support.asgi import REDIS_URL


def test_ids_are_new_once_and_again_after_a_release() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    a, b = f"a-{uuid.uuid4().hex}", f"b-{uuid.uuid4().hex}"
    assert Sightings(client, "test").claim([a, None, b]) == [True, True, True]
    assert Sightings(client, "test").claim([a, None, b]) == [False, True, False]
    assert 0 < client.ttl(f"digest:hook-seen:test:{a}") <= WEBHOOK_DEDUPE_SECONDS

    failed = Sightings(client, "test")
    c = f"c-{uuid.uuid4().hex}"
    assert failed.claim([a, c]) == [False, True]
    failed.release()  # only what this request claimed
    assert Sightings(client, "test").claim([a, c]) == [False, True]


def test_without_redis_every_id_counts_as_new() -> None:
    unreachable = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    sightings = Sightings(unreachable, "test")
    assert sightings.claim(["x", "y"]) == [True, True]
    sightings.release()
