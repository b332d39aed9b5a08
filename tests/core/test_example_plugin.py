"""Third-party discovery, end to end: the example plugin in docs/examples/rapport-visit-notes
is pip-installed into this venv, enabled through a plugins.toml (no ``plugins=`` argument, so
it is found through the ``rapport`` entry point), migrated, and used through HTTP."""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import json
import os
import re
import site
import subprocess
import sys
import sysconfig
import tempfile
from datetime import date
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest

from core.app import Rapport
from tests.conftest import app_client, connected, make_user, settings_for_test, sign_in

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "rapport-visit-notes"
DISTRIBUTION = "rapport-visit-notes"
LOCK = Path(tempfile.gettempdir()) / "rapport-example-plugin-install.lock"


def _installed_from_example() -> bool:
    try:
        direct_url = distribution(DISTRIBUTION).read_text("direct_url.json")
    except PackageNotFoundError:
        return False
    info = json.loads(direct_url or "{}")
    return info.get("url") == EXAMPLE.as_uri() and info.get("dir_info", {}).get("editable")


def ensure_example_plugin_installed() -> None:
    """pip-install the example plugin (editable) unless it already is, from this checkout.

    Runs before xdist starts its workers (see tests/conftest.py): a Python process started
    before the install sees the entry point but not the editable package's import hook.
    The file lock keeps two processes from running pip at once.
    """
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not _installed_from_example():
                command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                           "--disable-pip-version-check", "-e", str(EXAMPLE)]
                # Without build isolation is fastest and offline; a venv whose setuptools
                # cannot build editable wheels by itself falls back to an isolated build.
                done = subprocess.run([*command, "--no-build-isolation"], capture_output=True)
                if done.returncode != 0:
                    subprocess.run(command, check=True, capture_output=True)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    # What a restart would do: process the new .pth file so this process can import it.
    site.addsitedir(sysconfig.get_paths()["purelib"])
    importlib.invalidate_caches()


@pytest.fixture(scope="module")
def example_installed():
    try:
        ensure_example_plugin_installed()
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"pip could not install {EXAMPLE}: {exc.stderr.decode()[-2000:]}")
    return EXAMPLE


@pytest.fixture
async def visit_notes(example_installed, backend, tmp_path):
    """An instance whose plugins come from a plugins.toml enabling only visit_notes, on an
    empty (unmigrated) database."""
    (tmp_path / "plugins.toml").write_text(
        'enabled = ["visit_notes"]\n\n[plugins.visit_notes]\npanel_title = "Visits"\n'
    )

    async def nothing(url: str) -> None:
        pass  # the test migrates itself, to see the plugin's migration run

    url = await backend.fresh_url(("example-plugin-unmigrated",), nothing)
    return Rapport(settings_for_test(tmp_path, url))


async def add_customer(name: str, owner: int | None = None) -> int:
    from core.customers.tables import Customer

    rows = await Customer.insert(Customer(kind="contact", name=name, owner=owner)).returning(
        Customer.id).run()
    return rows[0]["id"]


def panel_urls(rapport: Rapport, customer_id: int, actor) -> dict[str, str]:
    panels = rapport.collect("customer_panels", rapport=rapport,
                             customer={"id": customer_id}, user=actor)
    return {p.title: p.url for p in panels}


async def test_example_plugin_is_discovered_through_its_entry_point(visit_notes):
    assert [p.meta.id for p in visit_notes.plugins] == ["visit_notes"]
    assert visit_notes.plugins[0].module.__name__ == "rapport_visit_notes.plugin"
    assert visit_notes.plugin_settings("visit_notes").panel_title == "Visits"
    assert {"visit_notes.note.view", "visit_notes.note.create"} <= set(visit_notes.permissions)


async def test_migrate_creates_the_plugins_table_after_cores(visit_notes):
    ran = await visit_notes.migrate()
    apps = [app for app, _ in ran]
    assert "visit_notes" in apps
    assert apps.index("visit_notes") > apps.index("core_customers")
    assert await visit_notes.migrate() == []  # idempotent
    from rapport_visit_notes.tables import Note

    async with connected(visit_notes):
        assert await Note.table_exists().run()


