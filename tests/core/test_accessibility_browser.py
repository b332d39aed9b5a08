"""Every main staff page, with the sales and service plugins and demo data, passes axe-core's
WCAG 2.1 A and AA checks in Debian's Chromium (labels, names, contrast, landmarks, titles,
keyboard reach of scrolling regions). axe-core is pinned in package.json (devDependencies)
and installed by `make`; it is injected with ``evaluate``, which the CSP does not govern."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pwa.conftest import CHROMIUM_FLAGS, IN_CI, ROOT, LiveServer, chromium_path

pytestmark = pytest.mark.browser

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
PAGES = [
    "/", "/contacts", "/accounts", "/customers/1", "/customers/1/edit", "/contacts/new",
    "/interactions", "/interactions/new", "/my-day", "/search?q=smith", "/customers/import",
    "/customers/duplicates", "/notifications", "/account", "/customers/1/privacy", "/admin/users",
    "/admin/users/new", "/admin/roles", "/admin/roles/matrix", "/admin/audit",
    "/admin/custom-fields",
    "/admin/branding", "/admin/contact-policy", "/field/",
    "/sales/leads", "/sales/board", "/sales/products", "/sales/quotes", "/sales/forecast",
    "/sales/calls", "/service/cases", "/service/cases/1", "/service/kb", "/service/admin",
]
CHECK = """rules => axe.run(document, {runOnly: {type: "tag", values: rules}}).then(result =>
  result.violations.map(v => `${v.id} (${v.impact}): ${v.help} at ` +
                                v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", ")))"""


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    if not AXE.exists():
        message = f"{AXE} is missing: run make install (npm ci)"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    root = tmp_path_factory.mktemp("accessibility")
    (root / "plugins.toml").write_text('enabled = ["sales", "service"]\n')
    server = LiveServer(root)
    server.start()
    subprocess.run([str(Path(sys.executable).with_name("rapport")), "demo", "--customers", "30"],
                   env=server.env, cwd=ROOT, check=True, capture_output=True, timeout=180)
    yield server
    server.stop()


def test_staff_pages_pass_axe_wcag_checks(demo_server):
    from playwright.sync_api import sync_playwright

    from core.identity.demo import DEMO_PASSWORD

    axe = AXE.read_text()
    found: dict[str, list[str]] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                             args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.goto(f"{demo_server.url}/login")
            page.evaluate(axe)
            found["/login"] = page.evaluate(CHECK, RULES)
            page.fill("#email", "admin@example.com")
            page.fill("#password", DEMO_PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{demo_server.url}/")
            for path in PAGES:
                response = page.goto(demo_server.url + path)
                assert response.status == 200, f"{path} answered {response.status}"
                page.wait_for_load_state("networkidle")  # lazy panels and widgets too
                page.evaluate(axe)
                found[path] = page.evaluate(CHECK, RULES)
        finally:
            browser.close()
    problems = {path: issues for path, issues in found.items() if issues}
    assert not problems, json.dumps(problems, indent=1)
