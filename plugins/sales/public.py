"""What other plugins may read of sales: the catalogue (products, prices per price book and
currency) and orders, without importing this plugin's tables (plugins never import each
other). They reach it through the ``sales_read_api`` hook:

    caller = getattr(rapport.hook, "sales_read_api", None)   # None: sales is not enabled
    sales = caller(rapport=rapport) if caller is not None else None
    if sales is not None:
        price = await sales.price(product_id=7, currency="EUR")

Every function reads only; rows are plain dicts (amounts ``Decimal``, times aware
``datetime``). There is no permission check: the calling plugin answers for what it shows to
whom (a portal page shows a customer only their own orders). Lists are bounded and paged by
keyset (``after`` = the last id of the previous page).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from plugins.sales.tables import (
    OrderLine,
    PriceBook,
    Product,
    ProductPrice,
    SalesOrder,
)

if TYPE_CHECKING:
    from core.app import Rapport

MAX_PAGE = 500
PRODUCT_FIELDS = (Product.id, Product.sku, Product.name, Product.description,
                  Product.specifications, Product.active, Product.category)


def _limit(limit: int) -> int:
    return max(1, min(int(limit), MAX_PAGE))


# How a shop's retries are recognised: the client's own key and a digest of its request are
# the API's business, not something another plugin reads or relies on.
_PRIVATE_ORDER_COLUMNS = {"idempotency_key", "request_digest"}


def _order_columns() -> list[Any]:
    # Every column of the order as stored, so columns the order lifecycle adds are included.
    return [c for c in SalesOrder._meta.columns
            if c._meta.name not in _PRIVATE_ORDER_COLUMNS]


class SalesReadApi:
    """The catalogue and order read API (see the module's docstring for how to reach it)."""

    def __init__(self, rapport: Rapport) -> None:
        self.rapport = rapport

    @property
    def default_currency(self) -> str:
        return self.rapport.plugin_settings("sales").default_currency

    # --- catalogue -------------------------------------------------------------------------

    async def products(self, *, after: int | None = None, limit: int = 100,
                       active_only: bool = True, ids: list[int] | None = None,
                       skus: list[str] | None = None) -> list[dict[str, Any]]:
        """Products by id (ascending): ``id, sku, name, description, specifications, active,
        category`` (a category id or None)."""
        query = Product.select(*PRODUCT_FIELDS)
        if active_only:
            query = query.where(Product.active == True)  # noqa: E712
        if ids is not None:
            query = query.where(Product.id.is_in(list(ids)[:MAX_PAGE] or [0]))
        if skus is not None:
            query = query.where(Product.sku.is_in(list(skus)[:MAX_PAGE] or [""]))
        if after is not None:
            query = query.where(Product.id > after)
        return await query.order_by(Product.id).limit(_limit(limit)).run()

    async def product(self, *, product_id: int | None = None,
                      sku: str | None = None) -> dict[str, Any] | None:
        """One product by id or SKU (active or not), or None."""
        if product_id is None and not sku:
            return None
        query = Product.select(*PRODUCT_FIELDS)
        query = query.where(Product.id == product_id) if product_id is not None else \
            query.where(Product.sku == sku)
        return await query.first().run()

    async def price_books(self) -> list[dict[str, Any]]:
        """``id, name, is_default, active`` of every price book."""
        return await PriceBook.select().order_by(PriceBook.name).limit(MAX_PAGE).run()

    async def prices(self, product_ids: list[int], currency: str | None = None,
                     price_book_id: int | None = None) -> dict[int, Decimal]:
        """Unit prices of products in one currency (the default currency when None) and one
        price book (the default book when None); a product without a price is absent."""
        currency = (currency or self.default_currency).upper()
        query = ProductPrice.select(ProductPrice.product, ProductPrice.unit_price).where(
            ProductPrice.product.is_in(list(product_ids)[:MAX_PAGE] or [0])
            & (ProductPrice.currency == currency))
        if price_book_id is None:
            query = query.where(ProductPrice.price_book.is_default == True)  # noqa: E712
        else:
            query = query.where(ProductPrice.price_book == price_book_id)
        return {r["product"]: Decimal(str(r["unit_price"])) for r in await query.run()}

    async def price(self, *, product_id: int, currency: str | None = None,
                    price_book_id: int | None = None) -> Decimal | None:
        """One product's unit price (see :meth:`prices`), or None when it has none."""
        return (await self.prices([product_id], currency, price_book_id)).get(product_id)

    # --- orders ----------------------------------------------------------------------------

    async def orders(self, *, customer_id: int | None = None, status: str | None = None,
                     after: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Orders, newest first (by id; ``after`` continues below that id), optionally of one
        customer or in one status. Each row is the stored order (number, customer, owner,
        status, currency, amounts, times); lines come with :meth:`order`."""
        query = SalesOrder.select(*_order_columns())
        if customer_id is not None:
            query = query.where(SalesOrder.customer == customer_id)
        if status:
            query = query.where(SalesOrder.status == status)
        if after is not None:
            query = query.where(SalesOrder.id < after)
        return await query.order_by(SalesOrder.id, ascending=False).limit(_limit(limit)).run()

    async def order(self, order_id: int) -> dict[str, Any] | None:
        """One order with its ``lines`` (product, description, quantity, unit price, net,
        source, source_ref, context: whatever the order line stores), or None."""
        row = await SalesOrder.select(*_order_columns()).where(
            SalesOrder.id == order_id).first().run()
        if row is None:
            return None
        lines = await OrderLine.select().where(OrderLine.sales_order == order_id).order_by(
            OrderLine.id).limit(1000).run()
        return {**row, "lines": lines}
