"""The customer 360° view's hook implementations (core module, always enabled)."""

from __future__ import annotations

from core.plugin import hookimpl


@hookimpl
def register_routes():
    from core.customer360.web import ROUTES

    return ROUTES
