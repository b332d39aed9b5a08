"""Catalogue administration: price books (prices per product and currency) and product
documents (manuals, data sheets) stored under the data directory.

Documents are files in ``<data_dir>/sales/documents/`` under a random name; the database
keeps the title, the uploaded file name, type and size. Only the types in ``ALLOWED`` are
accepted, and the first bytes must match the type (a renamed executable is refused). Staff
with ``sales.product.view`` download every document; portal customers download the ones
marked public, of active products, from the portal catalogue.
"""

from __future__ import annotations

import secrets
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import File, Redirect, Response, Template

from core import records
from core.audit import client_ip
from core.money import Money
from core.permissions import Actor, current_actor
from plugins.sales.controllers import form_data, perm, settings_of
from plugins.sales.tables import PriceBook, Product, ProductDocument, ProductPrice

PAGE = 100

# extension -> (content type, accepted leading bytes; None: text that must be UTF-8)
ALLOWED: dict[str, tuple[str, tuple[bytes, ...] | None]] = {
    "pdf": ("application/pdf", (b"%PDF-",)),
    "png": ("image/png", (b"\x89PNG\r\n\x1a\n",)),
    "jpg": ("image/jpeg", (b"\xff\xd8\xff",)),
    "jpeg": ("image/jpeg", (b"\xff\xd8\xff",)),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document",
             (b"PK\x03\x04",)),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
             (b"PK\x03\x04",)),
    "odt": ("application/vnd.oasis.opendocument.text", (b"PK\x03\x04",)),
    "zip": ("application/zip", (b"PK\x03\x04",)),
    "txt": ("text/plain; charset=utf-8", None),
    "csv": ("text/csv; charset=utf-8", None),
}


class CatalogError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# --- Price books -----------------------------------------------------------------------------


async def _check_book_name(raw: Any, book_id: int | None = None) -> str:
    name = " ".join(str(raw or "").split())
    if not name:
        raise CatalogError("name", "give the price book a name")
    if len(name) > 200:
        raise CatalogError("name", "is longer than 200 characters")
    query = PriceBook.exists().where(PriceBook.name == name)
    if book_id is not None:
        query = query.where(PriceBook.id != book_id)
    if await query.run():
        raise CatalogError("name", "another price book has this name")
    return name


async def _make_default(actor: Actor, book_id: int, ip: str) -> None:
    for other in await PriceBook.select(PriceBook.id).where(
            (PriceBook.is_default == True) & (PriceBook.id != book_id)).run():  # noqa: E712
        await records.update(actor, PriceBook, other["id"], {"is_default": False}, ip=ip)
    await records.update(actor, PriceBook, book_id, {"is_default": True, "active": True}, ip=ip)


def parse_price(raw: Any, currency: Any) -> Money:
    code = str(currency or "").strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise CatalogError("currency", "give an ISO 4217 currency code such as EUR")
    if isinstance(raw, float):
        raise CatalogError("unit_price", "give the price as a string, not a float")
    try:
        money = Money.parse(str(raw or "").strip(), code)
    except (ValueError, InvalidOperation, ArithmeticError):
        raise CatalogError("unit_price", "is not an amount of money") from None
    if not money.amount.is_finite() or money.amount < 0:
        raise CatalogError("unit_price", "cannot be negative")
    if money.amount >= Decimal("1e14"):
        raise CatalogError("unit_price", "is too large")
    return money


async def set_price(actor: Actor, book_id: int, product_id: int, money: Money, *,
                    ip: str = "") -> dict[str, Any]:
    """Create or change the product's price in this book and currency."""
    async with ProductPrice._meta.db.transaction():
        existing = await ProductPrice.select(ProductPrice.id).where(
            (ProductPrice.product == product_id) & (ProductPrice.price_book == book_id)
            & (ProductPrice.currency == money.currency)).first().run()
        if existing:
            return await records.update(actor, ProductPrice, existing["id"],
                                        {"unit_price": money.amount}, ip=ip)
        return await records.create(actor, ProductPrice, {
            "product": product_id, "price_book": book_id, "currency": money.currency,
            "unit_price": money.amount}, ip=ip)


async def _books_page(request: Request, errors: dict[str, str] | None = None,
                      values: dict[str, str] | None = None, status: int = 200) -> Template:
    books = await PriceBook.select().order_by(PriceBook.name).limit(200).run()
    return Template("sales/price_books.html", status_code=status, context={
        "books": books, "errors": errors or {}, "values": values or {},
        "can_create": current_actor(request).can("sales.product.create")})


@get("/sales/price-books", opt=perm("sales.product.view"))
async def price_books(request: Request) -> Template:
    return await _books_page(request)


