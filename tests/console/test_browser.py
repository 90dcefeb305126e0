"""The console in a real browser: Debian's Chromium driven by Playwright against the served console.

One browser for the module. Every page is opened as eve (logged in by the form) and as ana (HTTP
basic authentication), and saved as a screenshot under ``test-artifacts/console/``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.console.conftest import CDR, STATS, ConsoleLake

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CELLS = "telco.curated.cell_daily"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
]

if not CHROMIUM.exists():
    pytest.skip("no /usr/bin/chromium: run scripts/system-deps.sh", allow_module_level=True)

from playwright.sync_api import Browser, Page, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield launched
        launched.close()


def shoot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"), full_page=True)


def visit_all(page: Page, url: str, console: ConsoleLake, who: str, model: str) -> dict[str, str]:
    """Every page as ``who``, with ``model`` (a curated table ``who`` may read) for the lineage ones."""
    paths = [
        "/",
        "/runs",
        f"/runs/{console.runs[0].run_id}",
        f"/runs/{console.runs[1].run_id}",
        "/tables",
        f"/tables/{CDR}?sample=1",
        f"/tables/{model}",
        f"/lineage/{model}?direction=upstream&depth=3",
        f"/lineage/{CDR}",
        "/quality",
        f"/quality?table={CDR}",
        "/slos",
        "/queries",
        f"/access?column={CDR}.msisdn",
    ]
    seen = {}
    for path in paths:
        response = page.goto(url + path)
        assert response is not None and response.status == 200, (who, path)
        assert page.locator("header .who").inner_text().startswith(who)
        seen[path] = page.content()
        stable = path.replace(console.runs[0].run_id, "nightly").replace(console.runs[1].run_id, "dq_checks")
        shoot(page, f"{who}{stable}")
    return seen


def test_eve_logs_in_by_the_form_and_sees_only_eu_rows(
    browser: Browser, console_server: str, console_lake: ConsoleLake
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{console_server}/quality?table={CDR}")
    assert page.url.startswith(f"{console_server}/login?next=")  # anonymous: sent to the login form
    shoot(page, "login")
    page.fill("input[name=principal]", "eve")
    page.fill("input[name=token]", "lp_wrong")
    page.click("button[type=submit]")
    assert page.locator("p.error").inner_text() == "unknown principal or token not valid"
    page.fill("input[name=principal]", "eve")
    page.fill("input[name=token]", console_lake.tokens["eve"])
    page.click("button[type=submit]")
    page.wait_for_url(f"{console_server}/quality?table={CDR}")  # back where it was going
    sample = page.locator("table.sample").first
    assert sample.is_visible() and "EU" in sample.inner_text() and "US" not in sample.inner_text()
    seen = visit_all(page, console_server, console_lake, "eve", CELLS)
    run = seen[f"/runs/{console_lake.runs[0].run_id}"]
    assert run.count("<rect") == 3 and "cell_daily #1" in run  # a Gantt bar per telco attempt, no adtech one
    leaks = {(path, v) for path, html in seen.items() for v in console_lake.hidden_from_eve if v in html}
    assert not leaks, sorted(leaks)[:5]
    page.goto(f"{console_server}/logout")
    assert page.goto(f"{console_server}/runs") is not None and page.url.startswith(f"{console_server}/login")
    page.close()


def test_ana_by_basic_auth_sees_masked_numbers_only(
    browser: Browser, console_server: str, console_lake: ConsoleLake
) -> None:
    # Sent with every request, as curl -u does: a page answers an anonymous request with the login
    # form, not a 401 challenge, so the browser would never offer stored credentials itself.
    basic = base64.b64encode(f"ana:{console_lake.tokens['ana']}".encode()).decode()
    context = browser.new_context(
        extra_http_headers={"Authorization": f"Basic {basic}"}, viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    seen = visit_all(page, console_server, console_lake, "ana", STATS)
    table = seen[f"/tables/{CDR}?sample=1"]
    assert "masked (hash)" in table and re.search(r"<td>[0-9a-f]{64}</td>", table)
    leaks = {(path, v) for path, html in seen.items() for v in console_lake.raw_identifiers if v in html}
    assert not leaks, sorted(leaks)[:5]
    lineage = seen[f"/lineage/{STATS}?direction=upstream&depth=3"]
    assert "adtech.processed.clicks" in lineage and "<path" in lineage  # the graph, drawn
    context.close()
