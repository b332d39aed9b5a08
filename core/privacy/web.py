"""Staff pages for one customer's privacy: download the export, record consent, erase.

Every route finds the customer through :func:`core.permissions.scoped`, so a customer outside
the user's scope answers 404 like any other record.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath
from litestar.response import Redirect, Response, Template

from core import audit
from core.audit import client_ip
from core.customers.tables import CHANNELS, Customer
from core.permissions import current_actor, scoped
from core.privacy.service import (
    PrivacyError,
    consent_log,
    current_consents,
    erase_customer,
    export_customer,
    record_consent,
)

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
CONSENT_PURPOSES = ("marketing", "newsletter", "profiling", "third_party_sharing")



async def _customer_in_scope(request: Request, customer_id: int, permission: str
                             ) -> dict[str, Any]:
    rapport = request.app.state.rapport
    query = Customer.select(Customer.id, Customer.name, Customer.kind, Customer.erased_at).where(
        Customer.id == customer_id)
    row = await scoped(query, rapport, current_actor(request), permission, Customer).first().run()
    if row is None:
        raise NotFoundException("no such customer")
    return row


async def _page(request: Request, customer: dict[str, Any], *, errors: dict[str, str] | None = None,
                form: dict[str, str] | None = None, flash: str = "", status_code: int = 200
                ) -> Template:
    actor = current_actor(request)
    consents = await current_consents(customer["id"])
    return Template("privacy/customer.html", status_code=status_code, context={
        "customer": customer,
        "log": await consent_log(customer["id"]),
        "current": sorted(consents.items()),
        "purposes": CONSENT_PURPOSES,
        "channels": CHANNELS,
        "can_erase": actor.can("core.privacy.erase"),
        "errors": errors or {},
        "form": form or {},
        "flash": flash,
    })


@get("/customers/{customer_id:int}/privacy", name="privacy-customer",
     opt={"permission": "core.privacy.export"})
async def privacy_page(request: Request, customer_id: FromPath[int]) -> Template:
    customer = await _customer_in_scope(request, customer_id, "core.privacy.export")
    flash = {"consent": "Consent recorded.", "erased": "Personal data erased."}.get(
        request.query_params.get("done", ""), "")
    return await _page(request, customer, flash=flash)


@get("/customers/{customer_id:int}/privacy/export.json", name="privacy-export",
     opt={"permission": "core.privacy.export"})
async def privacy_export_download(request: Request, customer_id: FromPath[int]) -> Response:
    await _customer_in_scope(request, customer_id, "core.privacy.export")
    data = await export_customer(request.app.state.rapport, customer_id)
    await audit.record(current_actor(request), "privacy_export", Customer._meta.tablename,
                       customer_id, summary="privacy export downloaded by staff",
                       ip=client_ip(request))
    return export_response(data, customer_id)


def export_response(data: Any, customer_id: int) -> Response:
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    return Response(
        json.dumps(data, indent=2, ensure_ascii=False),
        media_type="application/json",
        headers={"content-disposition":
                 f'attachment; filename="rapport-data-{customer_id}-{stamp}.json"',
                 "cache-control": "no-store"},
    )


@post("/customers/{customer_id:int}/privacy/consent", name="privacy-consent",
      opt={"permission": "core.customer.edit"}, status_code=303)
async def privacy_consent(request: Request, customer_id: FromPath[int], data: FormData
                          ) -> Response:
    customer = await _customer_in_scope(request, customer_id, "core.customer.edit")
    try:
        await record_consent(current_actor(request), customer_id, data.get("purpose", ""),
                             data.get("granted") == "yes", data.get("source", ""),
                             data.get("channel", ""), rapport=request.app.state.rapport,
                             ip=client_ip(request))
    except PrivacyError as exc:
        return await _page(request, customer, errors={exc.field: exc.message}, form=data,
                           status_code=400)
    return Redirect(f"/customers/{customer_id}/privacy?done=consent", status_code=303)


@post("/customers/{customer_id:int}/privacy/erase", name="privacy-erase",
      opt={"permission": "core.privacy.erase"}, status_code=303)
async def privacy_erase(request: Request, customer_id: FromPath[int], data: FormData
                        ) -> Response:
    customer = await _customer_in_scope(request, customer_id, "core.privacy.erase")
    # Erasure cannot be undone: the user types ERASE to confirm.
    if data.get("confirm", "").strip() != "ERASE":
        return await _page(request, customer, status_code=400,
                           errors={"confirm": "Type ERASE to confirm. This cannot be undone."})
    await erase_customer(request.app.state.rapport, current_actor(request), customer_id,
                         ip=client_ip(request))
    return Redirect(f"/customers/{customer_id}/privacy?done=erased", status_code=303)


ROUTES = [privacy_page, privacy_export_download, privacy_consent, privacy_erase]
