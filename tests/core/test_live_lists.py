"""Live account and contact lists: a customer created, changed, merged or deleted while a
list is open reaches its server-sent events stream as ids only, and only readers allowed to
see that customer hear of it."""

from __future__ import annotations

import json

from core.customers.merge import merge_customers
from core.customers.service import bulk_change, create_customer, delete_customer, update_customer
from core.identity.users import load_actor
from tests.conftest import make_user, sign_in
from tests.core.live.test_streams import OpenStream


async def _change(stream) -> dict:
    event, data = await stream.next_event()
    assert event == "change", (event, data)
    return json.loads(data)


async def test_new_contact_reaches_the_open_contact_list_but_not_the_account_list(admin_client):
    rapport = admin_client.rapport
    admin = await load_actor(rapport, admin_client.user_id)
    cookies = dict(admin_client.cookies)
    async with OpenStream(rapport.asgi, "/live/contacts", cookies) as contacts, \
            OpenStream(rapport.asgi, "/live/accounts", cookies) as accounts:
        assert (await contacts.next_event())[0] == "ready"
        assert (await accounts.next_event())[0] == "ready"
        contact = await create_customer(rapport, admin, {"kind": "contact", "first_name": "Ada",
                                                         "last_name": "Lovelace"})
        account = await create_customer(rapport, admin, {"kind": "account", "name": "Acme"})
        assert await _change(contacts) == {"event": "core.customer.created",
                                           "ids": [contact["id"]], "gone": []}
        # The account list's first change is the account: the contact never reached it.
        assert await _change(accounts) == {"event": "core.customer.created",
                                           "ids": [account["id"]], "gone": []}
        await update_customer(rapport, admin, contact["id"], {"lifecycle_stage": "customer"})
        assert await _change(contacts) == {"event": "core.customer.updated",
                                           "ids": [contact["id"]], "gone": []}
        twin = await create_customer(rapport, admin, {"kind": "contact", "first_name": "Ada",
                                                      "last_name": "L."})
        assert (await _change(contacts))["ids"] == [twin["id"]]
        await merge_customers(rapport, admin, contact["id"], twin["id"])
        assert await _change(contacts) == {"event": "core.customer.merged",
                                           "ids": [contact["id"]], "gone": [twin["id"]]}
        await delete_customer(rapport, admin, contact["id"])
        assert await _change(contacts) == {"event": "core.customer.deleted",
                                           "ids": [], "gone": [contact["id"]]}


async def test_list_stream_never_tells_a_rep_about_customers_outside_their_scope(client):
    rapport = client.rapport
    admin = await load_actor(rapport, await make_user("boss@example.test"))
    rep_id = await make_user("rep@example.test", roles=["field_representative"])
    await sign_in(client, "rep@example.test")
    theirs = await create_customer(rapport, admin, {"kind": "contact", "first_name": "Hidden"})
    async with OpenStream(rapport.asgi, "/live/contacts", dict(client.cookies)) as stream:
        assert (await stream.next_event())[0] == "ready"
        # Created, changed and deleted outside the rep's scope: nothing reaches them...
        other = await create_customer(rapport, admin, {"kind": "contact", "first_name": "Other"})
        await update_customer(rapport, admin, theirs["id"], {"job_title": "Secret"})
        await delete_customer(rapport, admin, other["id"])
        # ...and the first thing they hear is the customer handed to them.
        mine = await create_customer(rapport, admin, {"kind": "contact", "first_name": "Mine",
                                                      "owner": rep_id})
        assert await _change(stream) == {"event": "core.customer.created",
                                         "ids": [mine["id"]], "gone": []}
        # Taken away again: the rep learns only that it left their list.
        await update_customer(rapport, admin, mine["id"], {"owner": admin.id})
        assert await _change(stream) == {"event": "core.customer.updated",
                                         "ids": [], "gone": [mine["id"]]}
        await bulk_change(rapport, admin, "assign_owner", [theirs["id"]], rep_id)
        assert await _change(stream) == {"event": "core.customer.bulk_changed",
                                         "ids": [theirs["id"]], "gone": []}


async def test_list_page_is_wired_to_its_stream(admin_client):
    rapport = admin_client.rapport
    admin = await load_actor(rapport, admin_client.user_id)
    row = await create_customer(rapport, admin, {"kind": "account", "name": "Acme"})
    page = await admin_client.get("/accounts?stage=lead")
    assert page.status_code == 200
    assert 'data-live-list="/live/accounts"' in page.text
    assert f'<tr data-id="{row["id"]}">' in page.text
    assert "/static/js/live-lists.js" in page.text


async def test_list_stream_needs_sign_in(client):
    response = await client.get("/live/contacts", follow_redirects=False)
    assert response.status_code in (302, 303, 401)


