"""The portal's admin settings, kept in ``core_instance_setting`` (JSON values):

- ``branding.name``, ``branding.colour``, ``branding.logo_url``: the customer-facing brand;
- ``portal.history_channels``: which interaction channels customers see in their history.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.customers.tables import CHANNELS
from core.instance import InstanceSetting

BRANDING_KEYS = ("branding.name", "branding.colour", "branding.logo_url")
HISTORY_CHANNELS_KEY = "portal.history_channels"
# What the customer did in the portal is always theirs to see; staff add more channels.
DEFAULT_HISTORY_CHANNELS = ("portal",)
DEFAULT_COLOUR = "#1f4e79"
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class Branding:
    name: str
    colour: str
    logo_url: str


async def read(keys: tuple[str, ...]) -> dict[str, Any]:
    rows = await InstanceSetting.select(InstanceSetting.key, InstanceSetting.value).where(
        InstanceSetting.key.is_in(list(keys))).run()
    values: dict[str, Any] = {}
    for row in rows:
        try:
            values[row["key"]] = json.loads(row["value"])
        except ValueError:
            continue
    return values


async def write(values: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    async with InstanceSetting._meta.db.transaction():
        for key, value in values.items():
            text = json.dumps(value)
            updated = await InstanceSetting.update({
                InstanceSetting.value: text, InstanceSetting.updated_at: now,
            }).where(InstanceSetting.key == key).returning(InstanceSetting.id).run()
            if not updated:
                await InstanceSetting.insert(
                    InstanceSetting(key=key, value=text, updated_at=now)).run()


async def branding(default_name: str) -> Branding:
    values = await read(BRANDING_KEYS)
    colour = str(values.get("branding.colour") or "")
    logo = str(values.get("branding.logo_url") or "")
    return Branding(
        name=str(values.get("branding.name") or default_name),
        colour=colour if _COLOUR.match(colour) else DEFAULT_COLOUR,
        logo_url=logo if is_local_url(logo) else "",
    )


def is_local_url(url: str) -> bool:
    """Logos are served by this site: the Content-Security-Policy allows images from 'self'."""
    return url.startswith("/") and not url.startswith("//") and "\\" not in url


def branding_problems(name: str, colour: str, logo_url: str) -> dict[str, str]:
    errors = {}
    if len(name) > 100:
        errors["name"] = "Keep the name under 100 characters."
    if colour and not _COLOUR.match(colour):
        errors["colour"] = "Use a colour like #1f4e79."
    if logo_url and not is_local_url(logo_url):
        errors["logo_url"] = "Use a path on this site, like /static/brand/logo.svg."
    return errors


async def history_channels() -> tuple[str, ...]:
    values = await read((HISTORY_CHANNELS_KEY,))
    chosen = values.get(HISTORY_CHANNELS_KEY)
    if not isinstance(chosen, list):
        return DEFAULT_HISTORY_CHANNELS
    return tuple(c for c in chosen if c in CHANNELS)
