"""Cross-sell and up-sell suggestions, each with the reason a representative can repeat.

Cross-sell: association rules mined from recent orders (by ``bundles.refresh``). For a product A the customer bought
and a product B they have not, *support* is the share of orders holding both, *confidence*
the share of orders with A that also hold B, and *lift* how much likelier B is with A than
on its own (above 1 means the two really go together).
Up-sell: a product the catalogue marks as an alternative to one they bought, at a higher price.
Bundles: precomputed sets of 2-3 products bought together (see ``bundles``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from plugins.sales.tables import (
    AssociationRule,
    OrderLine,
    Product,
    ProductPrice,
    RelatedProduct,
    SalesOrder,
)


@dataclass(frozen=True)
class Suggestion:
    product_id: int
    product_name: str
    kind: str  # "cross-sell" or "up-sell"
    reason: str
    support: Decimal | None = None
    confidence: Decimal | None = None
    lift: Decimal | None = None


async def bought_by(customer_id: int) -> set[int]:
    orders = [o["id"] for o in await SalesOrder.select(SalesOrder.id).where(
        SalesOrder.customer == customer_id).limit(1000).run()]
    if not orders:
        return set()
    lines = await OrderLine.select(OrderLine.product).where(
        OrderLine.sales_order.is_in(orders) & OrderLine.product.is_not_null()).run()
    return {line["product"] for line in lines}


async def suggest(owned: set[int], limit: int = 5) -> list:
    """Suggestions for someone who owns (or is being quoted) ``owned`` products.

    Cross-sell rules and bundles are read from what the last mining run stored (see
    ``bundles``): a few indexed rows, however many orders there are.
    """
    if not owned:
        return []
    rules = await AssociationRule.select().where(
        AssociationRule.antecedent.is_in(sorted(owned)[:500])).order_by(
        AssociationRule.confidence, ascending=False).order_by(
        AssociationRule.lift, ascending=False).limit(200).run()
    best: dict[int, dict] = {}
    for rule in rules:
        if rule["consequent"] not in owned and rule["consequent"] not in best:
            best[rule["consequent"]] = rule
    names = await _names(set(best) | {r["antecedent"] for r in best.values()})
    result = []
    for b, rule in best.items():
        support, confidence, lift = (Decimal(str(rule[k])) for k in ("support", "confidence",
                                                                      "lift"))
        a = rule["antecedent"]
        result.append(Suggestion(
            b, names.get(b, f"#{b}"), "cross-sell",
            f"{round(confidence * 100)}% of orders with {names.get(a, a)} also had it "
            f"(lift {lift:.1f}, in {round(support * 100)}% of orders)",
            support.quantize(Decimal("0.001")), confidence.quantize(Decimal("0.001")),
            lift.quantize(Decimal("0.01"))))
    found = (result + await _upsell(owned, {s.product_id for s in result}))[:limit]
    return found + await _bundles(owned, {s.product_id for s in found})


async def _bundles(owned: set[int], already: set[int]) -> list:
    """Up to three precomputed bundles, each naming the products the customer lacks (a
    one-product bundle already suggested as a cross-sell is not repeated)."""
    from plugins.sales.bundles import bundles_for

    return await bundles_for(owned, limit=3, already=already)


async def _names(ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await Product.select(Product.id, Product.name).where(Product.id.is_in(sorted(ids))).run()
    return {r["id"]: r["name"] for r in rows}


async def _upsell(owned: set[int], already: set[int]) -> list[Suggestion]:
    alternatives = await RelatedProduct.select(RelatedProduct.product, RelatedProduct.related).where(
        RelatedProduct.product.is_in(sorted(owned)) & (RelatedProduct.kind == "alternative")).run()
    candidates = {(a["product"], a["related"]) for a in alternatives
                  if a["related"] not in owned and a["related"] not in already}
    if not candidates:
        return []
    ids = {p for pair in candidates for p in pair}
    prices: dict[int, Decimal] = {}
    for row in await ProductPrice.select(ProductPrice.product, ProductPrice.unit_price).where(
            ProductPrice.product.is_in(sorted(ids)) & (ProductPrice.price_book.is_default == True)  # noqa: E712
    ).run():
        prices.setdefault(row["product"], Decimal(str(row["unit_price"])))
    names = await _names(ids)
    return [
        Suggestion(b, names.get(b, f"#{b}"), "up-sell",
                   f"A higher-value alternative to {names.get(a, a)}")
        for a, b in sorted(candidates)
        if prices.get(b, Decimal(0)) > prices.get(a, Decimal(0))
    ]
