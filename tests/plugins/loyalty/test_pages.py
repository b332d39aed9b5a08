"""The staff pages, the API and the portal: enrolment with consent, earning through the API
once per transaction, refusals naming the field, portal isolation, panels and widgets."""

from __future__ import annotations

from core.customers.tables import ConsentRecord
from plugins.loyalty.tables import Member
from tests.conftest import app_client, make_user, sign_in
from tests.plugins.loyalty.conftest import new_customer, new_program


async def test_staff_enrol_a_customer_with_consent_and_see_the_member_page(loyalty_client):
    client = loyalty_client
    program = await new_program()
    customer = await new_customer("Grace Hopper")
    refused = await client.post("/loyalty/members/new", data={
        "customer": customer, "program": program["id"]})
    assert refused.status_code == 422 and "accept the program" in refused.text
    done = await client.post("/loyalty/members/new", data={
        "customer": customer, "program": program["id"], "accept_terms": "on"})
    assert done.status_code == 303
    member = await Member.select().where(Member.customer == customer).first().run()
    [consent] = await ConsentRecord.select().where(ConsentRecord.customer == customer).run()
    assert consent["purpose"] == "Loyalty program: Club" and consent["granted"]
    assert "2026-1" in consent["source"]
    page = await client.get(done.headers["location"])
    assert page.status_code == 200 and member["card_number"] in page.text
    assert "data:image/svg+xml" in page.text  # the card's QR code
    adjust = await client.post(f"/loyalty/members/{member['id']}/adjust",
                               data={"points": "250", "reason": "Goodwill after a late parcel"})
    assert adjust.status_code == 303
    page = await client.get(f"/loyalty/members/{member['id']}")
    assert "Goodwill after a late parcel" in page.text and "250" in page.text
    panel = await client.get(f"/loyalty/panels/customer/{customer}")
    assert "250" in panel.text and member["card_number"] in panel.text


async def test_api_earning_is_once_per_transaction_and_refusals_name_the_field(loyalty_client):
    client = loyalty_client
    program = await new_program()
    customer = await new_customer()
    enrolled = await client.post("/api/v1/loyalty/members", json={
        "program": program["id"], "customer": customer, "accept_terms": True})
    assert enrolled.status_code == 201, enrolled.text
    card = enrolled.json()["card_number"]
    body = {"card_number": card, "transaction_id": "TILL7-0042", "currency": "EUR",
            "lines": [{"net": "19.99", "quantity": 1}, {"net": "30.01", "quantity": 2}]}
    first = await client.post("/api/v1/loyalty/purchases", json=body)
    assert first.status_code == 201, first.text
    assert first.json()["points"] == 50
    again = await client.post("/api/v1/loyalty/purchases", json={**body, "lines": [
        {"net": "999", "quantity": 1}]})
    assert again.status_code == 200 and again.json()["replayed"]
    assert again.json()["ledger_id"] == first.json()["ledger_id"]
    lookup = await client.get(f"/api/v1/loyalty/cards/{card}")
    assert lookup.json()["balance"] == 50
    bad = await client.post("/api/v1/loyalty/purchases", json={**body, "transaction_id": "x2",
                                                               "lines": [{"net": "-5"}]})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith(
        "application/problem+json")
    assert bad.json()["field"] == "lines[0].net"
    returned = await client.post("/api/v1/loyalty/purchases/TILL7-0042/returns", json={
        "card_number": card, "return_id": "R1"})
    assert returned.status_code == 201 and returned.json()["points"] == -50
    rule = await client.post(f"/loyalty/programs/{program['id']}/tiers", data={
        "name": "Gold", "threshold": "0"})
    assert rule.status_code == 303
    overlapping = await client.post(f"/loyalty/programs/{program['id']}/tiers", data={
        "name": "Silver", "threshold": "0"})
    assert overlapping.status_code == 422 and "Gold already starts at 0" in overlapping.text
    promotion = await client.post(f"/loyalty/programs/{program['id']}/rules", data={
        "kind": "promotion", "name": "Double points in December", "multiplier": "2",
        "starts_on": "2026-12-01", "ends_on": "2026-12-31"})
    assert promotion.status_code == 303
    page = await client.get(f"/loyalty/programs/{program['id']}")
    assert page.status_code == 200 and "01 Dec 2026 – 31 Dec 2026" in page.text
    negative = await client.post(f"/loyalty/programs/{program['id']}/rules", data={
        "kind": "first_purchase", "points": "-5"})
    assert negative.status_code == 422 and "must not be negative" in negative.text