async def test_a_large_bulk_change_reaches_the_list_whole(admin_client):
    """600 ids with their owners are too big for one PostgreSQL NOTIFY; the list still hears
    of every one."""
    from core.customers.tables import Customer

    rapport = admin_client.rapport
    admin = await load_actor(rapport, admin_client.user_id)
    rows = await Customer.insert(*[Customer(kind="contact", name=f"Bulk {i}",
                                            owner=admin.id) for i in range(600)]
                                 ).returning(Customer.id).run()
    ids = sorted(r["id"] for r in rows)
    async with OpenStream(rapport.asgi, "/live/contacts", dict(admin_client.cookies)) as stream:
        assert (await stream.next_event())[0] == "ready"
        assert await bulk_change(rapport, admin, "change_stage", ids, "customer") == 600
        heard: list[int] = []
        for _ in range(10):  # a bounded read: the stream never ends
            message = await _change(stream)
            assert message["event"] == "core.customer.bulk_changed"
            heard += message["ids"]
            if len(heard) >= len(ids):
                break
        assert sorted(heard) == ids


async def test_an_import_reaches_open_lists_as_a_count_of_what_each_reader_may_see(client):
    """A 300-row contacts file with new companies: the contact list hears "300 new" and the
    account list "3 new" (one message each, not one per row); a representative who owns
    only 100 of the contacts hears 100, and an import of nobody of theirs reaches them not."""
    from core.customers.importing import import_csv

    rapport = client.rapport
    admin = await load_actor(rapport, await make_user("boss@example.test"))
    await make_user("rep@example.test", roles=["field_representative"])
    await sign_in(client, "rep@example.test")
    rows = [f"Person{i},Surname{i},Company {i // 100},"
            f"{'rep@example.test' if i % 3 == 0 else 'boss@example.test'}" for i in range(300)]
    text = "First name,Last name,Company,Owner\n" + "\n".join(rows) + "\n"
    other = "Name,Owner\nNot theirs Ltd,boss@example.test\n"
    async with OpenStream(rapport.asgi, "/live/contacts", dict(client.cookies)) as rep_list:
        assert (await rep_list.next_event())[0] == "ready"
        await sign_in(client, "boss@example.test")
        boss_cookies = dict(client.cookies)
        async with OpenStream(rapport.asgi, "/live/contacts", boss_cookies) as contacts, \
                OpenStream(rapport.asgi, "/live/accounts", boss_cookies) as accounts:
            assert (await contacts.next_event())[0] == "ready"
            assert (await accounts.next_event())[0] == "ready"
            await import_csv(rapport, admin, "account", other, dry_run=False)
            report = await import_csv(rapport, admin, "contact", text, dry_run=False)
            assert report.committed and report.created == 300
            assert await _change(accounts) == {"event": "core.customer.imported", "ids": [],
                                               "gone": [], "new": 1}
            assert await _change(accounts) == {"event": "core.customer.imported", "ids": [],
                                               "gone": [], "new": 3}
            assert await _change(contacts) == {"event": "core.customer.imported", "ids": [],
                                               "gone": [], "new": 300}
            # The representative's first message is their own 100 contacts.
            assert await _change(rep_list) == {"event": "core.customer.imported", "ids": [],
                                               "gone": [], "new": 100}


async def test_an_import_from_the_command_line_reaches_the_servers_open_lists(admin_client,
                                                                              tmp_path):
    """`rapport import contacts` runs in its own process; on PostgreSQL (LISTEN/NOTIFY) its
    announcement still reaches a list open on the server. (SQLite's channels are in memory:
    only imports made through the web reach open lists there.)"""
    import asyncio
    import os
    import sys
    from pathlib import Path

    import pytest

    rapport = admin_client.rapport
    settings = rapport.settings
    if settings.is_sqlite:
        pytest.skip("in-memory channels do not cross processes")
    upload = tmp_path / "people.csv"
    upload.write_text("First name,Last name\nAda,Lovelace\nGrace,Hopper\n")
    env = dict(os.environ, RAPPORT_DATABASE_URL=settings.database_url,
               RAPPORT_DATA_DIR=str(settings.data_dir),
               RAPPORT_PLUGINS_TOML=str(settings.plugins_toml))
    env.pop("RAPPORT_REDIS_URL", None)
    async with OpenStream(rapport.asgi, "/live/contacts", dict(admin_client.cookies)) as stream:
        assert (await stream.next_event())[0] == "ready"
        command = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).with_name("rapport")), "import", "contacts", str(upload),
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        output, _ = await command.communicate()
        assert command.returncode == 0, output.decode()
        assert await _change(stream) == {"event": "core.customer.imported", "ids": [],
                                         "gone": [], "new": 2}


async def test_a_huge_import_is_counted_up_to_a_bound(admin_client, monkeypatch):
    """Each reader counts an import's new customers only up to a bound, and is told there
    were more (a million-row import must not cost every open list a full count)."""
    from core import live
    from core.customers.importing import import_csv

    monkeypatch.setattr(live, "IMPORT_COUNT_BOUND", 25)
    rapport = admin_client.rapport
    admin = await load_actor(rapport, admin_client.user_id)
    text = "Name\n" + "".join(f"Firm {i}\n" for i in range(40))
    async with OpenStream(rapport.asgi, "/live/accounts", dict(admin_client.cookies)) as stream:
        assert (await stream.next_event())[0] == "ready"
        await import_csv(rapport, admin, "account", text, dry_run=False)
        assert await _change(stream) == {"event": "core.customer.imported", "ids": [],
                                         "gone": [], "new": 25, "more": True}
