"""Price books (create, default, prices per currency) and product documents (upload checked
by size and type, staff download, public ones in the portal catalogue)."""

from __future__ import annotations

from decimal import Decimal

from tests.conftest import csrf_headers, make_user, sign_in
from tests.plugins.sales.conftest import post_form

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


async def _product(sku: str = "PUMP") -> int:
    from plugins.sales.tables import Product

    return (await Product.insert(Product(sku=sku, name=sku.title())).returning(
        Product.id).run())[0]["id"]


async def _upload(client, product: int, filename: str, content: bytes, public: bool = False,
                  title: str = "Manual"):
    token = await csrf_headers(client)
    data = {"title": title, "_csrf_token": token["x-csrftoken"]}
    if public:
        data["public"] = "on"
    return await client.post(f"/sales/products/{product}/documents", data=data,
                             files={"file": (filename, content, "application/octet-stream")},
                             headers=token, follow_redirects=False)


async def test_price_books_hold_prices_per_currency_and_one_is_default(sales_client):
    from plugins.sales.tables import PriceBook, ProductPrice

    pump = await _product()
    first = await post_form(sales_client, "/sales/price-books", {"name": "List"})
    assert first.status_code == 303
    list_id = int(first.headers["location"].rsplit("/", 1)[1])
    duplicate = await post_form(sales_client, "/sales/price-books", {"name": "List"})
    assert duplicate.status_code == 400 and "another price book has this name" in duplicate.text
    second = await post_form(sales_client, "/sales/price-books", {"name": "Partners",
                                                                  "is_default": "on"})
    partners = int(second.headers["location"].rsplit("/", 1)[1])
    defaults = await PriceBook.select(PriceBook.id).where(PriceBook.is_default == True).run()  # noqa: E712
    assert [d["id"] for d in defaults] == [partners]  # the first one was default until then
    for currency, price in (("EUR", "99.90"), ("usd", "109"), ("EUR", "89.90")):
        saved = await post_form(sales_client, f"/sales/price-books/{partners}/prices", {
            "product": str(pump), "currency": currency, "unit_price": price})
        assert saved.status_code == 303
    prices = {r["currency"]: r["unit_price"] for r in await ProductPrice.select().where(
        ProductPrice.price_book == partners).run()}
    assert {k: Decimal(str(v)) for k, v in prices.items()} == {
        "EUR": Decimal("89.90"), "USD": Decimal("109")}
    refused = await post_form(sales_client, f"/sales/price-books/{partners}/prices", {
        "product": str(pump), "currency": "EURO", "unit_price": "1"})
    assert refused.status_code == 400 and "ISO 4217" in refused.text
    refused = await post_form(sales_client, f"/sales/price-books/{partners}/prices", {
        "product": str(pump), "currency": "EUR", "unit_price": "-5"})
    assert "cannot be negative" in refused.text and 'id="err-sp-price"' in refused.text
    page = await sales_client.get(f"/sales/price-books/{partners}")
    assert "89.90 EUR" in page.text and "109.00 USD" in page.text
    # A deal's product line takes the new default book's price.
    deal = (await sales_client.post("/api/v1/sales/opportunities", json={
        "name": "Pumps", "amount": "0", "currency": "EUR"})).json()["id"]
    line = await sales_client.post(f"/api/v1/sales/opportunities/{deal}/products",
                                   json={"product": pump, "quantity": "2"})
    assert line.json()["total"] == "179.80"
    assert list_id != partners


async def test_documents_are_checked_stored_and_downloaded(sales_client, tmp_path):
    pump = await _product()
    uploaded = await _upload(sales_client, pump, "manual.pdf", PDF, public=True)
    assert uploaded.status_code == 303
    renamed_exe = await _upload(sales_client, pump, "datasheet.pdf", b"MZ\x90\x00binary")
    assert renamed_exe.status_code == 400 and "its content is not a .pdf file" in renamed_exe.text
    wrong_type = await _upload(sales_client, pump, "setup.exe", b"MZ\x90\x00")
    assert wrong_type.status_code == 400 and "accepted types" in wrong_type.text
    await _upload(sales_client, pump, "internal notes.txt", "Nur intern ✓".encode(),
                  title="Internal notes")
    page = await sales_client.get(f"/sales/products/{pump}")
    assert "Manual" in page.text and "public in the portal" in page.text
    from plugins.sales.tables import ProductDocument

    docs = {d["title"]: d for d in await ProductDocument.select().run()}
    assert set(docs) == {"Manual", "Internal notes"}
    stored = sales_client.rapport.settings.data_dir / "sales" / "documents"
    assert (stored / docs["Manual"]["stored_name"]).read_bytes() == PDF
    got = await sales_client.get(f"/sales/documents/{docs['Manual']['id']}")
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["content-type"].startswith("application/pdf")
    assert got.headers["content-disposition"].startswith("attachment")
    assert got.headers["x-content-type-options"] == "nosniff"
    deleted = await post_form(sales_client,
                              f"/sales/documents/{docs['Internal notes']['id']}/delete", {})
    assert deleted.status_code == 303
    assert not (stored / docs["Internal notes"]["stored_name"]).exists()
    from core.audit import AuditEntry

    assert [r["action"] for r in await AuditEntry.select(AuditEntry.action).where(
        AuditEntry.record_type == "sales_product_document").order_by(AuditEntry.id).run()] == [
        "create", "create", "delete"]


async def test_documents_larger_than_the_limit_are_refused(make_rapport):
    from tests.conftest import app_client

    instance = await make_rapport(["sales"], {"sales": {"document_max_mb": 1}}, debug=True)
    async with app_client(instance) as client:
        await make_user("boss@example.test")
        await sign_in(client, "boss@example.test")
        pump = await _product()
        big = await _upload(client, pump, "huge.pdf", PDF + b"0" * (1024 * 1024))
        assert big.status_code == 400 and "is larger than 1 MB" in big.text


async def test_portal_customers_get_only_public_documents(sales_client, monkeypatch):
    from plugins.sales.tables import ProductDocument
    from tests.plugins.sales.conftest import new_customer
    from tests.plugins.sales.test_quotes import as_portal_customer

    pump = await _product()
    await _upload(sales_client, pump, "manual.pdf", PDF, public=True, title="Manual")
    await _upload(sales_client, pump, "pricing.txt", b"internal", title="Pricing")
    docs = {d["title"]: d["id"] for d in await ProductDocument.select().run()}
    customer = await new_customer("Portal Co")
    portal_user = await make_user("customer@example.test", roles=[])
    as_portal_customer(monkeypatch, sales_client, portal_user, customer)
    catalogue = await sales_client.get("/portal/sales/products")
    assert "Manual" in catalogue.text and "Pricing" not in catalogue.text
    got = await sales_client.get(f"/portal/sales/documents/{docs['Manual']}")
    assert got.status_code == 200 and got.content == PDF
    hidden = await sales_client.get(f"/portal/sales/documents/{docs['Pricing']}")
    assert hidden.status_code == 404


async def test_read_only_users_cannot_upload_or_edit_price_books(sales_client):
    pump = await _product()
    await make_user("viewer@example.test", roles=["read_only"])
    await sign_in(sales_client, "viewer@example.test")
    assert (await _upload(sales_client, pump, "manual.pdf", PDF)).status_code == 403
    assert (await post_form(sales_client, "/sales/price-books",
                            {"name": "Mine"})).status_code == 403
    assert (await sales_client.get("/sales/price-books")).status_code == 200
