"""What the staff lists' bulk actions share: the way back to the list they came from (its
filters kept, with a flash such as ``changed=3``), and the page saying nothing was changed."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

from litestar.response import Redirect, Template

FLASH = ("changed",)  # what a previous bulk action left in the list's address


def back_url(target: str | None, default: str, **flash: int | str) -> str:
    """``target`` if it is a page of this site (else ``default``), without earlier flash
    parameters and with ``flash`` added."""
    path = target if target and target.startswith("/") and not target.startswith("//") \
        else default
    parts = urlsplit(path)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k not in FLASH and k not in flash]
    query += [(k, str(v)) for k, v in flash.items()]
    return parts.path + (f"?{urlencode(query)}" if query else "")


def back_to_list(target: str | None, default: str, **flash: int | str) -> Redirect:
    return Redirect(back_url(target, default, **flash), status_code=303)


def nothing_changed(message: str, back: str) -> Template:
    """The answer to a bulk action that was refused: what to fix, and the way back."""
    return Template("bulk_error.html", context={"message": message, "back": back},
                    status_code=400)
