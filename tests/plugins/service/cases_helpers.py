"""Helpers for the case tests: actors, small files of real types, a case opened in one call."""

from __future__ import annotations

import io
import zipfile

from tests.conftest import make_user

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
       b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N"
       b"\x00\x00\x00\x00IEND\xaeB`\x82")
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 120


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hello")
    return buffer.getvalue()


async def staff_actor(rapport, email: str, roles=("administrator",), teams=()):
    from core.identity.users import load_actor

    user_id = await make_user(email, roles=roles, teams=teams)
    return await load_actor(rapport, user_id)


def portal_actor(customer_id: int):
    from core.permissions import Actor

    return Actor(kind="portal", id=None, name="Customer", customer_id=customer_id,
                 grants={"service.portal.view": "customer"})
