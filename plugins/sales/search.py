"""Global search answers for products (the product knowledge base), leads and opportunities.

Every lookup goes through the trigram indexes of ``core.search.text`` (see the sales migration
that creates them), never ``ILIKE '%q%'`` over the table: queries need three characters or more.
"""

from __future__ import annotations

from core.permissions import scoped
from core.plugin import SearchResult
from core.search.text import contains
from plugins.sales.leads import lead_name
from plugins.sales.tables import Lead, Opportunity, Product


async def products(rapport, user, query, limit):
    """Products are catalogue data: anyone with ``sales.product.view`` sees them all."""
    if not user.can("sales.product.view"):
        return []
    where = contains(Product, ["name", "sku", "description"], query)
    if where is None:
        return []
    rows = await Product.select(Product.id, Product.name, Product.sku, Product.description).where(
        (Product.active == True) & where  # noqa: E712
    ).order_by(Product.name).limit(limit).run()
    return [SearchResult(title=f"{r['name']} ({r['sku']})", url=f"/sales/products/{r['id']}",
                         kind="sales.product", snippet=r["description"][:160]) for r in rows]


async def leads(rapport, user, query, limit):
    if not user.can("sales.lead.view"):
        return []
    where = contains(Lead, ["first_name", "last_name", "company", "email"], query)
    if where is None:
        return []
    select = Lead.select(Lead.id, Lead.first_name, Lead.last_name, Lead.company, Lead.email,
                         Lead.status).where(where)
    rows = await scoped(select, rapport, user, "sales.lead.view", Lead).order_by(
        Lead.id, ascending=False).limit(limit).run()
    return [SearchResult(title=lead_name(r), url=f"/sales/leads/{r['id']}", kind="sales.lead",
                         snippet=f"{r['company']} · {r['status']}") for r in rows]


async def opportunities(rapport, user, query, limit):
    if not user.can("sales.opportunity.view"):
        return []
    where = contains(Opportunity, ["name"], query)
    if where is None:
        return []
    select = Opportunity.select(Opportunity.id, Opportunity.name, Opportunity.status).where(where)
    rows = await scoped(select, rapport, user, "sales.opportunity.view", Opportunity).order_by(
        Opportunity.id, ascending=False).limit(limit).run()
    return [SearchResult(title=r["name"], url=f"/sales/opportunities/{r['id']}",
                         kind="sales.opportunity", snippet=r["status"]) for r in rows]
