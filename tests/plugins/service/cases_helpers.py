"""Helpers for the case tests: actors, small files of real types, a case opened in one call,
a long conversation written in bulk."""

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


async def long_case(customer: int, count: int, *, agent: int | None = None,
                    number: str = "CS-L0001") -> tuple[int, list[dict]]:
    """A case with ``count`` messages, oldest first: the customer writes, an agent replies,
    and every fifth message is an internal note. Bodies are MSG-0000, MSG-0001, ...; notes
    also say SECRET."""
    from plugins.service.tables import Case, CaseMessage

    rows = await Case.insert(Case(number=number, subject="Washer leaks", customer=customer,
                                  status="open")).returning(Case.id).run()
    case_id = rows[0]["id"]

    def message(i: int) -> CaseMessage:
        if i % 5 == 4:
            return CaseMessage(case=case_id, kind="note", body=f"MSG-{i:04d} SECRET",
                               author_user=agent)
        if i % 2:
            return CaseMessage(case=case_id, kind="reply", body=f"MSG-{i:04d}",
                               author_user=agent, delivery="sent")
        return CaseMessage(case=case_id, kind="inbound", body=f"MSG-{i:04d}",
                           author_customer=customer, channel="email")

    for start in range(0, count, 100):
        await CaseMessage.insert(*[message(i) for i in range(start, min(count, start + 100))]
                                 ).run()
    messages = await CaseMessage.select(CaseMessage.id, CaseMessage.kind, CaseMessage.body
                                        ).where(CaseMessage.case == case_id).order_by(
        CaseMessage.id).run()
    return case_id, messages


async def queries_for(monkeypatch, client, path: str, headers=None) -> int:
    """How many SQL queries a second GET of ``path`` runs (the first one warms caches)."""
    from plugins.service.tables import Case

    engine_class = type(Case._meta.db)
    counted = []
    run = engine_class.run_querystring

    async def counting(engine, querystring, *args, **kwargs):
        counted.append(str(querystring))
        return await run(engine, querystring, *args, **kwargs)

    await client.get(path, headers=headers or {})  # caches of the first request warmed
    with monkeypatch.context() as patch:
        patch.setattr(engine_class, "run_querystring", counting)
        response = await client.get(path, headers=headers or {})
    assert response.status_code == 200
    return len(counted)
