"""Segments: the rule editor's AND/OR groups, its live count and preview, refusals naming
the condition, the row-level scope of whoever counts, criteria from other plugins through
``campaigns_segment_criteria``, and docs that match the hook's signature."""

from __future__ import annotations

import inspect
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.plugin import PROJECT, hookimpl
from plugins.campaigns import hookspecs
from tests.conftest import make_user, sign_in
from tests.core.test_docs import HEADING, heading_for
from tests.plugins.campaigns.conftest import new_customer

DOCS = Path(__file__).resolve().parents[3] / "docs" / "plugins" / "campaigns.md"


def form(**fields) -> dict[str, str]:
    data = {"name": "Quiet VIP leads", "description": "", "match": "all"}
    data.update(fields)
    return data


async def people(owner: int):
    from core.interactions.tables import Interaction

    ada = await new_customer("Ada Lovelace", tags=("vip",), owner=owner)
    bob = await new_customer("Bob Byron", stage="customer", tags=("vip",))
    cy = await new_customer("Cy Quiet")
    di = await new_customer("Di Busy")
    eve = await new_customer("Eve Erased", tags=("vip",))
    from core.customers.tables import Customer

    await Customer.update({Customer.erased_at: datetime.now(UTC)}).where(
        Customer.id == eve).run()
    await Interaction.insert(Interaction(customer=di, channel="call", direction="outbound",
                                         occurred_at=datetime.now(UTC) - timedelta(days=2),
                                         created_at=datetime.now(UTC),
                                         updated_at=datetime.now(UTC))).run()
    return ada, bob, cy, di


RULES = {  # leads AND (tagged vip OR no touch point in 30 days)
    "g0_match": "all", "g0_c0_criterion": "core.lifecycle_stage", "g0_c0_op": "is",
    "g0_c0_value": "lead",
    "g1_match": "any", "g1_c0_criterion": "core.tag", "g1_c0_op": "has", "g1_c0_value": "VIP",
    "g1_c1_criterion": "core.touch_point", "g1_c1_op": "none_in_last_days", "g1_c1_value": "30",
}


async def test_a_marketer_builds_a_segment_and_sees_who_is_in_it(campaigns_client):
    client = campaigns_client
    ada, bob, cy, di = await people(client.user_id)

    page = await client.get("/campaigns/segments/new")
    assert page.status_code == 200 and "Group 1" in page.text

    count = await client.post("/campaigns/segments/count", data=form(**RULES))
    assert count.status_code == 200
    assert "<strong>2</strong> customers match" in count.text
    assert "Ada Lovelace" in count.text and "Cy Quiet" in count.text
    assert "Di Busy" not in count.text and "Bob Byron" not in count.text
    assert "Eve Erased" not in count.text  # erased customers are never members

    # The editor's buttons add a condition and a group without saving anything.
    more = await client.post("/campaigns/segments/editor",
                             data=form(**RULES, _action="add_group"))
    assert "Group 3" in more.text and 'hx-swap-oob="true"' in more.text

    # Any group (OR) instead of all: Bob (vip) and Di (lead) join.
    anyof = await client.post("/campaigns/segments/count", data=form(**RULES, match="any"))
    assert "<strong>4</strong> customers match" in anyof.text

    saved = await client.post("/campaigns/segments", data=form(**RULES, _action="save"))
    assert saved.status_code == 303
    shown = await client.get(saved.headers["location"])
    assert "Saved." in shown.text and "<strong>2</strong> customers match" in shown.text
    listing = await client.get("/campaigns/segments")
    assert "Quiet VIP leads" in listing.text
    assert "Lifecycle stage is Lead and (Tag has VIP or Touch point none in the last N days 30)" \
        not in listing.text  # one group per parenthesis:
    assert "(Lifecycle stage is Lead) and (Tag has VIP or Touch point none in the last N " \
           "days 30)" in listing.text

    from core.audit import AuditEntry

    assert await AuditEntry.exists().where(AuditEntry.record_type == "campaigns_segment").run()


