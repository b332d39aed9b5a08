"""The staff navigation: what a user may open, grouped by area.

Items come from every ``register_nav_items`` implementation. An item names its heading with
``NavItem.group``; without one it is listed under the name of the plugin that contributed it
(so a third-party plugin's pages are grouped without it doing anything), and anything under
``/admin/`` goes to Administration. Items the user lacks the permission for are left out, and
so is a heading left with nothing under it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.permissions import current_actor
from core.plugin import NavItem

if TYPE_CHECKING:
    from core.app import Rapport

WORK = "Work"
ADMINISTRATION = "Administration"
ACCOUNT = "Account"
# Headings listed last whatever their items' order: settings, then the user's own account.
_LAST = {ADMINISTRATION: 1, ACCOUNT: 2}


@dataclass(frozen=True)
class NavGroup:
    title: str
    items: list[NavItem]


def _group_of(item: NavItem, contributor: str) -> str:
    if item.group:
        return item.group
    if item.href.startswith("/admin/"):
        return ADMINISTRATION
    return contributor


def nav_groups(rapport: Rapport, request: Any) -> list[NavGroup]:
    actor = current_actor(request)
    names = {p.meta.id: p.meta.name for p in rapport.plugins}
    grouped: dict[str, list[NavItem]] = {}
    for plugin_name, result in rapport.call_in_order("register_nav_items", rapport=rapport,
                                                     user=actor):
        for item in result or []:
            if item.permission is None or actor.can(item.permission):
                group = _group_of(item, names.get(plugin_name, WORK))
                grouped.setdefault(group, []).append(item)
    for items in grouped.values():
        items.sort(key=lambda i: (i.order, i.label))
    ordered = sorted(grouped.items(), key=lambda kv: (_LAST.get(kv[0], 0), kv[1][0].order))
    return [NavGroup(title, items) for title, items in ordered]
