"""Visit notes: metadata and thin hook implementations (the work is in controllers.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core import permissions
from core.customers.tables import Customer
from core.plugin import NavItem, Panel, Permission, Plugin, hookimpl
from rapport_visit_notes import controllers
from rapport_visit_notes.piccolo_app import APP_CONFIG
from rapport_visit_notes.tables import Note

plugin = Plugin(
    id="visit_notes",
    name="Visit notes",
    version="0.1.0",
    description="Notes from customer visits, shown on the customer's 360° view.",
)


@dataclass(frozen=True)
class VisitNotesSettings:
    """``[plugins.visit_notes]`` in plugins.toml; every key is optional."""

    panel_title: str = "Visit notes"


@hookimpl
def register_settings():
    return VisitNotesSettings


@hookimpl
def register_piccolo_apps():
    return [APP_CONFIG]


@hookimpl
def register_permissions():
    return [
        Permission("visit_notes.note.view", "See notes from customer visits"),
        Permission("visit_notes.note.create", "Write notes from customer visits"),
    ]


@hookimpl
def register_routes():
    return [controllers.recent_visits, controllers.customer_panel, controllers.write_note]


@hookimpl
def register_template_dirs():
    return [Path(__file__).parent / "templates"]


@hookimpl
def register_nav_items():
    return [NavItem(label="Visit notes", href="/visit-notes/",
                    permission=controllers.VIEW, order=60)]


@hookimpl
def customer_panels(rapport, customer, user):
    if not user.can(controllers.VIEW):
        return None
    title = rapport.plugin_settings("visit_notes").panel_title
    return [Panel(id="visit-notes", title=title,
                  url=f"/visit-notes/panel/{customer['id']}", order=50)]


@hookimpl
def row_filter(rapport, user, table, scope):
    """A visit note follows its customer: visible wherever the customer is."""
    if table is not Note or scope == "customer":
        return None  # the portal's convention (the `customer` column) fits notes as they are
    where = permissions.row_filter(rapport, user, "core.customer.view", Customer)
    if where is None:
        return Note.customer.is_not_null()  # every customer is visible: so is every note
    return Note.customer.is_in(Customer.select(Customer.id).where(where))


@hookimpl
async def merge_customers(survivor_id, merged_id):
    await Note.update({Note.customer: survivor_id}).where(Note.customer == merged_id).run()


@hookimpl
async def privacy_export(customer_id):
    notes = await Note.select(Note.visited_on, Note.body).where(
        Note.customer == customer_id).order_by(Note.visited_on).run()
    return {"visit_notes": [{"visited_on": n["visited_on"].isoformat(), "body": n["body"]}
                            for n in notes]}


@hookimpl
async def privacy_erase(customer_id):
    # Keep the dates (how often we visited), drop what was said.
    await Note.update({Note.body: "[erased]"}).where(Note.customer == customer_id).run()
