"""Uploads from the field app: what a representative recorded on the device, online or not.

Every item carries the id the device gave it (``client_id``, a UUID). The first upload does the
work and leaves a receipt; a retried or replayed upload finds the receipt and answers the same,
so nothing is ever recorded twice.

Conflict rule, for edits of records that already exist on the server (follow-ups): **the server
wins**. If the record changed on the server after the device last saw it (``base_updated_at``),
the device's version is not applied; it is kept (``pwa_sync_conflict``) and attached to the
record as a note, and the app shows it to the user. New records (interactions, visit reports)
never conflict.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from litestar.exceptions import PermissionDeniedException

from core import records
from core.customers.tables import CHANNELS, Customer
from core.interactions.service import (
    InteractionError,
    complete_followup,
    record_interaction,
    update_interaction,
)
from core.interactions.tables import Interaction
from core.permissions import Actor, scoped
from pwa.tables import FieldAttachment, SyncConflict, SyncReceipt, VisitCheckIn

MAX_PHOTOS = 6
MAX_PHOTO_BYTES = 3 * 1024 * 1024
MAX_SIGNATURE_BYTES = 512 * 1024
IMAGE_TYPES = {b"\x89PNG\r\n\x1a\n": ("image/png", "png"), b"\xff\xd8\xff": ("image/jpeg", "jpg")}


class SyncError(ValueError):
    """The item cannot be accepted as sent; ``field`` names the culprit (HTTP 422)."""

    def __init__(self, field: str, message: str, status: int = 422) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message, self.status = field, message, status


@dataclass
class Upload:
    """A decoded image from the device, checked for type and size."""

    kind: str
    content_type: str
    extension: str
    data: bytes


def _client_id(item: dict[str, Any]) -> str:
    try:
        return str(uuid.UUID(str(item.get("client_id") or "")))
    except ValueError:
        raise SyncError("client_id", "must be a UUID made on the device") from None


def _when(value: Any, field: str, default: datetime | None = None) -> datetime | None:
    if value in (None, ""):
        return default
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise SyncError(field, "must be an ISO 8601 date and time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def decode_image(data_url: Any, kind: str, limit: int, field: str) -> Upload:
    """``data:image/...;base64,...`` -> bytes; the type is judged by the bytes, not the label."""
    text = str(data_url or "")
    header, _, encoded = text.partition(",")
    if not header.startswith("data:") or ";base64" not in header:
        raise SyncError(field, "must be a base64 data URL")
    if len(encoded) > limit * 4 // 3 + 8:
        raise SyncError(field, f"is larger than {limit // 1024} KB")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise SyncError(field, "is not valid base64") from None
    if len(data) > limit:
        raise SyncError(field, f"is larger than {limit // 1024} KB")
    for magic, (content_type, extension) in IMAGE_TYPES.items():
        if data.startswith(magic):
            return Upload(kind, content_type, extension, data)
    raise SyncError(field, "must be a PNG or JPEG image")


def _number(value: Any, field: str, low: float, high: float) -> float | None:
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SyncError(field, "must be a number") from None
    if not low <= number <= high:
        raise SyncError(field, f"must be between {low} and {high}")
    return number


async def _receipt(client_id: str) -> dict[str, Any] | None:
    return await SyncReceipt.select().where(SyncReceipt.client_id == client_id).first().run()


def _answer(receipt: dict[str, Any], replayed: bool) -> dict[str, Any]:
    return {"client_id": receipt["client_id"], "status": receipt["status"],
            "record_id": receipt["record_id"], "message": receipt["message"],
            "replayed": replayed}


async def _visible_customer(rapport, actor: Actor, customer_id: Any) -> dict[str, Any]:
    try:
        cid = int(customer_id)
    except (TypeError, ValueError):
        raise SyncError("customer_id", "must be a customer id") from None
    query = Customer.select(Customer.id, Customer.name).where(Customer.id == cid)
    row = await scoped(query, rapport, actor, "core.customer.view", Customer).first().run()
    if row is None:
        raise SyncError("customer_id", "no such customer", status=404)
    return row


async def handle(rapport, actor: Actor, item: dict[str, Any], *, ip: str = "") -> dict[str, Any]:
    """Apply one uploaded item (idempotent); return what the device shows about it."""
    client_id = _client_id(item)
    existing = await _receipt(client_id)
    if existing is not None:
        if existing["user"] != actor.id:
            raise SyncError("client_id", "belongs to another upload", status=409)
        return _answer(existing, replayed=True)
    kind = item.get("kind")
    if kind == "interaction":
        return await _record_interaction(rapport, actor, client_id, item, ip)
    if kind == "follow_up":
        return await _edit_follow_up(rapport, actor, client_id, item, ip)
    raise SyncError("kind", "must be 'interaction' or 'follow_up'")


async def _write_receipt(actor: Actor, client_id: str, kind: str, status: str, record_id: Any,
                         message: str) -> dict[str, Any]:
    rows = await SyncReceipt.insert(SyncReceipt(
        client_id=client_id, user=actor.id, kind=kind, status=status,
        record_id=str(record_id), message=message, created_at=datetime.now(UTC),
    )).returning(*SyncReceipt._meta.columns).run()
    return rows[0]


def _store_files(data_dir: Path, client_id: str, uploads: list[Upload]) -> list[tuple]:
    """Write images under data_dir/attachments/<yyyy-mm>/ before the transaction; returns
    (attachment client id, upload, relative path) for each."""
    month = datetime.now(UTC).strftime("%Y-%m")
    folder = data_dir / "attachments" / month
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    stored = []
    for index, upload in enumerate(uploads):
        attachment_id = str(uuid.uuid5(uuid.UUID(client_id), f"{upload.kind}-{index}"))
        relative = Path("attachments") / month / f"{attachment_id}.{upload.extension}"
        (data_dir / relative).write_bytes(upload.data)
        stored.append((attachment_id, upload, str(relative)))
    return stored


async def _record_interaction(rapport, actor: Actor, client_id: str, item: dict[str, Any],
                              ip: str) -> dict[str, Any]:
    customer = await _visible_customer(rapport, actor, item.get("customer_id"))
    channel = str(item.get("channel") or "visit")
    if channel not in CHANNELS:
        raise SyncError("channel", f"must be one of {', '.join(CHANNELS)}")
    now = datetime.now(UTC)
    occurred_at = _when(item.get("occurred_at"), "occurred_at", now)
    notes = str(item.get("notes") or "")[:20000]
    subject = str(item.get("subject") or "")[:300] or (
        f"Visit report: {customer['name']}" if channel == "visit" else f"{channel.title()}")
    follow_up = item.get("follow_up") or {}
    follow_up_due = _when(follow_up.get("due"), "follow_up.due") if follow_up else None
    photos = item.get("photos") or []
    if not isinstance(photos, list) or len(photos) > MAX_PHOTOS:
        raise SyncError("photos", f"at most {MAX_PHOTOS} photos")
    uploads = [decode_image(p, "photo", MAX_PHOTO_BYTES, f"photos[{i}]")
               for i, p in enumerate(photos)]
    if item.get("signature"):
        uploads.append(decode_image(item["signature"], "signature", MAX_SIGNATURE_BYTES,
                                    "signature"))
    check_in = item.get("check_in") or None
    if check_in:
        latitude = _number(check_in.get("lat"), "check_in.lat", -90, 90)
        longitude = _number(check_in.get("lng"), "check_in.lng", -180, 180)
        accuracy = _number(check_in.get("accuracy"), "check_in.accuracy", 0, 1e7)
        checked_in_at = _when(check_in.get("at"), "check_in.at", occurred_at)
    try:
        # Idempotent on client_id: a replay whose first attempt stopped half-way finds the
        # interaction again and finishes the rest below.
        row, _created = await record_interaction(
            rapport, actor, customer_id=customer["id"], channel=channel, direction="outbound",
            subject=subject, notes=notes, outcome=str(item.get("outcome") or "")[:100],
            occurred_at=occurred_at, followup_due=follow_up_due,
            followup_note=str(follow_up.get("note") or "")[:2000] if follow_up else "",
            plugin=None, client_id=client_id, ip=ip)
    except InteractionError as exc:
        raise SyncError(exc.field, exc.message) from None
    stored = _store_files(rapport.settings.data_dir, client_id, uploads)
    try:
        async with FieldAttachment._meta.db.transaction():
            known = {r["client_id"] for r in await FieldAttachment.select(
                FieldAttachment.client_id).where(FieldAttachment.interaction_id == row["id"]).run()}
            for attachment_id, upload, relative in stored:
                if attachment_id in known:
                    continue
                await FieldAttachment.insert(FieldAttachment(
                    client_id=attachment_id, interaction_id=row["id"], customer=customer["id"],
                    kind=upload.kind, content_type=upload.content_type, size=len(upload.data),
                    path=relative, created_by=actor.id, created_at=now)).run()
            if check_in and not await VisitCheckIn.exists().where(
                    VisitCheckIn.interaction_id == row["id"]).run():
                await VisitCheckIn.insert(VisitCheckIn(
                    interaction_id=row["id"], customer=customer["id"], user=actor.id,
                    checked_in_at=checked_in_at,
                    latitude=None if latitude is None else round(latitude, 6),
                    longitude=None if longitude is None else round(longitude, 6),
                    accuracy_m=None if accuracy is None else int(accuracy))).run()
            receipt = await _write_receipt(actor, client_id, "interaction", "created",
                                           row["id"], "Recorded")
    except Exception:
        # A simultaneous replay may have won the race for the unique receipt.
        raced = await _receipt(client_id)
        if raced is not None:
            return _answer(raced, replayed=True)
        raise
    return _answer(receipt, replayed=False)


async def _edit_follow_up(rapport, actor: Actor, client_id: str, item: dict[str, Any],
                          ip: str) -> dict[str, Any]:
    try:
        interaction_id = int(item.get("interaction_id"))
    except (TypeError, ValueError):
        raise SyncError("interaction_id", "must be an interaction id") from None
    base = _when(item.get("base_updated_at"), "base_updated_at")
    changes: dict[str, Any] = {}
    if "due" in item:
        changes["followup_due"] = _when(item.get("due"), "due")
    if "note" in item:
        changes["followup_note"] = str(item.get("note") or "")[:2000]
    if "done" in item:
        changes["followup_done"] = bool(item.get("done"))
    device_version = {k: item.get(k) for k in ("due", "note", "done") if k in item}
    # The version check and the change (or the conflict note) happen under the row's lock:
    # two devices that saw the same version cannot both apply theirs, and every conflict note
    # is added to the notes as they are then, so none is lost (core.records.lock, Append).
    async with Interaction._meta.db.transaction():
        current = await records.lock(Interaction, interaction_id)
        if current is None:
            raise SyncError("interaction_id", "no such follow-up", status=404)
        await _visible_customer(rapport, actor, current["customer"])
        server_updated = current["updated_at"]
        if base is None or (server_updated and server_updated > base):
            return await _keep_as_conflict(rapport, actor, client_id, current, device_version,
                                           ip)
        try:
            if set(changes) == {"followup_done"}:
                await complete_followup(rapport, actor, interaction_id,
                                        done=changes["followup_done"], ip=ip)
            else:
                await update_interaction(rapport, actor, interaction_id, changes, ip=ip)
        except InteractionError as exc:
            raise SyncError(exc.field, exc.message) from None
        except (LookupError, PermissionDeniedException):
            raise SyncError("interaction_id", "no such follow-up", status=404) from None
        receipt = await _write_receipt(actor, client_id, "follow_up", "updated",
                                       interaction_id, "Follow-up updated")
    return _answer(receipt, replayed=False)


async def _keep_as_conflict(rapport, actor: Actor, client_id: str, current: dict[str, Any],
                            device_version: dict[str, Any], ip: str) -> dict[str, Any]:
    """Server wins: keep the device's version beside the record and tell the user."""
    interaction_id = current["id"]
    server_version = {"due": current["followup_due"], "note": current["followup_note"],
                      "done": current["followup_done"]}
    message = ("Changed on the server meanwhile: the server's version was kept; yours is "
               "saved as a note on the interaction.")
    if not await SyncConflict.exists().where(SyncConflict.client_id == client_id).run():
        await SyncConflict.insert(SyncConflict(
            client_id=client_id, user=actor.id, record_type="core_interaction",
            record_id=str(interaction_id), device_version=json.dumps(device_version),
            server_version=json.dumps(server_version, default=str),
            created_at=datetime.now(UTC))).run()
    kept = (f"\n\n[Field app, not applied: follow-up change from {actor.name} made "
            f"offline: {json.dumps(device_version)}]")
    try:
        await update_interaction(rapport, actor, interaction_id,
                                 {"notes": records.Append(kept)}, ip=ip)
    except (InteractionError, LookupError, PermissionDeniedException):
        pass  # no right to add the note: the conflict record still keeps the version
    receipt = await _write_receipt(actor, client_id, "follow_up", "conflict",
                                   interaction_id, message)
    return _answer(receipt, replayed=False)