async def test_bad_conditions_are_refused_beside_the_condition(campaigns_client):
    client = campaigns_client
    bad_days = await client.post("/campaigns/segments", data=form(
        **{**RULES, "g1_c1_value": "soon"}, _action="save"))
    assert bad_days.status_code == 422
    assert re.search(r'id="g1_c1-error">enter a whole number of days<', bad_days.text)
    unknown = await client.post("/campaigns/segments", data=form(
        **{**RULES, "g0_c0_criterion": "sales.bought_product"}, _action="save"))
    assert unknown.status_code == 422
    assert "this criterion is not available" in unknown.text
    nameless = await client.post("/campaigns/segments", data=form(**RULES, name=" ",
                                                                   _action="save"))
    assert nameless.status_code == 422 and 'id="f-name-error">enter a name<' in nameless.text
    from plugins.campaigns.tables import Segment

    assert await Segment.count().run() == 0


async def test_a_segment_counts_only_the_customers_its_user_may_see(campaigns_client):
    client = campaigns_client
    rep = await make_user("rep@example.test", roles=("field_representative",))
    ada, bob, cy, di = await people(rep)  # the representative owns Ada only
    everyone = await client.post("/campaigns/segments/count", data=form(
        g0_match="all", g0_c0_criterion="core.has_email", g0_c0_op="yes"))
    assert "<strong>4</strong> customers match" in everyone.text
    await sign_in(client, "rep@example.test")
    client.headers["x-csrftoken"] = client.cookies["csrftoken"]
    mine = await client.post("/campaigns/segments/count", data=form(
        g0_match="all", g0_c0_criterion="core.has_email", g0_c0_op="yes"))
    assert "<strong>1</strong> customer matches" in mine.text and "Ada Lovelace" in mine.text
    # A field representative may look but not save segments.
    refused = await client.post("/campaigns/segments", data=form(**RULES, _action="save"))
    assert refused.status_code == 403


class BoughtPlugin:
    """What another plugin (sales, loyalty...) would implement, without importing campaigns."""

    @hookimpl(optionalhook=True)
    def campaigns_segment_criteria(self, rapport):
        def sql(op, value):
            if not value.strip():
                raise ValueError("enter a tag to look for")
            return ("EXISTS (SELECT 1 FROM core_customer_tag t WHERE t.customer = "
                    "core_customer.id AND t.tag = {})", [f"bought:{value.strip()}"])

        return [{"key": "shop.bought", "label": "Bought product", "operators": [("is", "is")],
                 "value": "text", "sql": sql}]


async def test_other_plugins_contribute_criteria_through_the_hook(campaigns_client):
    client = campaigns_client
    client.rapport.pm.register(BoughtPlugin(), name="shop")
    await new_customer("Ada Lovelace", tags=("bought:kettle",))
    await new_customer("Bob Byron", tags=("bought:toaster",))
    page = await client.get("/campaigns/segments/new")
    assert '<optgroup label="Shop">' in page.text and "Bought product" in page.text
    count = await client.post("/campaigns/segments/count", data=form(
        g0_match="all", g0_c0_criterion="shop.bought", g0_c0_op="is", g0_c0_value="kettle"))
    assert "<strong>1</strong> customer matches" in count.text and "Ada Lovelace" in count.text
    empty = await client.post("/campaigns/segments/count", data=form(
        g0_match="all", g0_c0_criterion="shop.bought", g0_c0_op="is", g0_c0_value=" "))
    assert "enter a tag to look for" in empty.text


def campaigns_hookspecs() -> dict[str, object]:
    marker = f"{PROJECT}_spec"
    return {name: fn for name, fn in vars(hookspecs).items()
            if inspect.isfunction(fn) and hasattr(fn, marker)}


@pytest.mark.parametrize("name", sorted(campaigns_hookspecs()))
def test_every_campaigns_hook_is_documented_with_its_exact_signature(name):
    documented = {m["name"]: f"{m['name']}({m['rest']}" for m in HEADING.finditer(DOCS.read_text())}
    expected = heading_for(campaigns_hookspecs()[name])
    assert documented.get(name) == expected, (
        f"docs/plugins/campaigns.md must have a section headed\n### `{expected}`")
    assert set(documented) <= set(campaigns_hookspecs()), "docs name a hook that does not exist"