@post("/sales/price-books", opt=perm("sales.product.create"), status_code=303)
async def price_book_create(request: Request) -> Response:
    data = await form_data(request)
    actor, ip = current_actor(request), client_ip(request)
    try:
        name = await _check_book_name(data.get("name"))
    except CatalogError as exc:
        return await _books_page(request, {exc.field: exc.message}, data, status=400)
    async with PriceBook._meta.db.transaction():
        row = await records.create(actor, PriceBook, {"name": name, "is_default": False,
                                                      "active": True}, ip=ip)
        if data.get("is_default") == "on" or not await PriceBook.exists().where(
                PriceBook.is_default == True).run():  # noqa: E712
            await _make_default(actor, row["id"], ip)
    return Redirect(f"/sales/price-books/{row['id']}", status_code=303)


async def _book(book_id: int) -> dict[str, Any]:
    found = await PriceBook.select().where(PriceBook.id == book_id).first().run()
    if found is None:
        raise NotFoundException("not found")
    return found


async def _book_page(request: Request, book: dict[str, Any], after: str = "",
                     errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
                     status: int = 200) -> Template:
    query = ProductPrice.select(
        ProductPrice.id, ProductPrice.currency, ProductPrice.unit_price, ProductPrice.product,
        ProductPrice.product.name.as_alias("name"), ProductPrice.product.sku.as_alias("sku")
    ).where(ProductPrice.price_book == book["id"])
    if after:
        query = query.where(ProductPrice.product.name > after)
    rows = await query.order_by(ProductPrice.product.name).order_by(ProductPrice.currency).limit(
        PAGE + 1).run()
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    products = await Product.select(Product.id, Product.name, Product.sku).where(
        Product.active == True).order_by(Product.name).limit(500).run()  # noqa: E712
    for row in rows:
        row["price"] = Money(Decimal(str(row["unit_price"])), row["currency"])
    actor = current_actor(request)
    return Template("sales/price_book.html", status_code=status, context={
        "book": book, "prices": rows, "products": products, "errors": errors or {},
        "values": values or {}, "next_after": rows[-1]["name"] if more else None,
        "can_edit": actor.can("sales.product.edit"),
        "default_currency": settings_of(request).default_currency})


@get("/sales/price-books/{book_id:int}", opt=perm("sales.product.view"))
async def price_book(request: Request, book_id: FromPath[int],
                     after: FromQuery[str] = "") -> Template:
    return await _book_page(request, await _book(book_id), after)


@post("/sales/price-books/{book_id:int}", opt=perm("sales.product.edit"), status_code=303)
async def price_book_save(request: Request, book_id: FromPath[int]) -> Response:
    book = await _book(book_id)
    data = await form_data(request)
    actor, ip = current_actor(request), client_ip(request)
    try:
        name = await _check_book_name(data.get("name"), book_id)
        active = data.get("active") == "on" or book["is_default"]  # the default stays active
    except CatalogError as exc:
        return await _book_page(request, book, errors={exc.field: exc.message}, values=data,
                                status=400)
    async with PriceBook._meta.db.transaction():
        changes = {k: v for k, v in (("name", name), ("active", active)) if book[k] != v}
        if changes:
            await records.update(actor, PriceBook, book_id, changes, ip=ip)
        if data.get("is_default") == "on" and not book["is_default"]:
            await _make_default(actor, book_id, ip)
    return Redirect(f"/sales/price-books/{book_id}", status_code=303)


@post("/sales/price-books/{book_id:int}/prices", opt=perm("sales.product.edit"),
      status_code=303)
async def price_book_set_price(request: Request, book_id: FromPath[int]) -> Response:
    book = await _book(book_id)
    data = await form_data(request)
    try:
        raw = data.get("product", "")
        if not raw.isdigit() or not await Product.exists().where(Product.id == int(raw)).run():
            raise CatalogError("product", "choose a product")
        money = parse_price(data.get("unit_price"), data.get("currency"))
    except CatalogError as exc:
        return await _book_page(request, book, errors={exc.field: exc.message}, values=data,
                                status=400)
    await set_price(current_actor(request), book_id, int(raw), money, ip=client_ip(request))
    return Redirect(f"/sales/price-books/{book_id}", status_code=303)


@post("/sales/price-books/{book_id:int}/prices/{price_id:int}/delete",
      opt=perm("sales.product.edit"), status_code=303)
async def price_delete(request: Request, book_id: FromPath[int],
                       price_id: FromPath[int]) -> Response:
    if not await ProductPrice.exists().where((ProductPrice.id == price_id)
                                             & (ProductPrice.price_book == book_id)).run():
        raise NotFoundException("not found")
    await records.delete(current_actor(request), ProductPrice, price_id, ip=client_ip(request))
    return Redirect(f"/sales/price-books/{book_id}", status_code=303)


# --- Product documents -----------------------------------------------------------------------


def documents_dir(rapport) -> Path:
    return Path(rapport.settings.data_dir) / "sales" / "documents"


