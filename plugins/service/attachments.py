"""Files attached to a case's messages: checked, stored on disk, described in the database.

The type is sniffed from the bytes (``filetype``), never taken from the client's claim: a
renamed executable stays an executable. Text has no magic number, so undetected bytes that
decode as UTF-8 without control characters count as ``text/plain`` (``text/csv`` when the
name ends in ``.csv``). Files live under ``<data dir>/service/attachments/<yyyy-mm>/`` with a
random name; the original name, type, size and SHA-256 are kept on the row.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import filetype

from plugins.service.tables import CaseAttachment

if TYPE_CHECKING:
    from core.app import Rapport

log = logging.getLogger("rapport.service.attachments")

FOLDER = Path("service") / "attachments"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class NewAttachment:
    """An upload as received: the client's file name and claimed type, and the bytes."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Checked:
    filename: str
    content_type: str
    size: int
    sha256: str


def clean_filename(name: str) -> str:
    """The last path component, without control characters, at most 255 characters."""
    name = unicodedata.normalize("NFC", str(name or ""))
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _CONTROL.sub("", name).strip().strip(".") or "attachment"
    if len(name) > 255:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 250 - len(ext)] + dot + ext) if dot and len(ext) < 10 else name[:255]
    return name


def sniff(data: bytes, filename: str = "") -> str:
    """The MIME type the bytes really are ("application/octet-stream" when unknown)."""
    kind = filetype.guess_mime(data[:8192])
    if kind:
        return kind
    sample = data[:65536]
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut at the sample's end is still text.
        try:
            text = sample[:-3].decode("utf-8") if len(sample) == 65536 else None
        except UnicodeDecodeError:
            text = None
    if text is not None and not any(ch in text for ch in "\x00\x01\x02\x03\x04\x05\x06\x07\x08"
                                    "\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a"
                                    "\x1b\x1c\x1d\x1e\x1f\x7f"):
        return "text/csv" if filename.lower().endswith(".csv") else "text/plain"
    return "application/octet-stream"


def megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB".replace(".0 MB", " MB")


def check(rapport: Rapport, upload: NewAttachment) -> Checked:
    """Validate one upload against the plugin's settings; raise ``CaseError("attachments")``."""
    from plugins.service.cases import CaseError

    settings = rapport.plugin_settings("service")
    filename = clean_filename(upload.filename)
    data = upload.data or b""
    if not data:
        raise CaseError("attachments", f"{filename} is empty")
    if len(data) > settings.attachment_max_bytes:
        raise CaseError("attachments", f"{filename} is larger than "
                                       f"{megabytes(settings.attachment_max_bytes)}")
    kind = sniff(data, filename)
    if kind not in settings.attachment_types:
        raise CaseError("attachments", f"{filename}: files of this type ({kind}) are not "
                                       "accepted")
    return Checked(filename, kind, len(data), hashlib.sha256(data).hexdigest())


def path_of(rapport: Rapport, row: dict[str, Any]) -> Path | None:
    """The file of an attachment row, or None if it is missing or outside the data folder."""
    root = rapport.settings.data_dir.resolve()
    path = (root / row["path"]).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def remove_files(rapport: Rapport, rows: list[dict[str, Any]]) -> None:
    """Delete the files of attachment rows (their rows are deleted by the caller)."""
    root = rapport.settings.data_dir.resolve()
    for row in rows:
        path = (root / row["path"]).resolve()
        if path.is_relative_to(root):
            path.unlink(missing_ok=True)


async def save(rapport: Rapport, case_id: int, message_id: int | None, upload: NewAttachment, *,
               user_id: int | None = None, customer_id: int | None = None,
               visible_to_customer: bool = True) -> dict[str, Any]:
    """Check, store and describe one attachment; return its row.

    Call it inside the transaction that writes the message: if the row cannot be written the
    file is removed again; if the caller's transaction rolls back later it removes the files
    of the rows it got back (see :func:`remove_files`).
    """
    checked = check(rapport, upload)
    month = datetime.now(UTC).strftime("%Y-%m")
    relative = FOLDER / month / uuid.uuid4().hex
    target = rapport.settings.data_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(upload.data)
    try:
        rows = await CaseAttachment.insert(CaseAttachment(
            case=case_id, message=message_id, filename=checked.filename,
            content_type=checked.content_type, size=checked.size, sha256=checked.sha256,
            path=relative.as_posix(), visible_to_customer=visible_to_customer,
            uploaded_by_user=user_id, uploaded_by_customer=customer_id,
        )).returning(*CaseAttachment._meta.columns).run()
    except Exception:
        target.unlink(missing_ok=True)
        raise
    return rows[0]