async def test_portal_customer_joins_redeems_and_never_sees_another_member(loyalty_client):
    from tests.core.portal.conftest import make_person, portal_sign_in

    rapport = loyalty_client.rapport
    program = await new_program()
    from plugins.loyalty.rewards import save_reward

    reward = await save_reward(None, program["id"], {"name": "€5 off", "cost": 100,
                                                     "value": "5.00"})
    async with app_client(rapport) as portal:
        ada = await make_person(rapport, "Ada", "Lovelace", "ada@example.test")
        bob = await make_person(rapport, "Bob", "Babbage", "bob@example.test")
        await portal_sign_in(portal, "ada@example.test")
        token = {"x-csrftoken": portal.cookies["csrftoken"]}
        home = await portal.get("/portal/loyalty")
        assert "Join Club" in home.text
        joined = await portal.post("/portal/loyalty/join", headers=token, data={
            "program": program["id"], "accept_terms": "on"})
        assert joined.status_code == 303, joined.text
        ada_member = await Member.select().where(Member.customer == ada.customer_id).first(
        ).run()
        from plugins.loyalty import ledger
        from plugins.loyalty.members import enrol

        await ledger.earn(ada_member["id"], 150, explanation="150 points: 1 per euro on SO-1",
                          source="order", key="o1")
        bob_member = await enrol(rapport, None, program["id"], bob.customer_id, via="staff",
                                 accepted_terms=True)
        page = await portal.get("/portal/loyalty")
        assert "150 points: 1 per euro on SO-1" in page.text and ada_member["card_number"] in \
            page.text
        redeemed = await portal.post(f"/portal/loyalty/members/{ada_member['id']}/redeem",
                                     headers=token, data={"reward": reward["id"]})
        assert redeemed.status_code == 303
        page = await portal.get("/portal/loyalty")
        assert "LV-" in page.text and "€5 off" in page.text
        other = await portal.post(f"/portal/loyalty/members/{bob_member['id']}/redeem",
                                  headers=token, data={"reward": reward["id"]})
        assert other.status_code == 404
        card = await portal.get("/portal/loyalty/card")
        assert "50" in card.text


async def test_widgets_read_the_month_totals(loyalty_client):
    client = loyalty_client
    program = await new_program()
    from plugins.loyalty import ledger
    from tests.plugins.loyalty.conftest import enrolled

    member = await enrolled(client.rapport, program)
    await ledger.earn(member["id"], 1000, explanation="x", source="order", key="w1")
    await ledger.spend(member["id"], 400, explanation="y", source="reward")
    widget = await client.get("/loyalty/widgets/liability")
    assert "600 points" in widget.text and "€6.00" in widget.text and "40%" in widget.text
    members = await client.get("/loyalty/members.csv")
    assert members.status_code == 200 and "Ada Lovelace" in members.text
    assert members.text.splitlines()[1].split(",")[5] == "600"
    csv = await client.get("/loyalty/reports/months.csv")
    assert csv.status_code == 200 and "Club" in csv.text and ",1000,400," in csv.text
    assert (await client.get("/loyalty/widgets/activity")).status_code == 200
    assert (await client.get("/loyalty/widgets/tiers")).status_code == 200
    clerk = await make_user("clerk@example.test", roles=())
    assert clerk
    async with app_client(client.rapport) as other:
        await sign_in(other, "clerk@example.test")
        assert (await other.get("/loyalty/widgets/liability")).status_code == 403