def check_file(filename: str, content: bytes, max_bytes: int) -> tuple[str, str]:
    """(extension, content type) of an acceptable upload, else :class:`CatalogError`."""
    if not content:
        raise CatalogError("file", "choose a file to upload")
    if len(content) > max_bytes:
        raise CatalogError("file", f"is larger than {max_bytes // (1024 * 1024)} MB")
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if extension not in ALLOWED:
        raise CatalogError("file", "accepted types: " + ", ".join(sorted(ALLOWED)))
    content_type, magic = ALLOWED[extension]
    if magic is None:
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            raise CatalogError("file", f"is not a UTF-8 .{extension} text file") from None
    elif not content.startswith(magic):
        raise CatalogError("file", f"its content is not a .{extension} file")
    return extension, content_type


def _safe_filename(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in base if c.isprintable() and c not in '"<>|:*?')
    return cleaned.strip()[:255] or "document"


async def add_document(rapport, actor: Actor, product_id: int, title: str, filename: str,
                       content: bytes, public: bool, *, ip: str = "") -> dict[str, Any]:
    max_bytes = rapport.plugin_settings("sales").document_max_mb * 1024 * 1024
    extension, content_type = check_file(filename, content, max_bytes)
    title = " ".join(title.split())[:200] or _safe_filename(filename)
    folder = documents_dir(rapport)
    folder.mkdir(parents=True, exist_ok=True)
    stored = f"{secrets.token_hex(16)}.{extension}"
    path = folder / stored
    path.write_bytes(content)
    try:
        return await records.create(actor, ProductDocument, {
            "product": product_id, "title": title, "filename": _safe_filename(filename),
            "stored_name": stored, "content_type": content_type, "size": len(content),
            "public": public, "uploaded_by": actor.id if actor else None}, ip=ip)
    except Exception:
        path.unlink(missing_ok=True)  # no orphan file when the row was not written
        raise


def download(rapport, document: dict[str, Any]) -> Response:
    path = documents_dir(rapport) / document["stored_name"]
    if not path.is_file():
        raise NotFoundException("the file is missing")
    return File(path=path, filename=document["filename"], media_type=document["content_type"],
                content_disposition_type="attachment",
                headers={"x-content-type-options": "nosniff",
                         "content-security-policy": "default-src 'none'; sandbox"})


async def product_documents(product_id: int, public_only: bool = False) -> list[dict[str, Any]]:
    query = ProductDocument.select().where(ProductDocument.product == product_id)
    if public_only:
        query = query.where(ProductDocument.public == True)  # noqa: E712
    return await query.order_by(ProductDocument.title).limit(100).run()


@post("/sales/products/{product_id:int}/documents", opt=perm("sales.product.edit"),
      status_code=303)
async def document_upload(request: Request, product_id: FromPath[int]) -> Response:
    if not await Product.exists().where(Product.id == product_id).run():
        raise NotFoundException("not found")
    form = await request.form()
    upload = form.get("file")
    content, filename = b"", ""
    max_bytes = settings_of(request).document_max_mb * 1024 * 1024
    if upload is not None and not isinstance(upload, str):
        filename = upload.filename or ""
        content = await upload.read(max_bytes + 1)
    try:
        await add_document(request.app.state.rapport, current_actor(request), product_id,
                           str(form.get("title") or ""), filename, content,
                           form.get("public") == "on", ip=client_ip(request))
    except CatalogError as exc:
        from plugins.sales.controllers import product_detail_page

        return await product_detail_page(request, product_id, {exc.field: exc.message},
                                         status=400)
    return Redirect(f"/sales/products/{product_id}", status_code=303)


@get("/sales/documents/{document_id:int}", opt=perm("sales.product.view"))
async def document_download(request: Request, document_id: FromPath[int]) -> Response:
    document = await ProductDocument.select().where(
        ProductDocument.id == document_id).first().run()
    if document is None:
        raise NotFoundException("not found")
    return download(request.app.state.rapport, document)


@post("/sales/documents/{document_id:int}/delete", opt=perm("sales.product.edit"),
      status_code=303)
async def document_delete(request: Request, document_id: FromPath[int]) -> Response:
    try:
        row = await records.delete(current_actor(request), ProductDocument, document_id,
                                   ip=client_ip(request))
    except records.RecordNotFound:
        raise NotFoundException("not found") from None
    (documents_dir(request.app.state.rapport) / row["stored_name"]).unlink(missing_ok=True)
    return Redirect(f"/sales/products/{row['product']}", status_code=303)


@get("/sales/documents/{document_id:int}", opt={"permission": "sales.portal.view"},
     name="sales-portal-document")
async def portal_document(request: Request, document_id: FromPath[int]) -> Response:
    """A public document of an active product, for portal customers (mounted under
    /portal/)."""
    document = await ProductDocument.select().where(
        (ProductDocument.id == document_id) & (ProductDocument.public == True)  # noqa: E712
        & (ProductDocument.product.active == True)).first().run()  # noqa: E712
    if document is None:
        raise NotFoundException("not found")
    return download(request.app.state.rapport, document)


ROUTES = [price_books, price_book_create, price_book, price_book_save, price_book_set_price,
          price_delete, document_upload, document_download, document_delete]
PORTAL_ROUTES = [portal_document]
