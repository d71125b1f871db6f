"""The console's pages with real rows on both databases: the overview's numbers, the failed
queue's filters, search, pages and resyncs, a lead's page, the pause controls."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from leadsync.config import Settings
from leadsync.engine.gate import Gate
from leadsync.store import history
from leadsync.store.db import transaction, utcnow
from leadsync.usecases import console
from tests.helpers.console import csrf, failed_row, field, login, post
from tests.helpers.leads import fetch, insert_leads, lead_row

Sessions = async_sessionmaker[AsyncSession]


def cell(html: str, status: str) -> str:
    match = re.search(rf'data-status="{status}">([^<]*)<', html)
    assert match is not None, status
    return match.group(1).strip()


def listed(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-lead-id="(\d+)"', html)]


async def test_the_overview_shows_the_databases_numbers(
    client_factory: Any, sessions: Sessions
) -> None:
    now = utcnow()
    rows = [
        lead_row(i, hubspot_sync_status="SYNCED", hubspot_next_attempt_at=None) for i in range(3)
    ]
    rows += [failed_row(3), lead_row(4, hubspot_next_attempt_at=now - dt.timedelta(minutes=5))]
    ids = await insert_leads(sessions, rows)
    async with transaction(sessions) as session:
        await history.append(
            session,
            [
                history.Attempt(ids[0], now, 1, history.SyncOutcome.SYNCED, 200),
                history.Attempt(ids[1], now, 1, history.SyncOutcome.SYNCED, 200),
                history.Attempt(
                    ids[3], now, 1, history.SyncOutcome.FAILED, 400, "INVALID_EMAIL: x"
                ),
            ],
        )
    async with client_factory() as (_app, client):
        await login(client)
        page = (await client.get("/console")).text

    assert cell(page, "SYNCED") == "3"
    assert cell(page, "FAILED") == "1"
    assert cell(page, "PENDING") == "1"
    assert cell(page, "ALL") == "5"
    assert re.search(r'data-testid="due-now">1<', page)
    assert f'href="/console/leads/{ids[4]}">lead {ids[4]}</a>' in page  # the oldest unsynced
    assert "2 synced in the last hour" in page
    assert page.count('class="bar"') == 1  # both in this minute
    assert "INVALID_EMAIL: x" in page  # the last HubSpot error
    assert 'href="/docs"' in page
    assert 'href="/metrics"' in page


async def test_the_overview_lists_workers_seen_recently(
    client_factory: Any, sessions: Sessions, settings_factory: Callable[..., Settings]
) -> None:
    from leadsync.store import workers

    now = utcnow()
    async with transaction(sessions) as session:
        await workers.heartbeat(
            session, worker_id="box:1:aa", host="box", pid=1, started_at=now, now=now
        )
        await workers.heartbeat(
            session,
            worker_id="old:2:bb",
            host="old",
            pid=2,
            started_at=now,
            now=now - dt.timedelta(hours=2),
        )
    view = await console.overview_of(sessions, settings=settings_factory())
    seen = [w.worker_id for w in view.workers]  # other tests' workers may be there too
    assert "box:1:aa" in seen
    assert "old:2:bb" not in seen


async def test_failed_queue_filters_search_and_pages(
    client_factory: Any, sessions: Sessions
) -> None:
    now = utcnow()
    rows = [
        failed_row(0, email="ana@example.com", last_hubspot_attempt_at=now),
        failed_row(
            1,
            email="bob@example.com",
            hubspot_last_http_status=None,
            hubspot_error="timed out",
            last_hubspot_attempt_at=now - dt.timedelta(days=9),
        ),
        failed_row(
            2,
            email="carla@example.com",
            hubspot_last_http_status=400,
            hubspot_error="HTTP 400 VALIDATION_ERROR: Property values were not valid",
            last_hubspot_attempt_at=now,
        ),
        lead_row(3, email="dan@example.com"),
    ]
    ana, bob, carla, _dan = await insert_leads(sessions, rows)
    async with client_factory() as (_app, client):
        await login(client)
        everything = (await client.get("/console/failed")).text
        assert listed(everything) == [carla, bob, ana]  # FAILED only, newest first
        assert "INVALID_EMAIL: bad" in everything
        by_status = (await client.get("/console/failed?http_status=400")).text
        assert listed(by_status) == [carla, ana]
        no_answer = (await client.get("/console/failed?http_status=none")).text
        assert listed(no_answer) == [bob]
        by_class = (await client.get("/console/failed?error_class=VALIDATION_ERROR")).text
        assert listed(by_class) == [carla]
        old = (await client.get("/console/failed?age=older")).text
        assert listed(old) == [bob]
        recent = (await client.get("/console/failed?age=1h")).text
        assert listed(recent) == [carla, ana]

        token = await csrf(client, "/console/failed")
        found = await post(client, "/console/failed", {"csrf_token": token, "email": "ANA@"})
        assert listed(found.text) == [ana]
        assert field(found.text, "email") == "ANA@"
        in_url = await client.get("/console/failed?email=ana")
        assert in_url.status_code == 400
        assert "never in the URL" in in_url.text
        for bad in ("http_status=abc", "age=forever", "before=-1", "http_status=99"):
            assert (await client.get(f"/console/failed?{bad}")).status_code == 400, bad

        first = await post(client, "/console/failed", {"csrf_token": token})
        assert listed(first.text) == [carla, bob, ana]


async def test_keyset_pages_of_the_failed_queue(client_factory: Any, sessions: Sessions) -> None:
    ids = await insert_leads(sessions, [failed_row(i) for i in range(console.FAILED_PAGE_SIZE + 3)])
    async with client_factory() as (_app, client):
        await login(client)
        first = (await client.get("/console/failed")).text
        assert listed(first) == sorted(ids, reverse=True)[: console.FAILED_PAGE_SIZE]
        before = field(first, "before")
        token = field(first, "csrf_token")
        second = await post(client, "/console/failed", {"csrf_token": token, "before": before})
    assert listed(second.text) == sorted(ids, reverse=True)[console.FAILED_PAGE_SIZE :]
    assert 'name="before"' not in second.text


async def test_resync_all_matching_confirms_the_count_first(
    client_factory: Any, sessions: Sessions
) -> None:
    rows = [failed_row(i) for i in range(3)]
    rows.append(failed_row(3, hubspot_last_http_status=503, hubspot_error="HTTP 503: down"))
    ids = await insert_leads(sessions, rows)
    async with client_factory() as (_app, client):
        await login(client)
        token = await csrf(client, "/console/failed")
        asked = await post(
            client,
            "/console/failed/resync",
            {"csrf_token": token, "scope": "matching", "http_status": "400"},
        )
        assert asked.status_code == 200
        assert "Resync <strong>3</strong> FAILED leads (HTTP status 400)?" in asked.text
        for lead_id in ids:  # asking changes nothing
            assert (await fetch(sessions, lead_id)).hubspot_sync_status == "FAILED"
        # A lead failing after the confirmation is not taken by it.
        (late,) = await insert_leads(sessions, [failed_row(9)])
        done = await post(
            client,
            "/console/failed/resync",
            {
                "csrf_token": token,
                "scope": "matching",
                "http_status": "400",
                "confirm": "yes",
                "upto": field(asked.text, "upto"),
            },
        )
        assert done.status_code == 303
        assert done.headers["location"] == "/console/failed?resynced=3"
        assert "3 lead(s) requeued." in (await client.get(done.headers["location"])).text
    statuses = [(await fetch(sessions, i)).hubspot_sync_status for i in [*ids, late]]
    assert statuses == ["PENDING", "PENDING", "PENDING", "FAILED", "FAILED"]


async def test_resync_selected(client_factory: Any, sessions: Sessions) -> None:
    ids = await insert_leads(sessions, [failed_row(i) for i in range(3)] + [lead_row(3)])
    async with client_factory() as (_app, client):
        await login(client)
        token = await csrf(client, "/console/failed")
        picked = {"csrf_token": token, "scope": "selected", "lead_id": [ids[0], ids[2], ids[3]]}
        asked = await post(client, "/console/failed/resync", picked)
        assert "Resync <strong>2</strong> FAILED leads (the selected leads)?" in asked.text
        none = await post(
            client, "/console/failed/resync", {"csrf_token": token, "scope": "selected"}
        )
        assert none.status_code == 400
        done = await post(
            client,
            "/console/failed/resync",
            picked | {"confirm": "yes", "upto": field(asked.text, "upto")},
        )
        assert done.headers["location"] == "/console/failed?resynced=2"
    statuses = [(await fetch(sessions, i)).hubspot_sync_status for i in ids]
    assert statuses == ["PENDING", "FAILED", "PENDING", "PENDING"]


async def test_the_lead_page(
    client_factory: Any, sessions: Sessions, settings_factory: Callable[..., Settings]
) -> None:
    (lead_id,) = await insert_leads(sessions, [failed_row(1, hubspot_id="4242", phone="+34 600")])
    now = utcnow()
    async with transaction(sessions) as session:
        await history.append(
            session,
            [
                history.Attempt(
                    lead_id,
                    now - dt.timedelta(minutes=2),
                    1,
                    history.SyncOutcome.RETRY,
                    503,
                    "HTTP 503: first outcome",
                ),
                history.Attempt(
                    lead_id,
                    now - dt.timedelta(minutes=1),
                    2,
                    history.SyncOutcome.FAILED,
                    400,
                    "INVALID_EMAIL: second outcome",
                ),
            ],
        )
    settings = settings_factory(hubspot_portal_id=123456)
    async with client_factory(settings) as (_app, client):
        await login(client)
        page = (await client.get(f"/console/leads/{lead_id}")).text
        assert 'data-column="phone">+34 600<' in page
        assert 'data-column="hubspot_lease_token">' in page  # every column, even the queue's
        assert page.index("first outcome") < page.index("second outcome")  # oldest first
        assert 'href="https://app.hubspot.com/contacts/123456/record/0-1/4242"' in page
        assert "Resync this lead" in page
        token = field(page, "csrf_token")
        done = await post(client, f"/console/leads/{lead_id}/resync", {"csrf_token": token})
        assert done.headers["location"] == f"/console/leads/{lead_id}?resynced=1"
        again = (await client.get(done.headers["location"])).text
        assert "The lead is back in the queue." in again
        assert "Resync this lead" not in again
        assert (await client.get("/console/leads/999999")).status_code == 404
        assert (await client.get("/console/leads/abc")).status_code == 404
        assert (await client.get("/console/leads?id=12x")).status_code == 400
        assert (await client.get(f"/console/leads?id={lead_id}")).headers["location"] == (
            f"/console/leads/{lead_id}"
        )
    assert (await fetch(sessions, lead_id)).hubspot_sync_status == "PENDING"


async def test_pause_and_resume_from_the_console(
    client_factory: Any, sessions: Sessions, settings_factory: Callable[..., Settings]
) -> None:
    settings = settings_factory()
    gate = Gate(sessions=sessions, limit=settings.rate_limit, zone=settings.account_zone)
    async with client_factory(settings) as (_app, client):
        await login(client)
        token = await csrf(client, "/console/pause")
        asked = await post(
            client, "/console/pause", {"csrf_token": token, "action": "pause", "note": "upgrade"}
        )
        assert "Pause the HubSpot sync for <strong>every worker</strong>" in asked.text
        assert not (await gate.state()).paused(utcnow())
        done = await post(
            client,
            "/console/pause",
            {"csrf_token": token, "action": "pause", "note": "upgrade", "confirm": "yes"},
        )
        assert done.headers["location"] == "/console/pause?done=paused"
        state = await gate.state()
        assert state.pause_reason == "manual"
        assert state.pause_detail is not None
        assert re.fullmatch(r"paused by hand \(console:[\w-]+\): upgrade", state.pause_detail)
        page = (await client.get("/console/pause")).text
        assert "PAUSED (manual)" in page
        done = await post(
            client, "/console/pause", {"csrf_token": token, "action": "resume", "confirm": "yes"}
        )
        assert done.headers["location"] == "/console/pause?done=resumed"
        assert (await gate.state()).pause_reason is None
        await gate.pause_for_auth(detail="HTTP 401: expired")
        page = (await client.get("/console/pause")).text
        assert "PAUSED (auth)" in page
        assert "Resume the sync" in page
        await post(
            client, "/console/pause", {"csrf_token": token, "action": "resume", "confirm": "yes"}
        )
        assert (await gate.state()).pause_reason is None
        bad = await post(client, "/console/pause", {"csrf_token": token, "action": "explode"})
        assert bad.status_code == 400