async def test_admin_sees_the_page_the_nav_item_and_the_panel(visit_notes):
    await visit_notes.migrate()
    async with app_client(visit_notes) as client:
        await make_user("admin@example.test")
        await sign_in(client, "admin@example.test")
        customer_id = await add_customer("Ada Lovelace")

        page = await client.get("/visit-notes/", headers={"accept": "text/html"})
        assert page.status_code == 200
        assert "<h1>Visit notes</h1>" in page.text
        assert 'href="/visit-notes/"' in page.text  # the nav item
        assert "No visit notes yet." in page.text

        # The 360° panel: offered through the hook, its content served by its own route.
        from core.permissions import Actor

        admin = Actor(kind="staff", id=1, grants={"visit_notes.note.view": "all"})
        url = panel_urls(visit_notes, customer_id, admin)["Visits"]
        assert url == f"/visit-notes/panel/{customer_id}"
        panel = await client.get(url)
        assert panel.status_code == 200 and "No visits with Ada Lovelace noted yet." in panel.text

        written = await client.post(
            "/visit-notes/", data={"customer": str(customer_id), "visited_on": "2026-11-20",
                                   "body": "Demoed the new tablet app"},
            headers={"x-csrftoken": client.cookies["csrftoken"]}, follow_redirects=True)
        assert written.status_code == 200 and "Demoed the new tablet app" in written.text
        listed = await client.get("/visit-notes/", headers={"accept": "text/html"})
        assert "Ada Lovelace" in listed.text and "Demoed the new tablet app" in listed.text

        # When the customer 360° page exists, the panel is on it.
        if any(re.fullmatch(r"/customers/\{\w+(:int)?\}", r.path)
               for r in client.rapport.asgi.routes):
            view = await client.get(f"/customers/{customer_id}", headers={"accept": "text/html"})
            assert view.status_code == 200 and url in view.text


async def test_a_note_without_text_is_refused_next_to_the_field(visit_notes):
    await visit_notes.migrate()
    async with app_client(visit_notes) as client:
        await make_user("admin@example.test")
        await sign_in(client, "admin@example.test")
        customer_id = await add_customer("Ada Lovelace")
        response = await client.post(
            "/visit-notes/", data={"customer": str(customer_id), "visited_on": "2026-11-20",
                                   "body": "  "},
            headers={"x-csrftoken": client.cookies["csrftoken"]})
        assert response.status_code == 422
        assert "Write what happened on the visit." in response.text


async def test_panel_of_a_customer_out_of_reach_is_not_found(visit_notes):
    await visit_notes.migrate()
    async with app_client(visit_notes) as client:
        owner = await make_user("owner@example.test", roles=["field_representative"])
        await make_user("other@example.test", roles=["field_representative"])
        mine = await add_customer("Mine", owner=owner)
        theirs = await add_customer("Theirs")
        await sign_in(client, "owner@example.test")
        assert (await client.get(f"/visit-notes/panel/{mine}")).status_code == 200
        assert (await client.get(f"/visit-notes/panel/{theirs}")).status_code == 404
        csrf = {"x-csrftoken": client.cookies["csrftoken"]}
        refused = await client.post("/visit-notes/", headers=csrf, data={
            "customer": str(theirs), "visited_on": "2026-11-20", "body": "sneaky"})
        assert refused.status_code == 404


async def test_notes_follow_their_customers_visibility(visit_notes):
    await visit_notes.migrate()
    async with app_client(visit_notes) as client:
        owner = await make_user("owner@example.test", roles=["field_representative"])
        admin = await make_user("admin@example.test")
        mine, theirs = await add_customer("Mine", owner=owner), await add_customer("Theirs")
        from rapport_visit_notes.tables import Note

        await Note.insert(
            Note(customer=mine, author=admin, visited_on=date(2026, 11, 1), body="about mine"),
            Note(customer=theirs, author=admin, visited_on=date(2026, 11, 2), body="about theirs"),
        ).run()
        await sign_in(client, "owner@example.test")
        page = await client.get("/visit-notes/", headers={"accept": "text/html"})
        assert "about mine" in page.text and "about theirs" not in page.text


async def test_users_without_the_permission_get_neither_nav_item_nor_page(visit_notes):
    await visit_notes.migrate()
    async with app_client(visit_notes) as client:
        await make_user("guest@example.test", roles=[])
        await sign_in(client, "guest@example.test")
        page = await client.get("/", headers={"accept": "text/html"})
        assert 'href="/visit-notes/"' not in page.text
        denied = await client.get("/visit-notes/", headers={"accept": "text/html"})
        assert denied.status_code == 403


def test_rapport_plugins_lists_the_example_plugin_as_enabled(example_installed, tmp_path):
    (tmp_path / "plugins.toml").write_text('enabled = ["visit_notes"]\n')
    env = dict(os.environ, RAPPORT_PLUGINS_TOML=str(tmp_path / "plugins.toml"),
               RAPPORT_DATA_DIR=str(tmp_path / "data"), COLUMNS="200")
    env.pop("RAPPORT_DATABASE_URL", None)
    with contextlib.suppress(KeyError):
        del env["PYTHONPATH"]
    done = subprocess.run([sys.executable, "-m", "core.cli", "plugins"], env=env,
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if "visit_notes" in line)
    assert "Visit notes" in row and "0.1.0" in row and "yes" in row
