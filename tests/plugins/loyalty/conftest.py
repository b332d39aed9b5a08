"""Fixtures for the loyalty plugin's tests: an app with loyalty (and, where a test needs
orders, sales) enabled, a program with a rule, and customers to enrol."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.conftest import app_client, connected, make_user, sign_in


@pytest.fixture
async def loyalty_rapport(make_rapport):
    """An app with only the loyalty plugin (sales disabled), database connected."""
    instance = await make_rapport(["loyalty"], {}, debug=True)
    async with connected(instance):
        yield instance


@pytest.fixture
async def loyalty_client(make_rapport):
    """A client signed in as an administrator on an app with loyalty alone."""
    instance = await make_rapport(["loyalty"], {}, debug=True)
    async with app_client(instance) as client:
        client.user_id = await make_user("boss@example.test")
        await sign_in(client, "boss@example.test")
        client.headers["x-csrftoken"] = client.cookies["csrftoken"]
        yield client


async def new_customer(name: str = "Ada Lovelace", account: int | None = None,
                       birthday=None) -> int:
    from core.customers.tables import Customer

    rows = await Customer.insert(Customer(kind="contact", name=name, account=account,
                                          birthday=birthday,
                                          primary_email=name.split()[0].lower() + "@example.test")
                                 ).returning(Customer.id).run()
    return rows[0]["id"]


async def new_program(**overrides) -> dict:
    from plugins.loyalty.programs import create_program
    from plugins.loyalty.rules import create_rule

    values = {"name": "Club", "currency": "EUR", "point_value": "0.01", "terms": "Be nice.",
              "terms_version": "2026-1"}
    values.update({k: v for k, v in overrides.items() if k != "rate"})
    program = await create_program(None, values)
    await create_rule(None, program["id"], {"kind": "per_currency_unit",
                                            "points": str(overrides.get("rate", "1"))})
    return program


async def enrolled(rapport, program: dict, name: str = "Ada Lovelace", **kwargs) -> dict:
    from plugins.loyalty.members import enrol

    customer_id = await new_customer(name)
    return await enrol(rapport, None, program["id"], customer_id, via="staff",
                       accepted_terms=True, **kwargs)


def order_event(order_id: int, customer_id: int, lines, *, name="sales.order.created",
                event_id: int | None = None, total: str | None = None, **extra):
    """A sales order event as the sales plugin publishes it (docs/plugins/sales.md)."""
    from core.plugin import Event

    payload_lines = []
    for i, (net, quantity, *rest) in enumerate(lines, start=1):
        tax = (Decimal(net) * Decimal("0.19")).quantize(Decimal("0.01"))
        payload_lines.append({"line_id": 100 * order_id + i, "position": i,
                              "product_id": rest[0] if rest else None, "sku": "",
                              "source": rest[1] if len(rest) > 1 else "",
                              "quantity": str(quantity), "net": str(net), "tax": str(tax),
                              "gross": str(Decimal(net) + tax)})
    payload = {"order_id": order_id, "number": f"SO-{1000 + order_id}",
               "customer_id": customer_id, "currency": "EUR", "lines": payload_lines}
    if total is not None:
        payload["total"] = total
    payload.update(extra)
    return Event(name, payload, None, event_id if event_id is not None else order_id * 10)


async def balance(member_id: int) -> tuple[int, int]:
    from plugins.loyalty.tables import Member

    row = await Member.select(Member.balance, Member.pending).where(
        Member.id == member_id).first().run()
    return row["balance"], row["pending"]
