"""Global search finds cases by subject through the trigram index, which follows edits."""

from __future__ import annotations


async def test_case_subjects_are_found_by_part_of_a_word_and_follow_edits(service_client):
    from core.identity.users import load_actor
    from plugins.service.search import cases
    from plugins.service.tables import Case
    from tests.plugins.service.conftest import new_customer

    customer = await new_customer("Ada Lovelace")
    rows = await Case.insert(
        Case(number="CS-000901", subject="Router keeps rebooting", customer=customer),
        Case(number="CS-000902", subject="Invoice address wrong", customer=customer),
    ).returning(Case.id).run()
    router, invoice = rows[0]["id"], rows[1]["id"]
    rapport = service_client.rapport
    admin = await load_actor(rapport, service_client.user_id)

    async def urls(query):
        return [r.url for r in await cases(rapport, admin, query, 10)]

    assert await urls("REBOOT") == [f"/service/cases/{router}"]
    assert await urls("ress wro") == [f"/service/cases/{invoice}"]  # inside words, spaces
    assert await urls("ro") == []  # too short for the index: nothing rather than a scan
    await Case.update({Case.subject: "Printer jams"}).where(Case.id == router).run()
    assert await urls("reboot") == []
    assert await urls("printer") == [f"/service/cases/{router}"]
    await Case.delete().where(Case.id == router).run()
    assert await urls("printer") == []
