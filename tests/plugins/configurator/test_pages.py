"""Configuring through the pages and the API as staff and customers do: live answers with
explanations, saving re-validated on the server, bad input refused whole, a configured line
through quote, acceptance and order with its bill of materials, the portal (isolation,
comparison, asking for a quote), and the configurator without the sales plugin."""

from __future__ import annotations

import html
import re

from plugins.configurator.tables import Configuration
from tests.plugins.configurator.conftest import as_portal_customer, new_customer, post_form

TOWER = {"v.form": "tower", "v.cpu": "i7", "v.ram": "32", "v.psu": "w850",
         "v.storage": "ssd1", "v.wifi": "yes", "quantity": "2"}


def text(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def model_id(client, code: str) -> int:
    return client.versions[code]["model"]


async def test_staff_see_why_an_option_is_unavailable_and_what_would_make_it_possible(staff):
    pc = model_id(staff, "PC")
    page = await staff.get(f"/configurator/models/{pc}/configure")
    assert page.status_code == 200
    assert "Configure Build-your-own computer" in text(page.text)
    # Options show their pictures (the demo's cases), from this server.
    assert '<img class="cfg-option-image" src="/static/plugins/configurator/options/' \
        'case-tower.svg"' in page.text
    picture = await staff.get("/static/plugins/configurator/options/case-tower.svg")
    assert picture.status_code == 200
    live = await post_form(staff, f"/configurator/models/{pc}/assess", {
        **TOWER, "v.form": "mini", "v.psu": "w450", "version": staff.versions["PC"]["id"]},
        headers={"HX-Request": "true"})
    assert live.status_code == 200
    words = text(live.text)
    assert "Why not: The Mini case takes no full-length graphics card" in words
    assert "Make it possible: Case: Tower" in words or "Make it possible: Case: Rack 2U" in words
    # The chosen Mini case is kept: never silently changed.
    assert re.search(r'value="mini" checked', live.text)
    # Rack rails are not offered with a Mini case.
    assert "Rack rails" not in words


async def test_saving_revalidates_on_the_server_and_refuses_tampering(staff):
    pc = model_id(staff, "PC")
    customer = await new_customer()
    version = staff.versions["PC"]["id"]
    base = {**TOWER, "model": pc, "version": version, "customer": customer,
            "name": "Studio workstation"}
    tampered = await post_form(staff, "/configurator/configurations", {**base, "total": "1.00"})
    assert tampered.status_code == 400
    assert "the price has changed" in text(tampered.text)
    breaking = await post_form(staff, "/configurator/configurations", {
        **base, "v.form": "mini", "v.gpu": "pro"})
    assert breaking.status_code == 400
    assert "full-length graphics card" in text(breaking.text)
    foreign = await post_form(staff, "/configurator/configurations", {**base, "v.cpu": "b400"})
    assert foreign.status_code == 400 and "not an option of Processor" in text(foreign.text)
    outside = await post_form(staff, "/configurator/configurations", {**base, "v.ram": "512"})
    assert outside.status_code == 400 and "between 8 and 128" in text(outside.text)
    assert await Configuration.count() == 0  # nothing half-saved
    saved = await post_form(staff, "/configurator/configurations", base)
    assert saved.status_code == 303, saved.text
    summary = await staff.get(saved.headers["location"])
    words = text(summary.text)
    assert "Studio workstation" in words and "PC-1-" in words
    assert "RAM-1GB" in words and "Add to a quote" in words


async def test_a_retired_version_takes_no_new_configurations(staff):
    from plugins.configurator import models

    version = staff.versions["BIKE"]
    await models.retire_version(None, version["id"])
    response = await staff.post("/api/v1/configurator/configurations", json={
        "model": version["model"], "version": version["id"],
        "values": {"frame": "city", "size": "54", "gears": "hub7", "colour": "black"}})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == "version"
    assert "version 1 is retired" in response.json()["detail"]


async def test_api_answers_remaining_options_with_explanations_and_a_live_price(staff):
    pc = model_id(staff, "PC")
    response = await staff.post(f"/api/v1/configurator/models/{pc}/assess", json={
        "values": {"form": "mini", "cpu": "i5", "ram": "16", "psu": "w450"}, "quantity": "1"})
    assert response.status_code == 200, response.text
    body = response.json()
    pro = next(o for o in body["attributes"]["gpu"]["options"] if o["code"] == "pro")
    assert not pro["possible"] and pro["why"]["rules"] == ["R3"]
    assert pro["why"]["choices"] == ["form"]
    assert body["price"]["total"] == "562.00"  # 149 + 119 + 179 + 16 x 3.50 + 59
    bad = await staff.post(f"/api/v1/configurator/models/{pc}/assess", json={
        "values": {"ram": "12"}})
    assert bad.status_code == 422 and bad.json()["field"] == "values.ram"


async def test_a_configured_line_survives_quote_acceptance_and_order_with_its_bom(staff):
    customer = await new_customer("Studio Nord")
    version = staff.versions["PC"]
    saved = await staff.post("/api/v1/configurator/configurations", json={
        "model": version["model"], "version": version["id"], "customer": customer,
        "name": "Render node", "quantity": "2",
        "values": {"form": "tower", "cpu": "i7", "ram": "32", "psu": "w850",
                   "storage": ["ssd1"], "wifi": True}})
    assert saved.status_code == 201, saved.text
    configuration = saved.json()
    # "Add to a quote" posts sales' documented quote form with the configurator's line.
    created = await post_form(staff, "/sales/quotes", {
        "customer": customer, "currency": "EUR", "line1_source": "configurator",
        "line1_source_ref": f"cfg-{configuration['id']}", "line1_quantity": "2",
        "line1_tax": "19"})
    assert created.status_code == 303, created.text
    quote_id = int(created.headers["location"].rsplit("/", 1)[1])
    quote_page = await staff.get(f"/sales/quotes/{quote_id}")
    assert configuration["code"] in text(quote_page.text)
    sent = await post_form(staff, f"/sales/quotes/{quote_id}/send", {})
    assert sent.status_code == 303
    accepted = await post_form(staff, f"/sales/quotes/{quote_id}/accept", {
        "by": "Ms Nord", "via": "phone"})
    assert accepted.status_code == 303, accepted.text
    order_id = int(accepted.headers["location"].split("/")[-1].split("?")[0])
    order = (await staff.get(f"/api/v1/sales/orders/{order_id}")).json()
    lines = order["lines"]
    parent = lines[0]
    assert parent["source"] == "configurator" and parent["sku"] == configuration["code"]
    assert parent["context"]["Configuration"] == configuration["code"]
    assert parent["context"]["Processor"] == "12-core 4.2 GHz"
    parts = {line["sku"]: line["quantity"] for line in lines[1:]}
    assert parts["RAM-1GB"] in ("64", "64.000") and parts["CPU-12C"] in ("2", "2.000")
    assert all(line["parent_position"] == parent["position"] for line in lines[1:])


async def test_portal_customer_configures_compares_and_asks_for_a_quote(staff, monkeypatch):
    customer = await new_customer("Rider Ltd")
    other = await new_customer("Someone Else")
    bike = model_id(staff, "BIKE")
    version = staff.versions["BIKE"]["id"]
    from plugins.configurator import configurations

    theirs = await configurations.save(staff.rapport, None, {
        "version": version, "values": {"frame": "city", "size": "54", "gears": "hub7",
                                       "colour": "black"}}, customer_id=other)
    as_portal_customer(monkeypatch, staff, customer)
    page = await staff.get(f"/portal/configurator/models/{bike}/configure")
    assert page.status_code == 200 and "Made-to-measure bicycle" in text(page.text)
    live = await post_form(staff, f"/portal/configurator/models/{bike}/assess", {
        "version": version, "v.frame": "road", "v.size": "54", "v.gears": "d11",
        "v.colour": "red"}, headers={"HX-Request": "true"})
    assert "A road frame has no mounts for a basket or a pannier rack" in text(live.text)
    ids = []
    for name, colour in (("Red one", "red"), ("Green one", "green")):
        saved = await post_form(staff, "/portal/configurator/configurations", {
            "model": bike, "version": version, "v.frame": "city", "v.size": "54",
            "v.gears": "hub7", "v.colour": colour, "name": name})
        assert saved.status_code == 303, saved.text
        ids.append(saved.headers["location"].rsplit("/", 1)[1])
    compared = await staff.get(f"/portal/configurator/compare?ids={ids[0]}&ids={ids[1]}")
    assert "Signal red" in compared.text and "Forest green" in compared.text
    assert (await staff.get(f"/portal/configurator/configurations/{theirs['id']}")
            ).status_code == 404
    sneaky = await staff.get(f"/portal/configurator/compare?ids={ids[0]}&ids={theirs['id']}")
    assert "choose two or three" in text(sneaky.text)
    summary = await staff.get(f"/portal/configurator/configurations/{ids[0]}")
    assert "Ask for a quote" in summary.text
    asked = await post_form(staff, "/portal/sales/quote-requests", {
        "source": "configurator", "source_ref": f"cfg-{ids[0]}", "quantity": "1",
        "note": "Delivery in spring?", "back": f"/portal/configurator/configurations/{ids[0]}"})
    assert asked.status_code == 303, asked.text
    # Another customer's configuration cannot be asked for.
    stolen = await post_form(staff, "/portal/sales/quote-requests", {
        "source": "configurator", "source_ref": f"cfg-{theirs['id']}", "back": "/portal/"})
    assert stolen.status_code == 400
    from core import jobs
    from core.interactions.tables import Interaction
    from plugins.sales.tables import Opportunity

    await jobs.run_pending(staff.rapport)  # the durable sales.quote.requested is delivered

    [deal] = await Opportunity.select().where(Opportunity.customer == customer).run()
    assert deal["name"].startswith("Quote request: Made-to-measure bicycle: Red one")
    touch = await Interaction.select().where(Interaction.customer == customer).run()
    assert any(t["channel"] == "portal" and "Asked for a quote for a configuration"
               in t["subject"] for t in touch)


async def test_without_sales_configuring_and_saving_work_without_a_quote_button(alone):
    pc = model_id(alone, "PC")
    customer = await new_customer()
    saved = await post_form(alone, "/configurator/configurations", {
        **TOWER, "model": pc, "version": alone.versions["PC"]["id"], "customer": customer})
    assert saved.status_code == 303, saved.text
    summary = await alone.get(saved.headers["location"])
    assert summary.status_code == 200
    assert "Add to a quote" not in summary.text and "€" in summary.text


async def test_editing_a_model_names_the_wrong_field_and_saves_nothing(staff):
    created = await post_form(staff, "/configurator/models", {"name": "Desk", "code": "DESK"})
    assert created.status_code == 303
    url = created.headers["location"]
    added = await post_form(staff, url, {"currency": "EUR", "base_price": "200",
                                         "add": "attribute:single"})
    assert added.status_code == 200 and "attributes[0].label" in added.text
    bad = await post_form(staff, url, {
        "currency": "EUR", "base_price": "200", "attributes[0].kind": "single",
        "attributes[0].label": "Top", "attributes[0].code": "top",
        "attributes[0].options[0].label": "Oak", "attributes[0].options[0].code": "oak",
        "attributes[0].options[0].price": "twelve"})
    assert bad.status_code == 400
    assert "Top › Oak › price: is not an amount" in text(bad.text)
    from plugins.configurator import models

    model = await models.get_model(int(url.rsplit("/", 1)[1]))
    assert models.loads(model["draft"])["attributes"] == []
    good = await post_form(staff, url, {
        "currency": "EUR", "base_price": "200", "attributes[0].kind": "single",
        "attributes[0].label": "Top", "attributes[0].code": "top",
        "attributes[0].required": "on",
        "attributes[0].options[0].label": "Oak", "attributes[0].options[0].code": "oak",
        "attributes[0].options[0].price": "120", "rules[0].id": "R1",
        "rules[0].kind": "quantity", "rules[0].max": "20"})
    assert good.status_code == 303, text(good.text)[:500]
    published = await post_form(staff, url + "/publish", {})
    assert published.status_code == 303
    page = await staff.get(url)
    assert "Retire" in page.text


async def test_a_representative_cannot_save_for_a_customer_outside_their_scope(staff):
    from tests.conftest import make_user, sign_in

    await make_user("field@example.test", roles=("field_representative",))
    await sign_in(staff, "field@example.test")
    staff.headers["x-csrftoken"] = staff.cookies["csrftoken"]
    someone_elses = await new_customer("Not Yours GmbH")
    version = staff.versions["PC"]
    refused = await post_form(staff, "/configurator/configurations", {
        **TOWER, "model": version["model"], "version": version["id"],
        "customer": someone_elses})
    assert refused.status_code == 404
    api = await staff.post("/api/v1/configurator/configurations", json={
        "model": version["model"], "version": version["id"], "customer": someone_elses,
        "values": {"form": "tower", "cpu": "i5", "ram": "16", "psu": "w650"}})
    assert api.status_code == 422 and api.json()["field"] == "customer"
    assert await Configuration.count() == 0


async def test_saved_configurations_are_scoped_to_their_owner_and_team(staff):
    from core.customers.tables import Customer
    from core.identity.tables import Team
    from tests.conftest import make_user, sign_in

    version = staff.versions["PC"]
    await make_user("north@example.test", roles=("sales_representative",),
                    teams=("North",))
    await make_user("south@example.test", roles=("sales_representative",),
                    teams=("South",))
    teams = {t["name"]: t["id"] for t in await Team.select().run()}
    customers = {}
    for name in ("North", "South"):
        customers[name] = await new_customer(f"{name} Ltd")
        await Customer.update({Customer.team: teams[name]}).where(
            Customer.id == customers[name]).run()
    saved = {}
    for name in ("North", "South"):  # the administrator saves one for each customer
        response = await staff.post("/api/v1/configurator/configurations", json={
            "model": version["model"], "version": version["id"], "name": f"For {name}",
            "customer": customers[name],
            "values": {"form": "tower", "cpu": "i5", "ram": "16", "psu": "w650"}})
        assert response.status_code == 201, response.text
        saved[name] = response.json()["id"]
    await sign_in(staff, "north@example.test")
    staff.headers["x-csrftoken"] = staff.cookies["csrftoken"]
    listed = await staff.get("/api/v1/configurator/configurations")
    assert [c["id"] for c in listed.json()["items"]] == [saved["North"]]
    assert (await staff.get(f"/configurator/configurations/{saved['South']}")).status_code \
        == 404
    assert (await staff.get(
        f"/api/v1/configurator/configurations/{saved['South']}")).status_code == 404
    assert "For South" not in text((await staff.get("/configurator")).text)
    page = await staff.get(f"/configurator/compare?ids={saved['North']}&ids={saved['South']}")
    assert "For South" not in text(page.text)
    # Overwriting another team's configuration is refused too.
    overwrite = await post_form(staff, "/configurator/configurations", {
        **TOWER, "model": version["model"], "version": version["id"],
        "configuration": saved["South"]})
    assert overwrite.status_code == 404
    row = await Configuration.select(Configuration.owner, Configuration.team).where(
        Configuration.id == saved["North"]).first().run()
    assert row == {"owner": staff.user_id, "team": teams["North"]}


async def test_erasing_a_customer_blanks_what_they_typed_and_keeps_the_figures(staff):
    from core.privacy.service import erase_customer

    version = staff.versions["PC"]
    customer = await new_customer("Grace Hopper")
    response = await staff.post("/api/v1/configurator/configurations", json={
        "model": version["model"], "version": version["id"], "customer": customer,
        "name": "Grace's home office",
        "values": {"form": "tower", "cpu": "i5", "ram": "16", "psu": "w650",
                   "label": "Property of Grace Hopper"}})
    assert response.status_code == 201, response.text
    before = response.json()
    await erase_customer(staff.rapport, None, customer)
    row = await Configuration.select().where(Configuration.id == before["id"]).first().run()
    assert "Grace" not in row["name"] and "Grace" not in row["choices"]
    assert row["name"].endswith(before["code"])
    assert str(row["total"]) == before["total"] and row["code"] == before["code"]
