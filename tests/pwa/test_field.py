"""The field app's data: the snapshot kept on the device and idempotent uploads from it."""

from __future__ import annotations

import base64
import struct
import uuid
import zlib
from datetime import UTC, datetime, timedelta

import pytest

from core import jobs
from core.customers.tables import Customer, CustomerAddress
from core.interactions.tables import Interaction
from core.plugin import AgendaItem, Panel, hookimpl
from pwa.field import phone_for_people
from pwa.tables import FieldAttachment, Reminder, SyncConflict, VisitCheckIn
from tests.conftest import app_client, connected, csrf_headers, make_user, sign_in

PNG = (b"\x89PNG\r\n\x1a\n" + struct.pack("!I", 13) + b"IHDR" + struct.pack("!IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
       + b"\x00\x00\x00\x00" + struct.pack("!I", 0) + b"IDAT" + zlib.compress(b"\x00\xff\x00\x00")
       + b"\x00\x00\x00\x00")
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


@pytest.fixture
async def rep(make_rapport):
    instance = await make_rapport(extra={"push_worker": "off"})
    async with app_client(instance) as client:
        client.user_id = await make_user("rep@example.test", roles=["field_representative"])
        await sign_in(client, "rep@example.test")
        yield client


async def add_customer(name: str, owner: int | None, lat=None, lng=None) -> int:
    rows = await Customer.insert(Customer(kind="account", name=name, owner=owner,
                                          primary_phone="+4930123456")).returning(Customer.id).run()
    if lat is not None:
        await CustomerAddress.insert(CustomerAddress(customer=rows[0]["id"], street="Main St 1",
                                                     city="Berlin", latitude=lat,
                                                     longitude=lng)).run()
    return rows[0]["id"]


async def upload(client, **item):
    item.setdefault("client_id", str(uuid.uuid4()))
    return await client.post("/api/v1/field/sync", json=item, headers=await csrf_headers(client))


async def test_snapshot_holds_my_customers_and_todays_agenda(rep):
    mine = await add_customer("Acme", rep.user_id, lat=52.52, lng=13.40)
    other_rep = await make_user("other@example.test", roles=["field_representative"])
    await add_customer("Not mine", other_rep)
    now = datetime.now(UTC)
    await Interaction.insert(Interaction(
        customer=mine, channel="call", subject="Pricing", user=rep.user_id,
        followup_due=now.replace(hour=23, minute=0), followup_assignee=rep.user_id,
        followup_note="Send the offer", occurred_at=now - timedelta(days=2))).run()

    class Cases:
        @hookimpl
        def agenda_items(self, user, day):
            return [AgendaItem(title=f"Case for {user.name}", url="/service/cases/1", kind="case")]

        @hookimpl
        def customer_panels(self, customer):
            return [Panel(id="p", title="Loyalty", html="<p>Gold</p>")]

    rep.rapport.pm.register(Cases(), name="cases-test")
    snapshot = (await rep.get("/api/v1/field/snapshot")).json()
    assert [c["name"] for c in snapshot["customers"]] == ["Acme"]
    acme = snapshot["customers"][0]
    assert acme["lat"] == pytest.approx(52.52) and acme["phone"] == "+4930123456"
    # Shown for people: international for a German number when the rep's region is not DE
    # (the tel: link keeps "phone", E.164); national when it is.
    assert acme["phone_display"] == "+49 30 123456"
    assert phone_for_people("+4930123456", "DE") == "030 123456"
    assert acme["interactions"][0]["subject"] == "Pricing"
    assert acme["follow_ups"][0]["note"] == "Send the offer"
    assert acme["panels"] == [{"id": "p", "title": "Loyalty", "html": "<p>Gold</p>", "url": None,
                               "order": 100}]
    kinds = [(i["kind"], i["title"]) for i in snapshot["agenda"]]
    assert ("follow_up", "Follow up: Acme") in kinds and ("case", "Case for Rep") in kinds


async def test_uploaded_interaction_is_recorded_once_even_when_replayed(rep):
    customer = await add_customer("Acme", rep.user_id)
    client_id = str(uuid.uuid4())
    first = await upload(rep, client_id=client_id, kind="interaction", customer_id=customer,
                         channel="call", notes="Talked about prices", outcome="Interested")
    assert first.status_code == 200 and first.json()["status"] == "created"
    again = await upload(rep, client_id=client_id, kind="interaction", customer_id=customer,
                         channel="call", notes="Talked about prices", outcome="Interested")
    assert again.json()["replayed"] is True
    assert again.json()["record_id"] == first.json()["record_id"]
    rows = await Interaction.select().where(Interaction.client_id == client_id).run()
    assert len(rows) == 1 and rows[0]["user"] == rep.user_id and rows[0]["outcome"] == "Interested"


async def test_visit_report_keeps_photos_signature_and_check_in_outside_the_database(rep):
    customer = await add_customer("Acme", rep.user_id)
    response = await upload(
        rep, kind="interaction", customer_id=customer, channel="visit", notes="Installed",
        photos=[PNG_URL], signature=PNG_URL,
        check_in={"at": "2026-11-23T09:15:00Z", "lat": 52.5, "lng": 13.4, "accuracy": 12},
        follow_up={"due": (datetime.now(UTC) + timedelta(days=3)).isoformat(),
                   "note": "Check the machine"})
    assert response.json()["status"] == "created", response.text
    interaction_id = int(response.json()["record_id"])
    files = await FieldAttachment.select().where(FieldAttachment.interaction_id == interaction_id
                                                 ).order_by(FieldAttachment.id).run()
    assert [f["kind"] for f in files] == ["photo", "signature"]
    stored = rep.rapport.settings.data_dir / files[0]["path"]
    assert stored.read_bytes() == PNG
    image = await rep.get(f"/field/attachments/{files[0]['id']}")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    check_in = await VisitCheckIn.select().where(
        VisitCheckIn.interaction_id == interaction_id).first().run()
    assert float(check_in["latitude"]) == pytest.approx(52.5) and check_in["accuracy_m"] == 12
    await jobs.run_pending(rep.rapport)  # the follow-up's event reaches the reminders
    reminder = await Reminder.select().where(
        Reminder.source == f"follow_up:{interaction_id}").first().run()
    assert reminder["user"] == rep.user_id and reminder["title"] == "Follow up: Acme"


async def test_another_rep_cannot_see_my_attachment(rep):
    customer = await add_customer("Acme", rep.user_id)
    response = await upload(rep, kind="interaction", customer_id=customer, channel="visit",
                            notes="x", signature=PNG_URL)
    attachment = await FieldAttachment.select().where(
        FieldAttachment.interaction_id == int(response.json()["record_id"])).first().run()
    await make_user("other@example.test", roles=["field_representative"])
    rep.cookies.clear()
    await sign_in(rep, "other@example.test")
    assert (await rep.get(f"/field/attachments/{attachment['id']}")).status_code == 404


async def test_upload_for_a_customer_out_of_reach_is_refused_as_not_found(rep):
    other_rep = await make_user("other@example.test", roles=["field_representative"])
    theirs = await add_customer("Theirs", other_rep)
    response = await upload(rep, kind="interaction", customer_id=theirs, notes="x")
    assert response.status_code == 404
    assert response.json()["invalid_params"][0]["name"] == "customer_id"
    assert await Interaction.count().run() == 0


async def test_upload_with_a_file_that_is_not_an_image_names_the_photo(rep):
    customer = await add_customer("Acme", rep.user_id)
    fake = "data:image/png;base64," + base64.b64encode(b"<script>alert(1)</script>").decode()
    response = await upload(rep, kind="interaction", customer_id=customer, channel="visit",
                            notes="x", photos=[PNG_URL, fake])
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["invalid_params"][0]["name"] == "photos[1]"
    assert await Interaction.count().run() == 0
    assert not list((rep.rapport.settings.data_dir / "attachments").rglob("*.*"))


async def test_upload_without_the_csrf_header_is_refused(rep):
    customer = await add_customer("Acme", rep.user_id)
    response = await rep.post("/api/v1/field/sync", json={
        "client_id": str(uuid.uuid4()), "kind": "interaction", "customer_id": customer,
        "notes": "x"})
    assert response.status_code == 403


async def test_follow_up_changed_offline_applies_when_the_server_copy_is_unchanged(rep):
    customer = await add_customer("Acme", rep.user_id)
    seen = datetime.now(UTC) - timedelta(hours=1)
    rows = await Interaction.insert(Interaction(
        customer=customer, channel="call", followup_due=seen, followup_assignee=rep.user_id,
        updated_at=seen)).returning(Interaction.id).run()
    response = await upload(rep, kind="follow_up", interaction_id=rows[0]["id"], done=True,
                            base_updated_at=seen.isoformat())
    assert response.json()["status"] == "updated"
    assert (await Interaction.select().first().run())["followup_done"] is True


async def test_follow_up_edited_on_the_server_meanwhile_keeps_the_server_version_and_the_devices_as_a_note(rep):
    customer = await add_customer("Acme", rep.user_id)
    seen = datetime.now(UTC) - timedelta(hours=2)
    rows = await Interaction.insert(Interaction(
        customer=customer, channel="call", followup_due=seen, followup_assignee=rep.user_id,
        followup_note="Call at 10", updated_at=datetime.now(UTC))).returning(Interaction.id).run()
    response = await upload(rep, kind="follow_up", interaction_id=rows[0]["id"],
                            note="Call at 3 instead", base_updated_at=seen.isoformat())
    body = response.json()
    assert body["status"] == "conflict" and "server's version was kept" in body["message"]
    row = await Interaction.select().first().run()
    assert row["followup_note"] == "Call at 10"
    assert "Call at 3 instead" in row["notes"]
    conflict = await SyncConflict.select().first().run()
    assert "Call at 3 instead" in conflict["device_version"]


async def test_follow_up_recorded_anywhere_gets_a_reminder_that_completion_cancels(rep):
    from core.identity.users import load_actor
    from core.interactions.service import complete_followup, record_interaction, update_interaction

    customer = await add_customer("Acme", rep.user_id)
    actor = await load_actor(rep.rapport, rep.user_id)
    due = datetime.now(UTC) - timedelta(minutes=5)
    row, _ = await record_interaction(rep.rapport, actor, customer_id=customer, channel="call",
                                      notes="Asked for a quote", followup_due=due,
                                      followup_note="Send the quote")
    await jobs.run_pending(rep.rapport)
    reminder = await Reminder.select().where(Reminder.source == f"follow_up:{row['id']}").first().run()
    assert reminder["title"] == "Follow up: Acme" and reminder["body"] == "Send the quote"
    await Reminder.update({Reminder.status: "sent"}).where(Reminder.id == reminder["id"]).run()
    await update_interaction(rep.rapport, actor, row["id"], {"notes": "Quote is being made"})
    await jobs.run_pending(rep.rapport)
    again = await Reminder.select().where(Reminder.id == reminder["id"]).first().run()
    assert again["status"] == "sent"  # an unrelated edit never sends the reminder twice
    await complete_followup(rep.rapport, actor, row["id"])
    await jobs.run_pending(rep.rapport)
    assert not await Reminder.exists().where(Reminder.source == f"follow_up:{row['id']}").run()


async def test_erasing_a_customer_removes_their_photos_and_signature_files(rep):
    from core.privacy.service import erase_customer, export_customer

    customer = await add_customer("Acme", rep.user_id)
    await upload(rep, kind="interaction", customer_id=customer, channel="visit", notes="x",
                 photos=[PNG_URL], check_in={"lat": 52.5, "lng": 13.4})
    exported = await export_customer(rep.rapport, customer)
    assert json_dumps(exported).count("field_attachments") == 1
    files = list((rep.rapport.settings.data_dir / "attachments").rglob("*.png"))
    assert len(files) == 1
    await erase_customer(rep.rapport, None, customer)
    assert not files[0].exists()
    assert await FieldAttachment.count().run() == 0
    assert (await VisitCheckIn.select().first().run())["latitude"] is None


def json_dumps(value) -> str:
    import json

    return json.dumps(value, default=str)


async def test_simultaneous_conflicting_uploads_keep_every_devices_version(rep):
    import asyncio

    customer = await add_customer("Acme", rep.user_id)
    seen = datetime.now(UTC) - timedelta(hours=2)
    rows = await Interaction.insert(Interaction(
        customer=customer, channel="call", notes="Met the buyer", followup_due=seen,
        followup_assignee=rep.user_id, followup_note="Call at 10",
        updated_at=datetime.now(UTC))).returning(Interaction.id).run()
    await csrf_headers(rep)
    answers = await asyncio.gather(*(
        upload(rep, kind="follow_up", interaction_id=rows[0]["id"], note=f"Device {n} says",
               base_updated_at=seen.isoformat()) for n in range(20)))
    assert [a.json()["status"] for a in answers] == ["conflict"] * 20
    notes = (await Interaction.select().first().run())["notes"]
    assert notes.startswith("Met the buyer")
    assert sorted(n for n in range(20) if f"Device {n} says" in notes) == list(range(20))
    assert await SyncConflict.count().run() == 20


async def test_two_devices_editing_the_same_version_at_once_cannot_both_win(rep):
    import asyncio

    customer = await add_customer("Acme", rep.user_id)
    seen = datetime.now(UTC) - timedelta(hours=1)
    rows = await Interaction.insert(Interaction(
        customer=customer, channel="call", followup_due=seen, followup_assignee=rep.user_id,
        followup_note="Call at 10", updated_at=seen)).returning(Interaction.id).run()
    await csrf_headers(rep)
    answers = await asyncio.gather(*(
        upload(rep, kind="follow_up", interaction_id=rows[0]["id"], note=note,
               base_updated_at=seen.isoformat()) for note in ("Call at 3", "Call at 4")))
    statuses = sorted(a.json()["status"] for a in answers)
    assert statuses == ["conflict", "updated"]
    winner = next(a for a in answers if a.json()["status"] == "updated")
    row = await Interaction.select().first().run()
    loser_note = "Call at 4" if row["followup_note"] == "Call at 3" else "Call at 3"
    assert winner.request.content.decode().count(row["followup_note"]) == 1
    assert loser_note in row["notes"]


async def test_a_follow_ups_reminder_does_not_depend_on_winning_a_lock_after_the_commit(
        make_rapport, monkeypatch):
    import sqlite3

    from core.interactions.service import record_interaction
    from pwa import reminders

    attempts = []
    schedule = reminders.schedule

    async def locked_the_first_time(*args, **kwargs):
        attempts.append(args)
        if len(attempts) == 1:
            raise sqlite3.OperationalError("database is locked")
        return await schedule(*args, **kwargs)

    monkeypatch.setattr(reminders, "schedule", locked_the_first_time)
    rapport = await make_rapport(extra={"jobs_backoff_seconds": "0"})
    async with connected(rapport):
        user = await make_user("rep@example.test", roles=["field_representative"])
        customer = await add_customer("Acme", user)
        row, _ = await record_interaction(
            rapport, None, customer_id=customer, channel="call", followup_assignee=user,
            followup_due=datetime.now(UTC) + timedelta(days=1), followup_note="Send the quote")
        # Nothing depends on work done in this process after the commit: had it crashed
        # here, the committed follow-up still gets its reminder from the worker.
        assert attempts == []
        await jobs.run_pending(rapport)  # the first attempt fails, its retry succeeds
        assert len(attempts) == 2
        reminder = await Reminder.select().where(
            Reminder.source == f"follow_up:{row['id']}").first().run()
        assert reminder["user"] == user and reminder["body"] == "Send the quote"
