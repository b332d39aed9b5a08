"""Live contact lists across worker processes: `rapport serve --workers 2` on PostgreSQL
(LISTEN/NOTIFY). A contact created through one worker reaches open lists on both."""

from __future__ import annotations

from tests.core.live.test_two_workers import (
    _env,
    _prepare,
    _signed_in_client,
    database,
    heard_by_all,
    streams_on_both_workers,
    two_workers,
)


async def test_new_contact_reaches_open_lists_on_both_workers(tmp_path):
    import httpx

    async with database("postgres", tmp_path) as (database_url, redis_url):
        env = _env(tmp_path, database_url, redis_url)
        await _prepare(env)
        async with two_workers(env) as base:
            poster = await _signed_in_client(base)
            async with streams_on_both_workers(
                    base, poster.cookies, "/live/contacts", 1,
                    lambda data: data["ids"]) as (listeners, seen):
                async with httpx.AsyncClient(base_url=base, cookies=poster.cookies) as fresh:
                    response = await fresh.post(
                        "/api/v1/contacts", json={"first_name": "Grace", "last_name": "Hopper"},
                        headers={"x-csrftoken": poster.cookies["csrftoken"]})
                    assert response.status_code == 201, response.text
                    created = response.json()["id"]
                await heard_by_all(listeners, seen, created)
                assert seen == [[created], [created]]
            await poster.aclose()
