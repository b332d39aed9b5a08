"""Helpers for interaction tests: customers and actors in a few lines."""

from __future__ import annotations

from core.customers.tables import Customer


async def add_customer(name: str = "Ada Lovelace", **values) -> int:
    values.setdefault("kind", "contact")
    rows = await Customer.insert(Customer(name=name, **values)).returning(Customer.id).run()
    return rows[0]["id"]


async def actor_for(rapport, email: str, roles=("administrator",), teams=()):
    from core.identity.users import load_actor
    from tests.conftest import make_user

    user_id = await make_user(email, roles=roles, teams=teams)
    return await load_actor(rapport, user_id)
