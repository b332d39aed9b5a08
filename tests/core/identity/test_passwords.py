"""Passwords are stored as Argon2id hashes at RFC 9106's recommended strength, never as text."""

from __future__ import annotations

from core.identity.tables import User
from tests import conftest
from tests.conftest import DEMO_PASSWORD, make_user


def test_rapport_hashes_with_argon2id_at_rfc_9106_strength():
    hasher = conftest.PRODUCTION_HASHER  # what core.identity.passwords uses outside tests
    assert hasher.type.name == "ID"
    assert (hasher.time_cost, hasher.memory_cost, hasher.parallelism) == (3, 65536, 4)
    stored = hasher.hash("correct horse battery")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert hasher.verify(stored, "correct horse battery")


async def test_a_users_password_is_stored_only_as_an_argon2id_hash(rapport):
    user_id = await make_user("hash@example.test")
    stored = (await User.select(User.password_hash).where(User.id == user_id).first().run())
    assert stored["password_hash"].startswith("$argon2id$")
    assert DEMO_PASSWORD not in stored["password_hash"]
