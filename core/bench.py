"""Benchmark-only routes, registered only when ``RAPPORT_BENCH=1`` (see ``core.app``).

``/bench/json`` is a bare Litestar JSON endpoint served by the same app, middleware and
server as every other page: the ceiling ``make bench`` prints next to each scenario.
"""

from __future__ import annotations

from litestar import get

from core.plugin import hookimpl


@get("/bench/json", name="bench-json", opt={"public": True}, include_in_schema=False)
async def bare_json() -> dict[str, str]:
    return {"status": "ok"}


@get("/bench/customers", name="bench-customers", opt={"public": True}, include_in_schema=False)
async def first_customers() -> list[dict]:
    """A 50-row indexed select through Piccolo behind a bare handler: what the per-query
    connection overhead of Piccolo's stock SQLite engine was measured on."""
    from core.customers.tables import Customer

    return await Customer.select(Customer.id, Customer.name, Customer.updated_at).order_by(
        Customer.updated_at, ascending=False).limit(50).run()


@hookimpl
def register_routes():
    return [bare_json, first_customers]
