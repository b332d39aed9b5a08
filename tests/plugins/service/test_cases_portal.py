"""Internal notes and their files never reach the portal customer: not on the request page,
not as a download, not in the customer's unified history."""

from __future__ import annotations

from plugins.service import cases
from plugins.service.tables import CaseAttachment
from tests.conftest import app_client
from tests.core.portal.conftest import make_person, portal_sign_in
from tests.plugins.service.cases_helpers import PNG, staff_actor


async def test_notes_and_their_files_stay_on_the_staff_side(service_rapport):
    async with app_client(service_rapport) as client:
        ada = await make_person(service_rapport, "Ada", "Lovelace", "ada@example.test")
        agent = await staff_actor(service_rapport, "agent@example.test")
        case = await cases.open_case(service_rapport, agent, customer_id=ada.customer_id,
                                     subject="Dryer squeaks", description="Loud squeak")
        note = await cases.add_message(
            service_rapport, agent, case["id"], kind="note", body="INTERNAL-ONLY remark",
            attachments=[cases.NewAttachment("internal.png", "image/png", PNG)])
        await cases.add_message(service_rapport, agent, case["id"], kind="reply",
                                body="VISIBLE-REPLY: oil the drum")
        hidden = await CaseAttachment.select().where(
            CaseAttachment.message == note["id"]).first().run()

        await portal_sign_in(client, "ada@example.test")
        page = await client.get(f"/portal/service/requests/{case['id']}")
        assert page.status_code == 200
        assert "VISIBLE-REPLY" in page.text and "INTERNAL-ONLY" not in page.text
        assert "internal.png" not in page.text
        download = await client.get(
            f"/portal/service/requests/{case['id']}/files/{hidden['id']}")
        assert download.status_code == 404
        history = await client.get("/portal/history")
        assert history.status_code == 200
        # The history lists touch points by subject: the opening and the reply, no note.
        assert f"{case['number']} Reply: Dryer squeaks" in history.text
        assert history.text.count(case["number"]) == 2
        # Nor the staff routes, whatever the customer tries.
        for path in (f"/service/cases/{case['id']}",
                     f"/service/cases/{case['id']}/attachments/{hidden['id']}",
                     f"/api/v1/service/cases/{case['id']}"):
            assert (await client.get(path)).status_code in (401, 403), path
