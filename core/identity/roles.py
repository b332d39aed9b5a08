"""Built-in roles and how grants expand into an actor's permissions.

Grants may be patterns (``*``, ``*.view``, ``core.customer.*``) so that roles keep working when
a plugin is enabled later: its ``<id>.<noun>.view`` permission is covered by ``*.view``.
Permission names end with a verb by convention (view, create, edit, delete, export, assign,
manage), which is what the built-in roles' patterns rely on. ``manage`` is the verb of
administration (users, roles, settings, the audit log): no built-in role but the
administrator's ``*`` grants it, so a new administrative permission is never handed out by a
pattern such as ``*.edit``.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

from core.permissions import SCOPE_RANK

BUILTIN_ROLES: dict[str, dict] = {
    "administrator": {
        "name": "Administrator",
        "description": "Everything, on every record, including users, roles and settings.",
        "grants": [("*", "all")],
    },
    "manager": {
        "name": "Manager",
        "description": "Works with the records of their teams and the teams below them.",
        "grants": [(f"*.{verb}", "team") for verb in
                   ("view", "create", "edit", "delete", "export", "assign")],
    },
    "sales_representative": {
        "name": "Sales representative",
        "description": "Sees their team's customers; changes their own records.",
        "grants": [("*.view", "team"), ("*.create", "own"), ("*.edit", "own"),
                   ("*.export", "own")],
    },
    "service_agent": {
        "name": "Service agent",
        "description": "Sees and handles their team's customers and requests; finds any "
                       "caller (name, e-mail, phone, city) to open a case.",
        # Core's and service's records only: a help desk has no use for the sales menus.
        "grants": [(f"{area}.*.{verb}", "team") for area in ("core", "service")
                   for verb in ("view", "create", "edit", "assign")]
                  + [("core.customer.find", "all")],
    },
    "field_representative": {
        "name": "Field representative",
        "description": "Works on the customers assigned to them, often offline.",
        "grants": [("*.view", "own"), ("*.create", "own"), ("*.edit", "own")],
    },
    "read_only": {
        "name": "Read-only",
        "description": "Sees everything, changes nothing.",
        "grants": [("*.view", "all")],
    },
}


def expand_grants(grants: Iterable[tuple[str, str]], permissions: Iterable[str]) -> dict[str, str]:
    """Map each declared permission to the widest scope any grant gives it."""
    names = list(permissions)
    result: dict[str, str] = {}
    for pattern, scope in grants:
        for name in names:
            if fnmatchcase(name, pattern):
                if SCOPE_RANK.get(scope, 0) > SCOPE_RANK.get(result.get(name, ""), 0):
                    result[name] = scope
    return result
