"""Cross-sell and up-sell suggestions, each with the reason a representative can repeat.

Cross-sell: association rules mined from recent orders. For a product A the customer bought
and a product B they have not, *support* is the share of orders holding both, *confidence*
the share of orders with A that also hold B, and *lift* how much likelier B is with A than
on its own (above 1 means the two really go together).
Up-sell: a product the catalogue marks as an alternative to one they bought, at a higher price.
Bundles: precomputed sets of 2-3 products bought together (see ``bundles``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal

from plugins.sales.tables import OrderLine, Product, ProductPrice, RelatedProduct, SalesOrder

RECENT_LINES = 50_000  # the mining sample: the most recent order lines, bounded
MIN_SUPPORT_ORDERS = 2
MIN_CONFIDENCE = Decimal("0.2")
MIN_LIFT = Decimal("1")


@dataclass(frozen=True)
class Suggestion:
    product_id: int
    product_name: str
    kind: str  # "cross-sell" or "up-sell"
    reason: str
    support: Decimal | None = None
    confidence: Decimal | None = None
    lift: Decimal | None = None


async def _baskets() -> dict[int, set[int]]:
    lines = await OrderLine.select(OrderLine.sales_order, OrderLine.product).where(
        OrderLine.product.is_not_null()).order_by(OrderLine.id, ascending=False).limit(
        RECENT_LINES).run()
    baskets: dict[int, set[int]] = defaultdict(set)
    for line in lines:
        baskets[line["sales_order"]].add(line["product"])
    return baskets


async def bought_by(customer_id: int) -> set[int]:
    orders = [o["id"] for o in await SalesOrder.select(SalesOrder.id).where(
        SalesOrder.customer == customer_id).limit(1000).run()]
    if not orders:
        return set()
    lines = await OrderLine.select(OrderLine.product).where(
        OrderLine.sales_order.is_in(orders) & OrderLine.product.is_not_null()).run()
    return {line["product"] for line in lines}


async def suggest(owned: set[int], limit: int = 5) -> list[Suggestion]:
    """Suggestions for someone who owns (or is being quoted) ``owned`` products."""
    if not owned:
        return []
    baskets = await _baskets()
    total = len(baskets)
    single: Counter[int] = Counter()
    pair: Counter[tuple[int, int]] = Counter()
    for basket in baskets.values():
        single.update(basket)
        for a in basket & owned:
            for b in basket - owned:
                pair[(a, b)] += 1
    best: dict[int, tuple[Decimal, Decimal, Decimal, int]] = {}
    for (a, b), both in pair.items():
        if both < MIN_SUPPORT_ORDERS:
            continue
        support = Decimal(both) / total
        confidence = Decimal(both) / single[a]
        lift = confidence / (Decimal(single[b]) / total)
        if confidence < MIN_CONFIDENCE or lift <= MIN_LIFT:
            continue
        if b not in best or (confidence, lift) > best[b][1:3]:
            best[b] = (support, confidence, lift, a)
    names = await _names(set(best) | {v[3] for v in best.values()})
    result = [
        Suggestion(b, names.get(b, f"#{b}"), "cross-sell",
                   f"{round(confidence * 100)}% of orders with {names.get(a, a)} also had it "
                   f"(lift {lift:.1f}, in {round(support * 100)}% of orders)",
                   support.quantize(Decimal("0.001")), confidence.quantize(Decimal("0.001")),
                   lift.quantize(Decimal("0.01")))
        for b, (support, confidence, lift, a) in sorted(
            best.items(), key=lambda kv: (kv[1][1], kv[1][2]), reverse=True)
    ]
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