async def test_ids_beyond_the_database_and_unknown_codes_answer_404_or_422(loyalty_client):
    client = loyalty_client
    for big in (2 ** 31, 2 ** 63, 10 ** 30):
        for path in (f"/loyalty/members/{big}", f"/loyalty/programs/{big}",
                     f"/loyalty/panels/customer/{big}", f"/api/v1/loyalty/members/{big}",
                     f"/api/v1/loyalty/members/{big}/ledger",
                     f"/api/v1/loyalty/programs/{big}/rewards"):
            response = await client.get(path)
            assert response.status_code in (404, 422), (path, response.status_code)
        response = await client.post(f"/api/v1/loyalty/members/{big}/redemptions",
                                     json={"reward": 1})
        assert response.status_code in (404, 422)
    for code in ("nope", "LV-AAAA-AAAA-AAAA", "x" * 200):
        assert (await client.get(f"/api/v1/loyalty/vouchers/{code}")).status_code == 404
        used = await client.post(f"/api/v1/loyalty/vouchers/{code}/use",
                                 json={"transaction_id": "T1"})
        assert used.status_code == 404 and used.json()["field"] == "code"
    bad = await client.post("/api/v1/loyalty/members", json={"program": "1", "customer": 1})
    assert bad.status_code == 422 and bad.json()["field"] == "program"


async def test_staff_pool_a_contact_with_their_account_only_where_the_program_allows(
        loyalty_client):
    from plugins.loyalty.members import enrol
    from tests.plugins.loyalty.conftest import enrolled

    rapport = loyalty_client.rapport
    strict = await new_program(name="No pooling")
    household = await new_program(name="Household", allow_pooling=True)
    for program, expected in ((strict, 422), (household, 303)):
        account = await enrolled(rapport, program, name=f"Acme {program['id']}")
        contact = await new_customer(f"Ada Acme{program['id']}", account=account["customer"])
        member = await enrol(rapport, None, program["id"], contact, via="staff",
                             accepted_terms=True)
        response = await loyalty_client.post(f"/loyalty/members/{member['id']}/pool",
                                             data={"share": "on"})
        assert response.status_code == expected
        if expected == 422:
            assert "does not let members pool points" in response.text
    pooled = await Member.select().where(Member.pool.is_not_null()).run()
    assert len(pooled) == 1


