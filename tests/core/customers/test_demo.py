"""Demo customers: realistic, owned by the demo staff, idempotent, scaling in batches."""

from __future__ import annotations

import phonenumbers

from core.customers.demo import seed_customers
from core.customers.tables import Customer, CustomerEmail, CustomerPhone
from core.identity.demo import seed_demo_users
from core.identity.tables import User


async def test_demo_customers_are_created_once_and_topped_up(rapport):
    await seed_demo_users(rapport)
    assert await seed_customers(300) == 300
    assert await seed_customers(300) == 0  # idempotent
    assert await Customer.count().run() == 300
    assert await seed_customers(450) == 150  # only the difference
    assert await Customer.count().run() == 450
    assert await CustomerEmail.count().run() == 450


async def test_demo_customers_look_real(rapport):
    await seed_demo_users(rapport)
    await seed_customers(200)
    contacts = await Customer.select().where(Customer.kind == "contact").run()
    accounts = await Customer.select().where(Customer.kind == "account").run()
    assert contacts and accounts
    assert any(c["account"] for c in contacts)
    rep_ids = {u["id"] for u in await User.select(User.id).where(
        User.email.is_in(["north@example.com", "south@example.com"])).run()}
    assert rep_ids & {c["owner"] for c in contacts + accounts}
    phone = (await CustomerPhone.select().first().run())["phone"]
    assert phonenumbers.is_valid_number(phonenumbers.parse(phone))
    assert {c["lifecycle_stage"] for c in contacts} <= {"lead", "prospect", "customer", "churned"}
    # New rows after the demo ones get fresh ids (the PostgreSQL sequence was moved on).
    from core.customers import service

    row = await service.create_customer(rapport, None, {"kind": "account", "name": "After"})
    assert row["id"] > max(c["id"] for c in contacts + accounts)
