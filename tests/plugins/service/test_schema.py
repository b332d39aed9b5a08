"""The service plugin installs, migrates on SQLite and PostgreSQL, and declares itself."""

from __future__ import annotations


async def test_enabled_plugin_migrates_and_declares_itself(service_rapport, service_client):
    from plugins.service.tables import Case, Queue

    assert await Queue.count().run() == 0
    assert await Case.count().run() == 0
    assert "service.case.view" in service_rapport.permissions
    assert "service.case.created" in service_rapport.event_types
    page = await service_client.get("/")
    assert page.status_code == 200
    assert "/service/cases" in page.text  # the Cases link in the navigation
