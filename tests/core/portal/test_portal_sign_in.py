"""Portal identities: invitation, password and magic-link sign-in, a separate session."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from core.audit import AuditEntry
from core.customers.tables import Customer
from core.portal.identities import portal_grants
from core.portal.tables import PortalIdentity, PortalLoginLink, PortalVisit
from tests.conftest import csrf_headers, make_user, sign_in
from tests.core.portal.conftest import PORTAL_PASSWORD, make_person, portal_sign_in


def outbox_links(client, pattern: str) -> list[str]:
    """Links in the mail written to the outbox (no SMTP configured in tests)."""
    from email import policy
    from email.parser import BytesParser

    outbox = client.rapport.settings.data_dir / "outbox"
    found = []
    for path in sorted(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime):
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        found += re.findall(pattern, message.get_body(("plain",)).get_content())
    return found


async def test_staff_invites_a_contact_who_then_chooses_a_password(admin_client):
    client = admin_client
    row = await Customer.insert(Customer(kind="contact", name="Mary Somerville",
                                         primary_email="mary@example.test")).returning(
        Customer.id).run()
    cid = row[0]["id"]
    page = await client.get(f"/customers/{cid}/portal")
    assert page.status_code == 200 and 'value="mary@example.test"' in page.text
    sent = await client.post(f"/customers/{cid}/portal/invite", data={"email": "Mary@Example.test"},
                             headers=await csrf_headers(client))
    # No mail server in tests: the page says the message waits in the outbox, not "sent".
    assert sent.status_code == 200 and "Invitation sent." not in sent.text
    assert "not e-mailed" in sent.text and "outbox" in sent.text
    assert "We emailed this link" not in sent.text
    link = re.search(r"http://[^\s\"]+/portal/accept/[\w-]+", sent.text).group(0)
    assert outbox_links(client, r"http://\S+/portal/accept/[\w-]+") == [link]
    identity = await PortalIdentity.select().where(PortalIdentity.customer == cid).first().run()
    assert identity["email"] == "mary@example.test"
    assert link.rsplit("/", 1)[1] not in str(identity)  # only the hash is stored
    assert await AuditEntry.count().where(AuditEntry.action == "portal_invite").run() == 1

    path = link.replace("http://127.0.0.1:8000", "")
    welcome = await client.get(path)
    assert welcome.status_code == 200 and "Choose a password" in welcome.text
    short = await client.post(path, data={"password": "x", "confirm": "x"},
                              headers=await csrf_headers(client))
    assert short.status_code == 400 and 'id="password-error"' in short.text
    done = await client.post(path, data={"password": PORTAL_PASSWORD, "confirm": PORTAL_PASSWORD},
                             headers=await csrf_headers(client), follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/portal/"
    cookie = done.headers["set-cookie"]
    assert "rapport_portal=" in cookie and "HttpOnly" in cookie
    assert "SameSite=lax" in cookie and "Path=/portal" in cookie
    home = await client.get("/portal/")
    assert home.status_code == 200 and "Hello, Mary Somerville" in home.text
    again = await client.get(path)
    assert again.status_code == 404  # an invitation works once


async def test_invitation_needs_permission_and_scope(client):
    await make_user("rep@example.test", roles=["sales_representative"], teams=["North"])
    await sign_in(client, "rep@example.test")
    row = await Customer.insert(Customer(kind="contact", name="Out Of Scope")).returning(
        Customer.id).run()
    response = await client.post(f"/customers/{row[0]['id']}/portal/invite",
                                 data={"email": "x@example.test"},
                                 headers=await csrf_headers(client))
    assert response.status_code in (403, 404)
    assert await PortalIdentity.count().run() == 0


async def test_password_sign_in_and_wrong_password(client):
    await make_person(client.rapport, "Ada", "Lovelace", "ada@example.test")
    wrong = await client.post("/portal/login", data={"email": "ada@example.test", "password": "no"},
                              headers=await csrf_headers(client))
    assert wrong.status_code == 400 and "Wrong email or password." in wrong.text
    await portal_sign_in(client, "ADA@example.test ")
    assert (await client.get("/portal/profile")).status_code == 200


async def test_portal_sign_in_is_rate_limited(client):
    await make_person(client.rapport, "Ada", "Lovelace", "ada@example.test")
    for _ in range(5):
        await client.post("/portal/login", data={"email": "ada@example.test", "password": "no"},
                          headers=await csrf_headers(client))
    blocked = await client.post("/portal/login",
                                data={"email": "ada@example.test", "password": PORTAL_PASSWORD},
                                headers=await csrf_headers(client))
    assert blocked.status_code == 400 and "Too many attempts" in blocked.text
    assert "rapport_portal" not in client.cookies


async def test_magic_link_signs_in_once(client):
    await make_person(client.rapport, "Ada", "Lovelace", "ada@example.test")
    asked = await client.post("/portal/login/link", data={"email": "ada@example.test"},
                              headers=await csrf_headers(client))
    assert asked.status_code == 200 and "sign-in link is on its way" in asked.text
    unknown = await client.post("/portal/login/link", data={"email": "who@example.test"},
                                headers=await csrf_headers(client))
    assert "sign-in link is on its way" in unknown.text  # reveals nothing
    links = outbox_links(client, r"http://\S+/portal/login/link/[\w-]+")
    assert len(links) == 1
    path = links[0].replace("http://127.0.0.1:8000", "")
    page = await client.get(path)  # opening the link (or a mail scanner) spends nothing
    assert page.status_code == 200
    used = await client.post(path, headers=await csrf_headers(client), follow_redirects=False)
    assert used.status_code == 303 and used.headers["location"] == "/portal/"
    assert (await client.get("/portal/")).status_code == 200
    client.cookies.delete("rapport_portal", path="/portal")
    reused = await client.post(path, headers=await csrf_headers(client), follow_redirects=False)
    assert reused.status_code == 400 and "expired or was already used" in reused.text


async def test_expired_magic_link_is_refused(client):
    await make_person(client.rapport, "Ada", "Lovelace", "ada@example.test")
    await client.post("/portal/login/link", data={"email": "ada@example.test"},
                      headers=await csrf_headers(client))
    await PortalLoginLink.update({PortalLoginLink.expires_at: datetime.now(UTC) - timedelta(
        seconds=1)}).where(PortalLoginLink.id > 0).run()
    path = outbox_links(client, r"http://\S+/portal/login/link/[\w-]+")[0].replace(
        "http://127.0.0.1:8000", "")
    response = await client.post(path, headers=await csrf_headers(client), follow_redirects=False)
    assert response.status_code == 400


async def test_sign_out_ends_the_portal_session(portal):
    out = await portal.post("/portal/logout", headers=await csrf_headers(portal),
                            follow_redirects=False)
    assert out.status_code == 303
    again = await portal.get("/portal/", headers={"accept": "text/html"}, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"].startswith("/portal/login")


async def test_switched_off_identity_loses_its_session(admin_client):
    client = admin_client
    ada = await make_person(client.rapport, "Ada", "Lovelace", "ada@example.test")
    await portal_sign_in(client, "ada@example.test")
    assert (await client.get("/portal/")).status_code == 200
    off = await client.post(f"/customers/{ada.customer_id}/portal/deactivate",
                            headers=await csrf_headers(client), follow_redirects=False)
    assert off.status_code == 303
    assert (await client.get("/portal/", follow_redirects=False)).status_code in (303, 401)


async def test_portal_customers_hold_only_portal_permissions(rapport):
    grants = portal_grants(rapport)
    assert grants == {"core.portal.use": "customer"}


async def test_visits_are_counted_not_listed(portal):
    ada = portal.ada
    for _ in range(3):
        assert (await portal.get("/portal/")).status_code == 200
    rows = await PortalVisit.select().where(PortalVisit.identity == ada.identity_id).run()
    assert [r["visits"] for r in rows] == [1]
    identity = await PortalIdentity.select(PortalIdentity.last_seen_at).where(
        PortalIdentity.id == ada.identity_id).first().run()
    assert identity["last_seen_at"] is not None
    # Back after an hour: a second visit.
    await PortalIdentity.update({PortalIdentity.last_seen_at: datetime.now(UTC) - timedelta(
        hours=1)}).where(PortalIdentity.id == ada.identity_id).run()
    await portal.get("/portal/")
    rows = await PortalVisit.select().where(PortalVisit.identity == ada.identity_id).run()
    assert [r["visits"] for r in rows] == [2]


async def test_the_portal_shows_times_in_the_customers_own_time_zone(client):
    from core.interactions.tables import Interaction

    ada = await make_person(client.rapport, "Ada", "Lovelace", "ada@example.test")
    # 23:30 UTC on 1 March is already 2 March in Auckland (UTC+13).
    await Interaction.insert(Interaction(
        customer=ada.customer_id, channel="meeting", subject="Kick-off meeting",
        occurred_at=datetime(2026, 3, 1, 23, 30, tzinfo=UTC), visible_in_portal=True)).run()
    signed = await client.post("/portal/login", data={
        "email": "ada@example.test", "password": PORTAL_PASSWORD,
        "time_zone": "Pacific/Auckland"}, headers=await csrf_headers(client),
        follow_redirects=False)
    assert signed.status_code == 303
    history = await client.get("/portal/history")
    assert "Kick-off meeting" in history.text
    assert "02 Mar 2026" in history.text and "01 Mar 2026" not in history.text
    # A zone the browser made up is ignored: the last real one stays.
    await client.post("/portal/logout", headers=await csrf_headers(client))
    await client.post("/portal/login", data={
        "email": "ada@example.test", "password": PORTAL_PASSWORD, "time_zone": "Mars/Base"},
        headers=await csrf_headers(client))
    identity = await PortalIdentity.select(PortalIdentity.time_zone).where(
        PortalIdentity.id == ada.identity_id).first().run()
    assert identity["time_zone"] == "Pacific/Auckland"
    form = await client.get("/portal/login")
    assert 'name="time_zone"' in form.text and "time-zone.js" in form.text
