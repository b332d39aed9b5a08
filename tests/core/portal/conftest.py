"""Portal fixtures: two contacts with portal access, and a client signed in as the first."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from core import records
from core.customers.tables import Customer, CustomerAddress, CustomerEmail, CustomerPhone
from core.permissions import Actor
from core.portal.identities import accept_invitation, invite
from tests.conftest import csrf_headers

PORTAL_PASSWORD = "tea at four o'clock"
STAFF = Actor(kind="staff", id=None, name="setup")


@dataclass
class Person:
    customer_id: int
    identity_id: int
    email: str
    email_id: int
    phone_id: int
    address_id: int


async def make_person(rapport, first: str, last: str, email: str, account_id=None) -> Person:
    row = await records.create(STAFF, Customer, {
        "kind": "contact", "name": f"{first} {last}", "first_name": first, "last_name": last,
        "primary_email": email, "account": account_id,
    })
    cid = row["id"]
    e = await records.create(STAFF, CustomerEmail, {"customer": cid, "email": email})
    p = await records.create(STAFF, CustomerPhone, {"customer": cid, "phone": f"+4420{cid:07d}"})
    a = await records.create(STAFF, CustomerAddress, {"customer": cid, "street": f"{cid} {last} Street",
                                                      "city": f"{last}ton"})
    identity_id, token = await invite(rapport, STAFF, cid, email)
    await accept_invitation(token, PORTAL_PASSWORD, PORTAL_PASSWORD)
    return Person(cid, identity_id, email, e["id"], p["id"], a["id"])


async def portal_sign_in(client, email: str, password: str = PORTAL_PASSWORD):
    response = await client.post("/portal/login", data={"email": email, "password": password},
                                 headers=await csrf_headers(client), follow_redirects=False)
    assert response.status_code == 303, response.text
    return response


@pytest.fixture
async def portal(client):
    """``client`` signed in to the portal as Ada; ``client.ada`` and ``client.bob`` are the
    two customers (Bob is the one Ada must never see)."""
    client.ada = await make_person(client.rapport, "Ada", "Lovelace", "ada@example.test")
    client.bob = await make_person(client.rapport, "Bob", "Babbage", "bob@example.test")
    await portal_sign_in(client, "ada@example.test")
    return client
