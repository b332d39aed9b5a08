"""Global search's hook implementations (core module, always enabled)."""

from __future__ import annotations

from core.plugin import SearchProvider, hookimpl
from core.search.piccolo_app import APP_CONFIG


@hookimpl
def register_piccolo_apps():
    return [APP_CONFIG]


@hookimpl
def register_routes():
    from core.search.web import search_api, search_page, search_suggestions

    return [search_page, search_suggestions, search_api]


@hookimpl
def register_search_providers():
    from core.search.customers import search_customers
    from core.search.interactions import search_interactions

    # Core's own customers are a provider like any plugin's, first in the list.
    return [SearchProvider(kind="customer", label="Customers", search=search_customers,
                           permission="core.customer.view", order=0),
            SearchProvider(kind="interaction", label="Interactions",
                           search=search_interactions, permission="core.interaction.view",
                           order=200)]
