"""The body bound of the routes that take files follows ``attachment_max_bytes``, app by app:
raised, files up to the new size get through the staff forms, the API and the portal (even
several together, beyond the bound the default implies); with the default, an 11 MB file is
refused by the attachment check naming the field; lowered, the attachment check refuses a
file over it, and a body over the lower bound gets a readable error, never a bare 413."""

from __future__ import annotations

import base64
from contextlib import asynccontextmanager

from litestar.types import Empty

from plugins.service import cases, cases_web
from plugins.service.tables import CaseAttachment
from plugins.service.uploads import UPLOAD_FILES, body_limit
from tests.conftest import app_client, make_user, sign_in
from tests.core.portal.conftest import make_person, portal_sign_in
from tests.plugins.service.conftest import new_customer

MB = 1024 * 1024
UPLOAD_ROUTES = {"POST /service/cases", "POST /service/cases/{case_id:int}/messages",
                 "POST /api/v1/service/cases", "POST /api/v1/service/cases/{case_id:int}/messages",
                 "POST /portal/service/requests",
                 "POST /portal/service/requests/{case_id:int}/reply"}


def pdf(size: int) -> bytes:
    return b"%PDF-1.4\n" + b"0" * (size - 9)


def upload_bounds(app) -> dict[str, int | None]:
    """The body bound Litestar applies to each route that takes files."""
    bounds = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if handler.opt.get("uploads"):
                for method in handler.http_methods:
                    bounds[f"{method} {route.path}"] = handler.resolve_request_max_body_size()
    return bounds


@asynccontextmanager
async def signed_in(rapport):
    """A staff client (administrator) and a portal client (Ada) of the same app."""
    async with app_client(rapport) as staff, app_client(rapport) as portal:
        await make_user("boss@example.test")
        await sign_in(staff, "boss@example.test")
        staff.headers["x-csrftoken"] = staff.cookies["csrftoken"]
        portal.ada = await make_person(rapport, "Ada", "Lovelace", "ada@example.test")
        await portal_sign_in(portal, "ada@example.test")
        portal.headers["x-csrftoken"] = portal.cookies["csrftoken"]
        yield staff, portal


async def post_files(client, path: str, values: dict, *files: bytes):
    return await client.post(
        path, data={**values, "_csrf_token": client.cookies["csrftoken"]},
        files=[("attachments", (f"scan{i}.pdf", data, "application/pdf"))
               for i, data in enumerate(files)], follow_redirects=False)


def as_json(*files: bytes) -> list[dict[str, str]]:
    return [{"filename": f"scan{i}.pdf", "content_base64": base64.b64encode(data).decode()}
            for i, data in enumerate(files)]


NEW_CASE = {"subject": "Big scan", "case_type": "service_request", "priority": "normal",
            "channel": "phone"}
NEW_REQUEST = {"subject": "Big scan", "description": "Attached", "case_type": "service_request"}


async def test_each_app_bounds_its_upload_routes_by_its_own_setting(make_rapport):
    default = await make_rapport(["service"], {}, debug=True)
    raised = await make_rapport(["service"], {"service": {"attachment_max_bytes": 60 * MB}},
                                debug=True)
    assert upload_bounds(default.asgi) == {
        route: (51 * MB if "/api/" not in route else body_limit(
            default.plugin_settings("service"), "json")) for route in UPLOAD_ROUTES}
    assert upload_bounds(raised.asgi) == {
        route: UPLOAD_FILES * (60 * MB if "/api/" not in route else 80 * MB) + MB
        for route in UPLOAD_ROUTES}
    # The module's handlers are left as they were: each app has its own copies.
    assert upload_bounds(default.asgi)["POST /service/cases"] == 51 * MB
    assert cases_web.case_create.request_max_body_size is Empty


async def test_a_raised_limit_lets_files_up_to_it_through_forms_api_and_portal(make_rapport):
    rapport = await make_rapport(["service"], {"service": {"attachment_max_bytes": 12 * MB}},
                                 debug=True)
    eleven = pdf(11 * MB)
    async with signed_in(rapport) as (staff, portal):
        customer = await new_customer()
        created = await staff.post("/api/v1/service/cases", json={
            "customer_id": customer, "subject": "Scan", "attachments": as_json(eleven)})
        assert created.status_code == 201, created.text[:300]
        case_id = created.json()["id"]
        # Five files of 11 MB: 73 MB of JSON, over the 68 MB the default setting implies.
        replied = await staff.post(f"/api/v1/service/cases/{case_id}/messages", json={
            "kind": "note", "body": "All pages", "attachments": as_json(*[eleven] * 5)})
        assert replied.status_code == 201, replied.text[:300]
        assert len(replied.json()["attachments"]) == 5

        form = await post_files(staff, "/service/cases", {**NEW_CASE, "customer": customer},
                                eleven)
        assert form.status_code == 303, form.text[:300]
        # 55 MB in one form, over the 51 MB the default setting implies.
        form_reply = await post_files(staff, f"/service/cases/{case_id}/messages",
                                      {"kind": "note", "body": "Scans"}, *[eleven] * 5)
        assert form_reply.status_code == 303, form_reply.text[:300]

        request = await post_files(portal, "/portal/service/requests", NEW_REQUEST, eleven)
        assert request.status_code == 303, request.text[:300]
        own = int(request.headers["location"].split("/")[-1].split("?")[0])
        reply = await post_files(portal, f"/portal/service/requests/{own}/reply",
                                 {"body": "More pages"}, eleven, eleven)
        assert reply.status_code == 303, reply.text[:300]

        sizes = await CaseAttachment.select(CaseAttachment.size).run()
        assert len(sizes) == 1 + 5 + 1 + 5 + 1 + 2
        assert {row["size"] for row in sizes} == {11 * MB}


