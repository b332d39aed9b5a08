"""Global search answers for products (the product knowledge base), leads and opportunities."""

from __future__ import annotations

from core.permissions import scoped
from core.plugin import SearchResult
from plugins.sales.leads import lead_name
from plugins.sales.tables import Lead, Opportunity, Product


def _pattern(query: str) -> str:
    escaped = query.strip().replace("%", "").replace("_", " ")
    return f"%{escaped}%"


async def products(rapport, user, query, limit):
    """Products are catalogue data: anyone with ``sales.product.view`` sees them all."""
    if not user.can("sales.product.view") or not query.strip():
        return []
    pattern = _pattern(query)
    rows = await Product.select(Product.id, Product.name, Product.sku, Product.description).where(
        (Product.active == True)  # noqa: E712
        & (Product.name.ilike(pattern) | Product.sku.ilike(pattern)
           | Product.description.ilike(pattern))
    ).order_by(Product.name).limit(limit).run()
    return [SearchResult(title=f"{r['name']} ({r['sku']})", url=f"/sales/products/{r['id']}",
                         kind="sales.product", snippet=r["description"][:160]) for r in rows]


async def leads(rapport, user, query, limit):
    if not user.can("sales.lead.view") or not query.strip():
        return []
    pattern = _pattern(query)
    select = Lead.select(Lead.id, Lead.first_name, Lead.last_name, Lead.company, Lead.email,
                         Lead.status).where(
        Lead.last_name.ilike(pattern) | Lead.first_name.ilike(pattern)
        | Lead.company.ilike(pattern) | Lead.email.ilike(pattern))
    rows = await scoped(select, rapport, user, "sales.lead.view", Lead).order_by(
        Lead.id, ascending=False).limit(limit).run()
    return [SearchResult(title=lead_name(r), url=f"/sales/leads/{r['id']}", kind="sales.lead",
                         snippet=f"{r['company']} · {r['status']}") for r in rows]


async def opportunities(rapport, user, query, limit):
    if not user.can("sales.opportunity.view") or not query.strip():
        return []
    select = Opportunity.select(Opportunity.id, Opportunity.name, Opportunity.status).where(
        Opportunity.name.ilike(_pattern(query)))
    rows = await scoped(select, rapport, user, "sales.opportunity.view", Opportunity).order_by(
        Opportunity.id, ascending=False).limit(limit).run()
    return [SearchResult(title=r["name"], url=f"/sales/opportunities/{r['id']}",
                         kind="sales.opportunity", snippet=r["status"]) for r in rows]
