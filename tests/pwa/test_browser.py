"""The field app in a real browser: Debian's Chromium driven through Playwright and CDP."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_app_is_installable_from_the_sign_in_page(live_server, chromium):
    page = chromium.new_page()
    page.goto(f"{live_server.url}/login")
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    cdp = chromium.new_cdp_session(page)
    manifest = cdp.send("Page.getAppManifest")
    assert manifest["url"].endswith("/manifest.webmanifest")
    assert not manifest.get("errors"), manifest.get("errors")
    errors = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
    assert errors == []


# --- working offline ------------------------------------------------------------------------


async def _seed_rep(rapport, email: str, customers: list[str]) -> tuple[int, list[int]]:
    from core.customers.tables import Customer, CustomerAddress
    from tests.conftest import make_user

    user_id = await make_user(email, roles=["field_representative"])
    ids = []
    for index, name in enumerate(customers):
        rows = await Customer.insert(Customer(kind="account", name=name, owner=user_id,
                                              primary_phone="+4930555000")).returning(
            Customer.id).run()
        await CustomerAddress.insert(CustomerAddress(
            customer=rows[0]["id"], street=f"Street {index}", city="Berlin",
            latitude=52.5 + index / 10, longitude=13.4)).run()
        ids.append(rows[0]["id"])
    return user_id, ids


async def _interactions_of(rapport, user_id: int) -> list[dict]:
    from core.interactions.tables import Interaction
    from pwa.tables import FieldAttachment, VisitCheckIn

    rows = await Interaction.select(Interaction.id, Interaction.client_id, Interaction.channel,
                                    Interaction.notes).where(Interaction.user == user_id).run()
    for row in rows:
        row["attachments"] = await FieldAttachment.count().where(
            FieldAttachment.interaction_id == row["id"]).run()
        row["checked_in"] = await VisitCheckIn.exists().where(
            VisitCheckIn.interaction_id == row["id"]).run()
    return rows


def sign_in_browser(page, base: str, email: str) -> None:
    from tests.conftest import DEMO_PASSWORD

    page.goto(f"{base}/login?next=/field/")
    page.fill("#email", email)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/field/")


def log(page, customer_id: int, notes: str, *, visit: bool = False, photo: bytes = b"") -> None:
    page.goto(page.url.split("#")[0] + f"#/customers/{customer_id}")
    page.click("text=Visit report" if visit else "text=Log interaction")
    page.fill("#log-notes", notes)
    page.select_option("#log-outcome", "Interested")
    if visit:
        page.click("[data-action=check-in]")
        page.wait_for_selector("text=Checked in")
        box = page.locator("#log-signature").bounding_box()
        page.mouse.move(box["x"] + 20, box["y"] + 30)
        page.mouse.down()
        page.mouse.move(box["x"] + 120, box["y"] + 80, steps=5)
        page.mouse.move(box["x"] + 200, box["y"] + 40, steps=5)
        page.mouse.up()
        page.set_input_files("#log-photos", files=[
            {"name": "shelf.png", "mimeType": "image/png", "buffer": photo}])
    page.click("form.field-form button[type=submit]")
    page.wait_for_url(f"**#/customers/{customer_id}")


def test_visit_recorded_offline_reaches_the_server_once(live_server, chromium):
    from pwa.icons import app_icon

    email = "offline@example.test"
    user_id, (acme, globex) = live_server.run(_seed_rep, email, ["Acme", "Globex"])
    chromium.grant_permissions(["geolocation"], origin=live_server.url)
    chromium.set_geolocation({"latitude": 52.52, "longitude": 13.405, "accuracy": 10})
    page = chromium.new_page()
    sign_in_browser(page, live_server.url, email)
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.reload()  # now controlled by the worker, which keeps the app shell
    page.wait_for_selector("#field-last-synced:has-text('Last synced')")
    page.click("[data-tab=customers]")
    page.wait_for_selector("#field-customers >> text=Globex")

    chromium.set_offline(True)
    page.reload()  # the shell and the data come from the device
    page.wait_for_selector("#field-online:has-text('Offline')")
    log(page, acme, "Talked about the spring order")
    log(page, globex, "Left a brochure")
    log(page, acme, "Checked the installation", visit=True, photo=app_icon(192, "#336699"))
    page.click("[data-tab=sync]")
    page.wait_for_selector("#field-outbox li")
    assert page.locator("#field-outbox li[data-status=queued]").count() == 3
    assert live_server.run(_interactions_of, user_id) == []

    chromium.set_offline(False)
    page.wait_for_function(
        "() => document.querySelectorAll('#field-outbox li[data-status=sent]').length === 3")
    client_ids = sorted(page.evaluate(
        "FieldStore.allItems().then(items => items.map(i => i.client_id))"))
    rows = live_server.run(_interactions_of, user_id)
    assert sorted(r["client_id"] for r in rows) == client_ids
    visit = next(r for r in rows if r["channel"] == "visit")
    assert visit["attachments"] == 2 and visit["checked_in"]  # photo + signature

    # The device uploads everything again (a lost answer, a second tab): nothing doubles.
    replayed = page.evaluate("""async () => {
      const csrf = await FieldStore.getMeta("csrf");
      const items = await FieldStore.allItems();
      const answers = [];
      for (const item of items) {
        const response = await fetch("/api/v1/field/sync", {method: "POST",
          headers: {"content-type": "application/json", "x-csrftoken": csrf},
          body: JSON.stringify({kind: item.kind, ...item.payload})});
        answers.push((await response.json()).replayed);
      }
      return answers;
    }""")
    assert replayed == [True, True, True]
    assert len(live_server.run(_interactions_of, user_id)) == 3

    # Signing out forgets the customers kept on the device (a phone may be shared).
    page.click("form[action='/logout'] button")
    page.wait_for_url("**/login")
    kept = page.evaluate("""() => new Promise((resolve) => {
      const request = indexedDB.open("rapport-field", 1);
      request.onsuccess = () => {
        const get = request.result.transaction("meta").objectStore("meta").get("snapshot");
        get.onsuccess = () => resolve(get.result === undefined ? null : get.result);
      };
    })""")
    assert kept is None
    assert page.evaluate("() => caches.has('rapport-v1-pages')") is False


# --- Web Push -------------------------------------------------------------------------------


async def _subscribe_and_remind(rapport, email: str, subscription: dict) -> int:
    from datetime import UTC, datetime, timedelta

    from pwa import push, reminders
    from tests.conftest import make_user

    user_id = await make_user(email, roles=["field_representative"])
    await push.subscribe(rapport, user_id, subscription)
    # A follow-up reminder already due: the server's scheduler picks it up by itself.
    await reminders.schedule(user_id, "follow_up:e2e", datetime.now(UTC) - timedelta(seconds=1),
                             "Call Acme back", body="They asked for a quote",
                             url="/field/#/customers/1")
    return user_id


def test_reminder_is_pushed_decrypted_and_shown_by_the_service_worker(live_server, chromium):
    import json
    import time

    from tests.pwa.pushservice import FakeBrowser, PushService, verify_vapid

    browser_keys = FakeBrowser()
    with PushService() as service:
        live_server.run(_subscribe_and_remind, "push@example.test",
                        browser_keys.subscription(service.endpoint("device-1")))
        deadline = time.monotonic() + 20
        while not service.received and time.monotonic() < deadline:
            time.sleep(0.1)
        assert service.received, "the server's worker sent nothing"
    received = service.received[0]
    verify_vapid(received)
    assert received.headers["content-type"] == "application/octet-stream"
    payload = browser_keys.decrypt(received.body)
    assert json.loads(payload)["title"] == "Call Acme back"

    # Hand the decrypted message to the service worker as the browser's push service would.
    chromium.grant_permissions(["notifications"], origin=live_server.url)
    page = chromium.new_page()
    page.goto(f"{live_server.url}/login")
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    cdp = chromium.new_cdp_session(page)
    registrations = []
    cdp.on("ServiceWorker.workerRegistrationUpdated",
           lambda event: registrations.extend(event["registrations"]))
    cdp.send("ServiceWorker.enable")
    deadline = time.monotonic() + 10
    while not registrations and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    registration_id = next(r["registrationId"] for r in registrations
                           if r["scopeURL"] == f"{live_server.url}/")
    cdp.send("ServiceWorker.deliverPushMessage", {
        "origin": live_server.url, "registrationId": registration_id,
        "data": payload.decode()})
    # Poll from here: a predicate returning a Promise is truthy at once for wait_for_function,
    # which made this test read the notifications before the worker had shown any.
    shown, deadline = [], time.monotonic() + 10
    while not shown and time.monotonic() < deadline:
        page.wait_for_timeout(100)
        shown = page.evaluate("""() => navigator.serviceWorker.ready
            .then(r => r.getNotifications())
            .then(list => list.map(n => ({title: n.title, body: n.body, url: n.data.url})))""")
    assert shown == [{"title": "Call Acme back", "body": "They asked for a quote",
                      "url": "/field/#/customers/1"}]