async def test_rules_tiers_and_rewards_are_edited_in_place_with_refusals_beside_the_field(
        loyalty_client):
    from plugins.loyalty import rewards, rules, tiers
    from plugins.loyalty.tables import Reward, Rule, Tier

    client = loyalty_client
    program = await new_program()
    pid = program["id"]
    [rule] = await rules.rules_of(pid)
    gold = await tiers.save_tier(None, pid, {"name": "Gold", "threshold": 500})
    await tiers.save_tier(None, pid, {"name": "Silver", "threshold": 100})
    mug = await rewards.save_reward(None, pid, {"name": "Mug", "kind": "gift", "cost": 300,
                                                "stock": 5})
    await Reward.update({Reward.issued_count: 3}).where(Reward.id == mug["id"]).run()
    page = await client.get(f"/loyalty/programs/{pid}")
    for path in (f"rules/{rule['id']}", f"tiers/{gold['id']}", f"rewards/{mug['id']}"):
        assert f'href="/loyalty/programs/{pid}/{path}"' in page.text
    form = await client.get(f"/loyalty/programs/{pid}/rules/{rule['id']}")
    assert form.status_code == 200 and 'value="1"' in form.text  # 1 per euro, not 1.0000
    changed = await client.post(f"/loyalty/programs/{pid}/rules/{rule['id']}", data={
        "kind": "per_currency_unit", "name": "2 points per euro", "points": "2"})
    assert changed.status_code == 303
    row = await Rule.select().where(Rule.id == rule["id"]).first().run()
    assert row["points"] == 2 and row["name"] == "2 points per euro" and row["active"]
    refused = await client.post(f"/loyalty/programs/{pid}/rules/{rule['id']}", data={
        "kind": "per_currency_unit", "name": "Nothing", "points": "-1"})
    assert refused.status_code == 422 and 'id="rule-points-error"' in refused.text
    assert 'value="Nothing"' in refused.text  # what was typed is kept
    overlap = await client.post(f"/loyalty/programs/{pid}/tiers/{gold['id']}", data={
        "name": "Gold", "threshold": "100"})
    assert overlap.status_code == 422 and "Silver already starts at 100" in overlap.text
    moved = await client.post(f"/loyalty/programs/{pid}/tiers/{gold['id']}", data={
        "name": "Gold", "threshold": "800", "multiplier": "1.5", "free_shipping": "on"})
    assert moved.status_code == 303
    tier = await Tier.select().where(Tier.id == gold["id"]).first().run()
    assert tier["threshold"] == 800 and tier["free_shipping"]
    form = await client.get(f"/loyalty/programs/{pid}/rewards/{mug['id']}")
    assert "3 vouchers were issued for this reward" in form.text
    too_few = await client.post(f"/loyalty/programs/{pid}/rewards/{mug['id']}", data={
        "name": "Mug", "kind": "gift", "cost": "250", "stock": "2"})
    assert too_few.status_code == 422 and "at least the 3 already redeemed" in too_few.text
    cheaper = await client.post(f"/loyalty/programs/{pid}/rewards/{mug['id']}", data={
        "name": "Mug", "kind": "gift", "cost": "250", "stock": "10",
        "min_tier": str(gold["id"])})
    assert cheaper.status_code == 303
    reward = await Reward.select().where(Reward.id == mug["id"]).first().run()
    assert reward["cost"] == 250 and reward["min_tier"] == gold["id"] and reward["active"]
    # Another program's item, or something that is not an item, is not found.
    other = await new_program(name="Other")
    assert (await client.get(f"/loyalty/programs/{other['id']}/rules/{rule['id']}")
            ).status_code == 404
    assert (await client.get(f"/loyalty/programs/{pid}/members/{rule['id']}")
            ).status_code == 404


async def test_a_card_number_typed_or_scanned_finds_its_member(loyalty_client):
    from plugins.loyalty.members import enrol

    client = loyalty_client
    program = await new_program()
    customer = await new_customer("Katherine Johnson")
    member = await enrol(client.rapport, None, program["id"], customer, via="staff",
                         accepted_terms=True)
    card = member["card_number"]
    spaced = " ".join(card[i:i + 4] for i in range(0, len(card), 4))
    found = await client.get("/api/v1/search", params={"q": spaced})
    group = next(g for g in found.json()["groups"] if g["kind"] == "loyalty.member")
    [result] = group["results"]
    assert result["url"] == f"/loyalty/members/{member['id']}"
    assert "Katherine Johnson" in result["title"] and "0 points" in result["snippet"]
    opened = await client.get(f"/loyalty/cards/{card}", follow_redirects=False)
    assert opened.status_code == 303
    assert opened.headers["location"] == f"/loyalty/members/{member['id']}"
    assert (await client.get("/loyalty/cards/1234567890123456")).status_code == 404
    names = await client.get("/api/v1/search", params={"q": "Katherine"})
    assert all(g["kind"] != "loyalty.member" for g in names.json()["groups"])


async def test_a_stamp_card_member_page_counts_stamps_without_a_money_value(loyalty_client):
    from plugins.loyalty.members import enrol
    from plugins.loyalty.programs import create_program

    client = loyalty_client
    program = await create_program(None, {"name": "Coffee card", "kind": "stamps",
                                          "currency": "EUR", "terms": "Ten for one."})
    customer = await new_customer("Dorothy Vaughan")
    member = await enrol(client.rapport, None, program["id"], customer, via="staff",
                         accepted_terms=True)
    page = await client.get(f"/loyalty/members/{member['id']}")
    assert page.status_code == 200
    assert "0</strong> stamps" in page.text and "Worth" not in page.text
