"""The field app's hook implementations (core module, always enabled): installable app,
field views, offline sync and Web Push."""

from __future__ import annotations

from core.plugin import NavItem, Permission, hookimpl
from pwa import field, push, push_web, reminders, web, worker
from pwa.piccolo_app import APP_CONFIG


@hookimpl
def register_piccolo_apps():
    return [APP_CONFIG]


@hookimpl
def register_routes():
    return web.ROUTES + field.ROUTES + push_web.ROUTES


@hookimpl
def register_static_dirs():
    return {"pwa": web.STATIC / "pwa"}


@hookimpl
def register_permissions():
    return [
        Permission("core.field.view", "Use the field app (agenda, my customers, visit reports)",
                   scoped=False),
    ]


@hookimpl
def register_nav_items():
    return [NavItem(label="Field app", href="/field/", permission="core.field.view", order=5)]


@hookimpl
async def on_event(rapport, event):
    # Plugins turn events into notifications; core queues them in the durable outbox.
    messages = await rapport.acollect("push_notifications", rapport=rapport, event=event)
    await push.enqueue(rapport, messages)
    # Durable (core.followup.changed): delivered by the job worker at least once, retried if
    # this fails, even after a crash right after the change committed.
    if event.name == reminders.FOLLOW_UP_EVENT and event.payload.get("id"):
        await reminders.follow_up_changed(int(event.payload["id"]))


@hookimpl
def register_jobs(rapport):
    return worker.job_types(rapport)


@hookimpl
async def privacy_export(rapport, customer_id):
    from pwa.tables import FieldAttachment, VisitCheckIn

    attachments = await FieldAttachment.select(
        FieldAttachment.id, FieldAttachment.interaction_id, FieldAttachment.kind,
        FieldAttachment.content_type, FieldAttachment.size, FieldAttachment.created_at,
    ).where(FieldAttachment.customer == customer_id).run()
    check_ins = await VisitCheckIn.select(
        VisitCheckIn.interaction_id, VisitCheckIn.checked_in_at, VisitCheckIn.latitude,
        VisitCheckIn.longitude,
    ).where(VisitCheckIn.customer == customer_id).run()
    return {"field_attachments": [{**a, "created_at": a["created_at"].isoformat()}
                                  for a in attachments],
            "visit_check_ins": [{**c, "checked_in_at": c["checked_in_at"].isoformat(),
                                 "latitude": None if c["latitude"] is None else str(c["latitude"]),
                                 "longitude": None if c["longitude"] is None
                                 else str(c["longitude"])} for c in check_ins]}


@hookimpl
async def privacy_erase(rapport, customer_id):
    # Photos and signatures are personal data: the files go, and so do their rows. Check-ins
    # keep when they happened (an aggregate) but lose where.
    from pwa.tables import FieldAttachment, VisitCheckIn

    rows = await FieldAttachment.delete().where(FieldAttachment.customer == customer_id
                                                ).returning(FieldAttachment.path).run()
    for row in rows:
        (rapport.settings.data_dir / row["path"]).unlink(missing_ok=True)
    await VisitCheckIn.update({VisitCheckIn.latitude: None, VisitCheckIn.longitude: None,
                               VisitCheckIn.accuracy_m: None}).where(
        VisitCheckIn.customer == customer_id).run()
