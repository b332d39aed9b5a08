"""Portal: a customer asks for a quote for lines another plugin supplies (a configuration
they built, a service they picked). The plugin's own portal page posts a form here::

    <form method="post" action="/portal/sales/quote-requests">
      <input type="hidden" name="_csrf_token" value="...">
      <input type="hidden" name="source" value="configurator">   (a sales line source id)
      <input type="hidden" name="source_ref" value="cfg-7">       (what the source resolves)
      <input name="quantity" value="1">  <textarea name="note"></textarea>
      <input type="hidden" name="back" value="/portal/configurator/7">
      <button>Ask for a quote</button>
    </form>

It reaches staff as an opportunity with a draft quote of those lines
(``quotes.request_quote``); the customer sees a confirmation, never the draft.
"""

from __future__ import annotations

from urllib.parse import urlencode

from litestar import Request, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Response, Template

from core.audit import client_ip
from core.permissions import current_actor
from plugins.sales import quotes as quote_service
from plugins.sales.portal import PORTAL, _customer_id, _page


def _portal_path(raw: str) -> str:
    """Where to send the customer back: a portal page of this site, never elsewhere."""
    path = str(raw or "").strip()
    if path.startswith("/portal/") and "//" not in path and "\\" not in path and \
            len(path) <= 300 and path.isprintable():
        return path
    return "/portal/"


@post("/sales/quote-requests", opt=PORTAL, status_code=303)
async def request_quote(request: Request) -> Response:
    form = await request.form()
    back = _portal_path(str(form.get("back") or ""))
    line = {"source": str(form.get("source") or "").strip(),
            "source_ref": str(form.get("source_ref") or "").strip(),
            "quantity": str(form.get("quantity") or "1").strip()}
    if not line["source"] or line["source"] == "product":
        line = {"product": str(form.get("product") or "").strip(),
                "quantity": line["quantity"]}
    try:
        row = await quote_service.request_quote(
            request.app.state.rapport, current_actor(request), _customer_id(request), [line],
            note=str(form.get("note") or ""), ip=client_ip(request))
    except quote_service.QuoteError as exc:
        field = exc.field.split(".")[-1].replace("_", " ")
        return await _page(request, "sales/portal_quote_request.html", {
            "error": f"{field}: {exc.message}" if field != "lines" else exc.message,
            "back": back, "number": ""}, status_code=400)
    query = urlencode({"number": row["number"], "back": back})
    return Redirect(f"/portal/sales/quote-requests/sent?{query}", status_code=303)


@get("/sales/quote-requests/sent", opt=PORTAL, include_in_schema=False)
async def request_sent(request: Request, number: FromQuery[str] = "",
                       back: FromQuery[str] = "") -> Template:
    number = number if number.startswith("Q-") and number[2:].isdigit() else ""
    return await _page(request, "sales/portal_quote_request.html", {
        "error": None, "number": number, "back": _portal_path(back)})


ROUTES = [request_quote, request_sent]
