"""Servers on one database share live updates whatever their database URLs look like."""

from __future__ import annotations

import asyncio
import os

import pytest

from core import live
from core.app import Rapport
from tests.conftest import IN_CI, connected, settings_for_test

REDIS_URL = os.environ.get("RAPPORT_TEST_REDIS_URL")
WAIT = 10  # seconds: a bound so a deaf server fails instead of hanging, not a timing claim


def respelled(url: str) -> str:
    """The same database, written another way (host name for address, default port left
    out, an option added; a SQLite path through '.')."""
    if url.startswith("sqlite:///"):
        folder, _, name = url.rpartition("/")
        return f"{folder}/./{name}"
    respelled = url.replace("@127.0.0.1:5432/", "@localhost/")
    assert respelled != url, url
    return respelled + "?application_name=rapport-second"


async def test_two_servers_on_one_database_hear_each_other_however_the_url_is_spelt(
        make_rapport, backend, tmp_path):
    overrides = {}
    if backend.name == "sqlite":  # SQLite's live updates cross processes through Redis only
        if not REDIS_URL:
            if IN_CI:
                pytest.fail("RAPPORT_TEST_REDIS_URL is not set", pytrace=False)
            pytest.skip("RAPPORT_TEST_REDIS_URL is not set")
        overrides["redis_url"] = REDIS_URL
    first = await make_rapport(**overrides)
    second = Rapport(settings_for_test(tmp_path, respelled(first.settings.database_url),
                                       **overrides), plugins=[])
    async with connected(first):
        await live.startup(first)
        await live.startup(second)
        try:
            async with second.live[0].start_subscription(
                    [live.Channels(second).interactions]) as subscriber:
                first.live[0].publish({"event": "core.interaction.created",
                                       "interaction_id": 7}, live.Channels(first).interactions)
                events = subscriber.iter_events()
                heard = await asyncio.wait_for(anext(events), WAIT)
            assert b'"interaction_id":7' in heard
        finally:
            await live.shutdown(second)
            await live.shutdown(first)
