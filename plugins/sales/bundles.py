"""Bundles bought together: frequent sets of 2 or 3 products mined from order history.

Mining reads the lines of the latest ``bundle_orders`` orders only (100,000 by default), so it
takes the same time at 1,000,000 orders as at 100,000; the result is stored in
``sales_bundle`` and pages read a few indexed rows from there. It runs from
``rapport sales bundles`` (cron it nightly on a big install) and after a new order when the
last run is older than ``bundle_refresh_minutes`` (as the ``sales.bundles.refresh`` job, never in the request).

For a bundle S: *support* is the share of orders holding all of S; *confidence* is the best
rule "the rest of S -> one product of S" (share of orders with the rest that also hold it);
*lift* is that confidence divided by the share of orders holding that one product (above 1:
the products really go together, more than their popularity explains).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import combinations
from typing import Any

from plugins.sales.tables import AssociationRule, Bundle, BundleRun, OrderLine, Product, SalesOrder

MAX_TRIPLE_BASKET = 12  # baskets larger than this add pairs but not triples (C(n,3) grows fast)
MAX_BUNDLES = 5000  # kept after a run, best first: bounded storage and reads
MAX_RULES = 20_000
# Cross-sell rules "A -> B" (shown per product the customer owns) need less evidence than a
# bundle: two orders, a confidence of 20 % and any lift above 1.
RULE_MIN_ORDERS = 2
RULE_MIN_CONFIDENCE = Decimal("0.2")
RULE_MIN_LIFT = Decimal("1")


@dataclass(frozen=True)
class Thresholds:
    orders: int = 100_000  # the latest orders mined
    min_orders: int = 3  # a bundle must appear in at least this many orders
    min_confidence: Decimal = Decimal("0.2")
    min_lift: Decimal = Decimal("1.2")


def thresholds_of(rapport) -> Thresholds:
    settings = rapport.plugin_settings("sales")
    return Thresholds(orders=settings.bundle_orders, min_orders=settings.bundle_min_orders,
                      min_confidence=Decimal(str(settings.bundle_min_confidence)),
                      min_lift=Decimal(str(settings.bundle_min_lift)))


async def _baskets(max_orders: int) -> dict[int, frozenset[int]]:
    """The product sets of the latest ``max_orders`` orders (by id, so an index range)."""
    oldest = await SalesOrder.select(SalesOrder.id).order_by(
        SalesOrder.id, ascending=False).offset(max(0, max_orders - 1)).limit(1).run()
    query = OrderLine.select(OrderLine.sales_order, OrderLine.product).where(
        OrderLine.product.is_not_null())
    if oldest:  # more orders than the cap: only the latest ``max_orders``
        query = query.where(OrderLine.sales_order >= oldest[0]["id"])
    baskets: dict[int, set[int]] = defaultdict(set)
    for line in await query.run():
        baskets[line["sales_order"]].add(line["product"])
    return {order: frozenset(items) for order, items in baskets.items()}


@dataclass
class Counts:
    total: int
    single: Counter
    pairs: Counter
    triples: Counter


def count(baskets: list[frozenset[int]]) -> Counts:
    single: Counter[int] = Counter()
    pairs: Counter[tuple[int, ...]] = Counter()
    triples: Counter[tuple[int, ...]] = Counter()
    for basket in baskets:
        single.update(basket)
        if len(basket) < 2:
            continue
        items = sorted(basket)
        pairs.update(combinations(items, 2))
        if len(items) <= MAX_TRIPLE_BASKET:
            triples.update(combinations(items, 3))
    return Counts(len(baskets), single, pairs, triples)


def mine(baskets: list[frozenset[int]] | Counts, limits: Thresholds) -> list[dict[str, Any]]:
    """The bundles of ``baskets`` meeting ``limits``, best (lift, then orders) first."""
    counts = baskets if isinstance(baskets, Counts) else count(baskets)
    total, single, pairs = counts.total, counts.single, counts.pairs
    if total == 0:
        return []
    found = []
    for itemset, both in (*pairs.items(), *counts.triples.items()):
        if both < limits.min_orders:
            continue
        best: tuple[Decimal, Decimal] | None = None
        for consequent in itemset:
            rest = tuple(p for p in itemset if p != consequent)
            rest_count = single[rest[0]] if len(rest) == 1 else pairs[rest]
            confidence = Decimal(both) / rest_count
            lift = confidence * total / single[consequent]
            if best is None or (confidence, lift) > best:
                best = (confidence, lift)
        confidence, lift = best
        if confidence < limits.min_confidence or lift < limits.min_lift:
            continue
        found.append({"items": itemset, "orders": both,
                      "support": (Decimal(both) / total).quantize(Decimal("0.000001")),
                      "confidence": confidence.quantize(Decimal("0.000001")),
                      "lift": lift.quantize(Decimal("0.0001"))})
    found.sort(key=lambda b: (b["lift"], b["orders"]), reverse=True)
    return found[:MAX_BUNDLES]


def mine_rules(counts: Counts) -> list[dict[str, Any]]:
    """Cross-sell rules A -> B from the pair counts (both directions of every pair)."""
    total, single = counts.total, counts.single
    found = []
    for (a, b), both in counts.pairs.items():
        if both < RULE_MIN_ORDERS:
            continue
        for x, y in ((a, b), (b, a)):
            confidence = Decimal(both) / single[x]
            lift = confidence * total / single[y]
            if confidence < RULE_MIN_CONFIDENCE or lift <= RULE_MIN_LIFT:
                continue
            found.append({"antecedent": x, "consequent": y, "orders": both,
                          "support": (Decimal(both) / total).quantize(Decimal("0.000001")),
                          "confidence": confidence.quantize(Decimal("0.000001")),
                          "lift": lift.quantize(Decimal("0.0001"))})
    found.sort(key=lambda r: (r["confidence"], r["lift"]), reverse=True)
    return found[:MAX_RULES]


async def refresh(limits: Thresholds) -> dict[str, int]:
    """Mine the latest orders and replace the stored bundles (one transaction)."""
    began = time.monotonic()
    baskets = await _baskets(limits.orders)
    counts = count(list(baskets.values()))
    found = mine(counts, limits)
    rules = [AssociationRule(**r) for r in mine_rules(counts)]
    rows = [Bundle(product_a=b["items"][0], product_b=b["items"][1],
                   product_c=b["items"][2] if len(b["items"]) > 2 else None,
                   size=len(b["items"]), orders=b["orders"], support=b["support"],
                   confidence=b["confidence"], lift=b["lift"]) for b in found]
    milliseconds = int((time.monotonic() - began) * 1000)
    async with Bundle._meta.db.transaction():
        await Bundle.delete(force=True).run()
        await AssociationRule.delete(force=True).run()
        for table_rows in (rows, rules):
            for start in range(0, len(table_rows), 500):
                await type(table_rows[0]).insert(*table_rows[start:start + 500]).run()
        await BundleRun.insert(BundleRun(computed_at=datetime.now(UTC),
                                         orders_considered=len(baskets), bundles=len(rows),
                                         milliseconds=milliseconds)).run()
    return {"orders": len(baskets), "bundles": len(rows), "rules": len(rules),
            "milliseconds": milliseconds}


async def last_run() -> dict[str, Any] | None:
    return await BundleRun.select().order_by(BundleRun.id, ascending=False).first().run()


REFRESH_JOB = "sales.bundles.refresh"


async def _due(rapport) -> bool:
    """Whether the last mining run is older than ``bundle_refresh_minutes`` (0: never)."""
    minutes = rapport.plugin_settings("sales").bundle_refresh_minutes
    if minutes <= 0:
        return False
    last = await last_run()
    if last is None:
        return True
    at = last["computed_at"]
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return datetime.now(UTC) - at >= timedelta(minutes=minutes)


async def refresh_if_due(rapport) -> None:
    """After a new order: queue a re-mining job when the last run is old enough. The job type
    is unique, so orders arriving while one waits join it instead of queueing more."""
    if await _due(rapport):
        from core import jobs

        await jobs.enqueue(rapport, REFRESH_JOB)


async def refresh_job(rapport, job) -> None:
    """The ``sales.bundles.refresh`` job. Checks again that a run is due, so a job run twice
    (a worker died) or queued just before another finished mines once; a failed run keeps the
    previous bundles and is retried by the job system."""
    if await _due(rapport):
        await refresh(thresholds_of(rapport))


@dataclass(frozen=True)
class BundleSuggestion:
    product_id: int  # the first product the customer lacks (the link)
    product_name: str  # every product they lack, "A + B"
    kind: str
    reason: str
    orders: int
    lift: Decimal
    product_ids: tuple[int, ...] = ()  # every product the customer lacks
    support: Decimal | None = None
    confidence: Decimal | None = None


async def bundles_for(owned: set[int], limit: int = 3,
                      already: set[int] = frozenset()) -> list[BundleSuggestion]:
    """Stored bundles that hold something in ``owned`` and something not in it (a bundle
    lacking only one product that is in ``already``, suggested otherwise, is skipped)."""
    if not owned:
        return []
    ids = sorted(owned)[:500]
    rows = await Bundle.select().where(
        Bundle.product_a.is_in(ids) | Bundle.product_b.is_in(ids) | Bundle.product_c.is_in(ids)
    ).order_by(Bundle.lift, ascending=False).order_by(Bundle.orders, ascending=False).order_by(
        Bundle.size, ascending=False).limit(200).run()
    picked: list[tuple[dict[str, Any], tuple[int, ...], tuple[int, ...]]] = []
    seen: set[tuple[int, ...]] = set()
    for row in rows:
        items = tuple(p for p in (row["product_a"], row["product_b"], row["product_c"])
                      if p is not None)
        missing = tuple(p for p in items if p not in owned)
        have = tuple(p for p in items if p in owned)
        if not missing or missing in seen or (len(missing) == 1 and missing[0] in already):
            continue
        seen.add(missing)
        picked.append((row, have, missing))
        if len(picked) >= limit:
            break
    names = {r["id"]: r["name"] for r in await Product.select(Product.id, Product.name).where(
        Product.id.is_in(sorted({p for _, h, m in picked for p in h + m}) or [0])).run()}
    result = []
    for row, have, missing in picked:
        lift = Decimal(str(row["lift"]))
        with_names = " and ".join(names.get(p, f"#{p}") for p in have)
        result.append(BundleSuggestion(
            missing[0], " + ".join(names.get(p, f"#{p}") for p in missing), "bundle",
            f"bought together with {with_names} in {row['orders']} orders, lift {lift:.1f}",
            row["orders"], lift, missing, Decimal(str(row["support"])),
            Decimal(str(row["confidence"]))))
    return result
