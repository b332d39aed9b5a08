"""Every main staff and portal page, with the sales and service plugins and demo data, passes
axe-core's WCAG 2.1 A and AA checks in Debian's Chromium (labels, names, contrast, landmarks, titles,
keyboard reach of scrolling regions). axe-core is pinned in package.json (devDependencies)
and installed by `make`; it is injected with ``evaluate``, which the CSP does not govern."""

from __future__ import annotations

import json

import pytest

from tests.pwa.conftest import CHROMIUM_FLAGS, IN_CI, ROOT, chromium_path, serving

pytestmark = pytest.mark.browser

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
PAGES = [
    "/", "/contacts", "/accounts", "/customers/1", "/customers/1/edit", "/contacts/new",
    "/interactions", "/interactions/new", "/my-day", "/search?q=smith", "/customers/import",
    "/customers/duplicates", "/notifications", "/account", "/customers/1/privacy", "/admin/users",
    "/admin/users/new", "/admin/roles", "/admin/roles/matrix", "/admin/audit",
    "/admin/custom-fields",
    "/admin/branding", "/admin/contact-policy", "/field/", "/customers/1/email",
    "/admin/email-templates", "/admin/email-templates/1",
    "/sales/leads", "/sales/board", "/sales/products", "/sales/quotes", "/sales/forecast",
    "/sales/calls", "/service/cases", "/service/cases/1", "/service/kb", "/service/admin",
]
PORTAL_PAGES = [
    "/portal/", "/portal/history", "/portal/profile", "/portal/preferences", "/portal/data",
    "/portal/service/help", "/portal/service/requests", "/portal/service/requests/new",
    "/portal/sales/quotes", "/portal/sales/orders", "/portal/sales/products",
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
    with serving(tmp_path_factory.mktemp("accessibility"), ["sales", "service"],
                 demo_customers=30) as server:
        yield server


def check_pages(page, base: str, paths: list[str], found: dict[str, list[str]]) -> None:
    axe = AXE.read_text()
    for path in paths:
        response = page.goto(base + path)
        assert response.status == 200, f"{path} answered {response.status}"
        page.wait_for_load_state("networkidle")  # lazy panels and widgets too
        page.evaluate(axe)
        found[path] = page.evaluate(CHECK, RULES)


async def _portal_customer(rapport) -> None:
    from tests.core.portal.conftest import make_person

    await make_person(rapport, "Paula", "Portal", "paula@example.test")


def test_staff_and_portal_pages_pass_axe_wcag_checks(demo_server):
    from playwright.sync_api import sync_playwright

    from core.identity.demo import DEMO_PASSWORD
    from tests.core.portal.conftest import PORTAL_PASSWORD

    base = demo_server.url
    demo_server.run(_portal_customer)
    found: dict[str, list[str]] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                             args=CHROMIUM_FLAGS)
        try:
            staff = browser.new_page()
            check_pages(staff, base, ["/login"], found)
            staff.fill("#email", "admin@example.com")
            staff.fill("#password", DEMO_PASSWORD)
            staff.click("button[type=submit]")
            staff.wait_for_url(f"{base}/")
            check_pages(staff, base, PAGES, found)
            customer = browser.new_context().new_page()
            check_pages(customer, base, ["/portal/login"], found)
            customer.fill("#email", "paula@example.test")
            customer.fill("#password", PORTAL_PASSWORD)
            customer.click("button[type=submit]")
            customer.wait_for_url(f"{base}/portal/")
            check_pages(customer, base, PORTAL_PAGES, found)
        finally:
            browser.close()
    problems = {path: issues for path, issues in found.items() if issues}
    assert not problems, json.dumps(problems, indent=1)
