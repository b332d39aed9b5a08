"""The audit log in words a person reads: "Customer 12", "Signed in", "Created".

Entries store the table name (``core_customer``) and a short action code (``login``); the
page and its filters show the names below instead. A table's name is its Piccolo class's,
spelt out ("SalesOrder" -> "Sales order"), so a plugin's tables get readable names without
declaring anything. The CSV export keeps the stored codes, which is what scripts filter on.
"""

from __future__ import annotations

import re
from functools import cache

from core.db import all_tables

ACTIONS = {
    "create": "Created", "update": "Changed", "delete": "Deleted",
    "login": "Signed in", "login_failed": "Sign-in failed", "lockout": "Locked out",
    "unlock": "Unlocked", "logout": "Signed out",
    "portal_login_failed": "Portal sign-in failed", "portal_invite": "Invited to the portal",
    "portal_deactivate": "Portal access removed",
    "password_change": "Password changed", "password_reset": "Password reset",
    "two_factor_enabled": "Two-step sign-in on", "two_factor_disabled": "Two-step sign-in off",
    "token_create": "API token created", "token_revoke": "API token revoked",
    "permission_change": "Permissions changed", "field_rule_change": "Field access changed",
    "export": "Exported", "import": "Imported",
    "privacy_export": "Personal data exported", "privacy_erase": "Personal data erased",
    "webform_rejected": "Web form refused", "accept": "Accepted", "return": "Returned",
}


def _spelt_out(name: str) -> str:
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").split()
    text = " ".join(words).lower()
    return text[:1].upper() + text[1:]


@cache
def _table_names() -> dict[str, str]:
    return {t._meta.tablename: _spelt_out(t.__name__) for t in all_tables()
            if not t._meta.tablename.startswith("piccolo_")}


def record_type_label(record_type: str) -> str:
    """``core_customer`` -> "Customer"; an unknown type loses its prefix and underscores."""
    if not record_type:
        return ""
    known = _table_names().get(record_type)
    if known:
        return known
    return _spelt_out(record_type.split("_", 1)[-1])


def action_label(action: str) -> str:
    return ACTIONS.get(action) or _spelt_out(action)


def record_type_choices() -> list[tuple[str, str]]:
    """(stored name, label) of every table, by label, for the page's record-type filter."""
    return sorted(_table_names().items(), key=lambda kv: (kv[1], kv[0]))


def action_choices() -> list[tuple[str, str]]:
    return sorted(ACTIONS.items(), key=lambda kv: kv[1])