async def test_with_the_default_an_11_mb_file_is_refused_naming_the_attachments(
        make_rapport):
    rapport = await make_rapport(["service"], {}, debug=True)
    eleven = pdf(11 * MB)
    async with signed_in(rapport) as (staff, portal):
        customer = await new_customer()
        api = await staff.post("/api/v1/service/cases", json={
            "customer_id": customer, "subject": "Scan", "attachments": as_json(eleven)})
        assert api.status_code == 422 and api.json()["field"] == "attachments"
        assert "scan0.pdf is larger than 10 MB" in api.json()["detail"]

        form = await post_files(staff, "/service/cases", {**NEW_CASE, "customer": customer},
                                eleven)
        assert form.status_code == 400
        assert 'id="attachments-error"' in form.text and "larger than 10 MB" in form.text

        request = await post_files(portal, "/portal/service/requests", NEW_REQUEST, eleven)
        assert request.status_code == 400
        assert 'id="err-attachments"' in request.text and "larger than 10 MB" in request.text
        assert await CaseAttachment.count() == 0


async def test_a_lowered_limit_refuses_by_its_own_check_and_a_lower_body_bound(make_rapport):
    rapport = await make_rapport(["service"], {"service": {"attachment_max_bytes": 1 * MB}},
                                 debug=True)
    three, seven = pdf(3 * MB), pdf(7 * MB)
    async with signed_in(rapport) as (staff, portal):
        customer = await new_customer()
        case = await cases.open_case(rapport, None, customer_id=customer, subject="Small")

        # A file over the setting, in a body within the bound: the attachment check says so.
        api = await staff.post(f"/api/v1/service/cases/{case['id']}/messages", json={
            "kind": "reply", "body": "Scan", "attachments": as_json(three)})
        assert api.status_code == 422 and api.json()["field"] == "attachments"
        assert "larger than 1 MB" in api.json()["detail"]
        form = await post_files(staff, f"/service/cases/{case['id']}/messages",
                                {"kind": "reply", "body": "Scan"}, three)
        assert form.status_code == 400 and "larger than 1 MB" in form.text
        request = await post_files(portal, "/portal/service/requests", NEW_REQUEST, three)
        assert request.status_code == 400 and "larger than 1 MB" in request.text

        # A body over the bound (6 MB for forms, 7.7 MB for JSON): refused unread, explained.
        api = await staff.post(f"/api/v1/service/cases/{case['id']}/messages", json={
            "kind": "reply", "body": "Scan", "attachments": as_json(seven)})
        assert api.status_code == 413
        assert api.headers["content-type"].startswith("application/problem+json")
        assert api.json()["field"] == "attachments"
        assert "larger than 7.7 MB" in api.json()["detail"]
        assert "each at most 1 MB" in api.json()["detail"]

        created = await post_files(staff, "/service/cases", {**NEW_CASE, "customer": customer},
                                   seven)
        assert created.status_code == 413
        assert 'id="attachments-error"' in created.text
        assert "too large together: at most 6 MB per form" in created.text
        replied = await post_files(staff, f"/service/cases/{case['id']}/messages",
                                   {"kind": "reply", "body": "Scan"}, seven)
        assert replied.status_code == 303
        page = await staff.get(replied.headers["location"].split("#")[0])
        assert 'id="attachments-error"' in page.text and "at most 6 MB per form" in page.text

        request = await post_files(portal, "/portal/service/requests", NEW_REQUEST, seven)
        assert request.status_code == 303
        assert request.headers["location"].startswith("/portal/service/requests/new?upload=")
        page = await portal.get(request.headers["location"].split("#")[0])
        assert page.status_code == 200
        assert 'id="err-attachments"' in page.text and "at most 6 MB per form" in page.text
        own = await cases.open_case(rapport, None, customer_id=portal.ada.customer_id,
                                    subject="Mine")
        reply = await post_files(portal, f"/portal/service/requests/{own['id']}/reply",
                                 {"body": "Scan"}, seven)
        assert reply.status_code == 303
        page = await portal.get(reply.headers["location"].split("#")[0])
        assert 'id="err-attachments"' in page.text and "at most 6 MB per form" in page.text
        assert await CaseAttachment.count() == 0
