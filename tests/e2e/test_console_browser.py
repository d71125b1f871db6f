"""The console in a real browser: Debian's Chromium driven by Playwright, against `leadsync
serve` (API + worker) and the HubSpot sandbox on PostgreSQL, as an operator uses it.

Log in with a wrong then the right token; the overview shows the database's counts; a failed
lead appears with its error; filters and the email search narrow the list; the refused leads
are resynced, the sandbox's rule fixed, and they become SYNCED; a lead's page shows its
history in order; a POST without the CSRF token is refused and changes nothing; after logout
every console URL leads to the login form. axe-core checks every page, the erasures page
included (no serious or critical violation), and the run takes the screenshots that
docs/images/ holds (LEADSYNC_SCREENSHOT_DIR=docs/images to refresh them).

Needs /usr/bin/chromium and axe-core (scripts/browser_deps.sh installs both); without them the
test is skipped locally and fails under CI=true.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from leadsync.demo.kit import count_by_status
from leadsync.store import overview
from leadsync.store.db import utcnow
from tests.e2e.support import SandboxFactory, patch_sandbox
from tests.helpers import INTERNAL_TOKEN, wait_for
from tests.helpers.leads import fetch, insert_leads, lead_row
from tests.helpers.postgres import in_ci

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.parametrize(
        "db_url",
        [pytest.param("postgres", marks=pytest.mark.postgres, id="postgres")],
        indirect=True,
    ),
]

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
AXE = Path(
    os.environ.get("LEADSYNC_AXE_JS")
    or ROOT / ".cache" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
)
REJECT = r"^refused\d+@"
PORTAL_ID = "4711"
Sessions = async_sessionmaker[AsyncSession]


def _require_browser() -> Any:
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    if not AXE.exists():
        missing.append(f"axe-core at {AXE} (scripts/browser_deps.sh)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:  # pragma: no cover - requirements-dev.lock has it
        missing.append("playwright (requirements-dev.lock)")
        async_playwright = None
    if missing:
        reason = "browser tests need " + ", ".join(missing)
        if in_ci():
            pytest.fail(f"CI=true: {reason}", pytrace=False)
        pytest.skip(reason)
    return async_playwright


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve(database_url: str, hubspot_url: str, log_path: Path) -> Iterator[str]:
    """Run `leadsync serve` (API + worker) on a free port; yield its base URL."""
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "HUBSPOT_", "LEADSYNC_"))
    }
    env |= {
        "DATABASE_URL": database_url,
        "HUBSPOT_BASE_URL": hubspot_url,
        "HUBSPOT_TOKEN": "sandbox-token",
        "HUBSPOT_RATE_LIMIT": "100/1s",
        "HUBSPOT_PORTAL_ID": PORTAL_ID,
        "LEADSYNC_INTERNAL_TOKEN": INTERNAL_TOKEN,
        "LEADSYNC_POLL_INTERVAL_SECONDS": "0.2",
        "LEADSYNC_RECONCILE_INTERVAL_SECONDS": "1",
        "LEADSYNC_LOG_FORMAT": "json",
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "leadsync.cli", "serve", "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


async def ready(url: str) -> bool:
    try:
        async with httpx.AsyncClient(base_url=url, timeout=2) as http:
            return (await http.get("/readyz")).status_code == 200
    except httpx.HTTPError:
        return False


class Axe:
    """Runs axe-core in the page and collects serious and critical violations."""

    def __init__(self) -> None:
        self.source = AXE.read_text(encoding="utf-8")
        self.checked: list[str] = []

    async def check(self, page: Any) -> None:
        # evaluate() is not subject to the page's CSP (which forbids inline scripts).
        await page.evaluate(self.source)
        violations = await page.evaluate(
            """async () => {
                const result = await axe.run(document, {resultTypes: ['violations']});
                return result.violations
                    .filter(v => v.impact === 'serious' || v.impact === 'critical')
                    .map(v => `${v.id} (${v.impact}): ${v.nodes.map(n => n.target).join(' ')}`);
            }"""
        )
        self.checked.append(page.url)
        assert violations == [], f"accessibility on {page.url}: {violations}"


def cell(html: str, status: str) -> str:
    match = re.search(rf'data-status="{status}">([^<]*)<', html)
    assert match is not None
    return match.group(1).strip().replace(",", "")


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    wanted = os.environ.get("LEADSYNC_SCREENSHOT_DIR")
    directory = Path(wanted) if wanted else tmp_path / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@contextlib.asynccontextmanager
async def browser_page(base_url: str) -> AsyncIterator[Any]:
    async_playwright = _require_browser()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            context = await browser.new_context(
                base_url=base_url, viewport={"width": 1280, "height": 860}
            )
            page = await context.new_page()
            page.set_default_timeout(20_000)
            yield page
        finally:
            await browser.close()


async def test_an_operator_finds_and_fixes_refused_leads_in_the_console(
    engine: AsyncEngine,
    db_url: str,
    sessions: Sessions,
    sandbox_factory: SandboxFactory,
    screenshots: Path,
    tmp_path: Path,
) -> None:
    _require_browser()
    sandbox = sandbox_factory(rate_limit="2000/1s", reject_emails=REJECT, seed=3)
    plain_url = db_url.replace("+asyncpg", "")
    log_path = tmp_path / "serve.log"
    axe = Axe()
    # A transient failure from long ago, which the CSRF check below must leave alone.
    (stale,) = await insert_leads(
        sessions,
        [
            lead_row(
                900,
                email="stale.outage@example.com",
                hubspot_sync_status="FAILED",
                hubspot_sync_attempts=10,
                hubspot_last_http_status=503,
                hubspot_error="HTTP 503: upstream unavailable",
                hubspot_next_attempt_at=None,
                last_hubspot_attempt_at=utcnow(),
            )
        ],
    )
    try:
        with serve(plain_url, sandbox.url, log_path) as url:
            await wait_for(lambda: ready(url), timeout=60, interval=0.2)
            async with httpx.AsyncClient(base_url=url, timeout=10) as http:
                bodies = [
                    {"email": f"ana{i}@example.com", "firstname": f"Ana{i}"} for i in range(6)
                ]
                bodies += [{"email": f"refused{i}@example.com", "firstname": "R"} for i in range(3)]
                refused_ids = []
                for body in bodies:
                    response = await http.post("/leads", json=body)
                    assert response.status_code == 201, response.text
                    if body["email"].startswith("refused"):
                        refused_ids.append(response.json()["id"])

            async def settled() -> bool:
                counts = await count_by_status(sessions)
                return counts["SYNCED"] == 6 and counts["FAILED"] == 4

            await wait_for(settled, timeout=60, interval=0.2)

            async with browser_page(url) as page:
                # --- log in: a wrong token, then the right one -----------------------------
                await page.goto("/console")
                assert page.url.endswith("/console/login?next=%2Fconsole")
                await axe.check(page)
                await page.get_by_label("Internal token").fill("this-is-not-the-token")
                await page.get_by_role("button", name="Log in").click()
                await page.get_by_text("That is not the token.").wait_for()
                await page.get_by_label("Internal token").fill(INTERNAL_TOKEN)
                await page.get_by_role("button", name="Log in").click()
                await page.get_by_role("heading", name="Overview").wait_for()
                assert INTERNAL_TOKEN not in page.url
                assert INTERNAL_TOKEN not in await page.content()

                # --- the overview shows the database's counts ------------------------------
                html = await page.content()
                async with sessions() as session:
                    counts = await overview.status_counts(session)
                for status, count in counts.items():
                    assert cell(html, status) == str(count.value), status
                assert cell(html, "FAILED") == "4"
                await axe.check(page)
                await page.screenshot(
                    path=str(screenshots / "console-overview.png"), full_page=True
                )

                # --- readable on a phone: no page wider than the screen --------------------
                await page.set_viewport_size({"width": 390, "height": 844})
                for path in ("/console", "/console/failed", "/console/pause", "/console/erasures"):
                    await page.goto(path)
                    overflow = await page.evaluate(
                        "document.documentElement.scrollWidth - window.innerWidth"
                    )
                    assert overflow <= 0, f"{path} is {overflow}px wider than a phone"
                await page.set_viewport_size({"width": 1280, "height": 860})
                await page.goto("/console")

                # --- the failed queue: the refused leads with their error ------------------
                await page.get_by_role("link", name="Failed queue").first.click()
                await page.get_by_role("heading", name="Failed queue").wait_for()
                rows = page.locator("tr[data-lead-id]")
                assert await rows.count() == 4
                first_refused = page.locator(f'tr[data-lead-id="{refused_ids[0]}"]')
                assert "INVALID_EMAIL" in await first_refused.inner_text()
                assert "refused0@example.com" in await first_refused.inner_text()
                await axe.check(page)
                await page.screenshot(path=str(screenshots / "console-failed.png"), full_page=True)

                # --- filters and the email search narrow it --------------------------------
                await page.get_by_label("HTTP status").select_option("400")
                await page.get_by_role("button", name="Apply").click()
                await page.get_by_text("Showing HTTP status 400").wait_for()
                assert sorted(
                    [int(i) for i in await rows.evaluate_all("rs => rs.map(r => r.dataset.leadId)")]
                ) == sorted(refused_ids)
                await page.get_by_label("Email contains").fill("refused1@")
                await page.get_by_role("button", name="Apply").click()
                await page.get_by_text("email containing “refused1@”").wait_for()
                assert await rows.count() == 1
                assert "refused1@" not in page.url  # the search went in the body
                await page.get_by_role("link", name="Clear").click()
                await page.get_by_label("Error class").select_option("HTTP 503")
                await page.get_by_role("button", name="Apply").click()
                await page.get_by_text("Showing error class HTTP 503").wait_for()
                assert await rows.count() == 1
                await page.get_by_role("link", name="Clear").click()

                # --- resync the refused leads, fix the rule, watch them sync ---------------
                for lead_id in refused_ids:
                    await page.get_by_label(f"Select lead {lead_id}").check()
                await page.get_by_role("button", name="Resync selected").click()
                await page.get_by_text(
                    f"Resync {len(refused_ids)} FAILED leads (the selected leads)?"
                ).wait_for()
                await axe.check(page)
                await patch_sandbox(sandbox, {"reject_emails": None})
                await page.get_by_role("button", name=re.compile("^Yes, resync")).click()
                await page.get_by_text(f"{len(refused_ids)} lead(s) requeued.").wait_for()

                async def refused_synced() -> bool:
                    leads = [await fetch(sessions, i) for i in refused_ids]
                    return all(lead.hubspot_sync_status == "SYNCED" for lead in leads)

                await wait_for(refused_synced, timeout=60, interval=0.2)

                async def overview_shows_them() -> bool:
                    await page.goto("/console")
                    html = await page.content()
                    return cell(html, "SYNCED") == "9" and cell(html, "FAILED") == "1"

                await wait_for(overview_shows_them, timeout=30, interval=0.5)

                # --- a lead's page: its history in order, the HubSpot link -----------------
                await page.get_by_label("Lead id").fill(str(refused_ids[0]))
                await page.get_by_role("button", name="Open").click()
                await page.get_by_role(
                    "heading", name=re.compile(f"^Lead {refused_ids[0]}")
                ).wait_for()
                outcomes = await page.locator(
                    "table.history tbody tr td:nth-child(3)"
                ).all_inner_texts()
                # Refused, then synced; a loaded machine may add a retry (a timeout) between.
                assert (outcomes[0], outcomes[-1]) == ("failed", "synced"), outcomes
                async with httpx.AsyncClient(base_url=url, timeout=10) as http:
                    recorded = (
                        await http.get(
                            f"/internal/leads/{refused_ids[0]}",
                            headers={"Authorization": f"Bearer {INTERNAL_TOKEN}"},
                        )
                    ).json()["history"]
                # The page shows exactly the history the database holds, oldest first.
                assert outcomes == [row["outcome"] for row in recorded]
                times = await page.locator(
                    "table.history tbody tr td:nth-child(1)"
                ).all_inner_texts()
                assert times == sorted(times)
                link = page.get_by_role("link", name="Open the contact in HubSpot")
                assert f"/contacts/{PORTAL_ID}/record/0-1/" in (
                    await link.get_attribute("href") or ""
                )
                await axe.check(page)
                await page.screenshot(path=str(screenshots / "console-lead.png"), full_page=True)

                await page.get_by_role("link", name="Pause controls").click()
                await page.get_by_role("heading", name="Pause controls").wait_for()
                await axe.check(page)

                # --- the erasures page (no erasure key here: requests are disabled) ----------
                await page.get_by_role("link", name="Erasures", exact=True).click()
                await page.get_by_role("heading", name="Erasures", exact=True).wait_for()
                await page.get_by_text("Erasure requests are disabled").wait_for()
                await axe.check(page)

                # --- a POST without the CSRF token is refused and changes nothing ----------
                refused = await page.request.post(
                    "/console/failed/resync",
                    form={
                        "scope": "selected",
                        "lead_id": str(stale),
                        "confirm": "yes",
                        "upto": str(stale),
                    },
                    headers={"Origin": url},
                    max_redirects=0,
                )
                assert refused.status == 403
                assert (await fetch(sessions, stale)).hubspot_sync_status == "FAILED"
                await page.goto("/console/failed")
                assert await rows.count() == 1

                # --- logout: every console URL leads to the login form ---------------------
                await page.get_by_role("button", name="Log out").click()
                await page.get_by_text("You are logged out.").wait_for()
                for path in (
                    "/console",
                    "/console/failed",
                    "/console/pause",
                    "/console/erasures",
                    f"/console/leads/{stale}",
                ):
                    await page.goto(path)
                    assert "/console/login?next=" in page.url, path
    except BaseException:
        print(log_path.read_text(errors="replace")[-6000:] if log_path.exists() else "(no log)")
        raise
    assert len(axe.checked) >= 6
