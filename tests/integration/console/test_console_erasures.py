"""The console's erasures page on both databases: the list and its pages, the request with its
confirmation, the retry of a FAILED erasure, the CSRF checks, and no address where it does not
belong (a URL, the list, a flash)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from leadsync.config import Settings
from leadsync.store.db import transaction, utcnow
from leadsync.store.tables import Erasure
from leadsync.web.console.erasures import ERASURE_PAGE_SIZE
from tests.helpers.console import csrf, field, login, post
from tests.helpers.leads import fetch, insert_leads, lead_row

Sessions = async_sessionmaker[AsyncSession]
KEY = "console-test-erasure-key-0123"


@pytest.fixture
def keyed(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(erasure_key=KEY)


def listed(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-erasure-id="(\d+)"', html)]


def row(html: str, erasure_id: int) -> str:
    match = re.search(rf'<tr data-erasure-id="{erasure_id}">(.*?)</tr>', html, re.S)
    assert match is not None, erasure_id
    return match.group(1)


async def insert_erasures(sessions: Sessions, count: int, **columns: Any) -> list[int]:
    """Erasure rows as requests leave them (REQUESTED unless `columns` say otherwise)."""
    now = utcnow()
    rows = [
        {
            "email_hash": f"{i:064x}",
            "email": f"gone{i}@example.com",
            "status": "REQUESTED",
            "requested_at": now - dt.timedelta(minutes=count - i),
            "requested_by": "api",
            "updated_at": now,
            "attempts": 0,
            "next_attempt_at": now + dt.timedelta(days=1),  # never due in these tests
            "leads_cancelled": 1,
        }
        | columns
        for i in range(count)
    ]
    async with transaction(sessions) as session:
        result = await session.execute(
            insert(Erasure).returning(Erasure.id, sort_by_parameter_order=True), rows
        )
        return [r[0] for r in result.all()]


async def erasure_rows(sessions: Sessions) -> list[Erasure]:
    async with sessions() as session:
        return list((await session.execute(select(Erasure).order_by(Erasure.id))).scalars())


async def test_the_page_lists_erasures_newest_first_without_addresses(
    client_factory: Any, sessions: Sessions, keyed: Settings
) -> None:
    (failed,) = await insert_erasures(
        sessions,
        1,
        status="FAILED",
        attempts=3,
        http_status=400,
        error="the contact is protected",
        next_attempt_at=None,
    )
    (done,) = await insert_erasures(
        sessions,
        1,
        email_hash="f" * 64,
        email=None,
        status="COMPLETED",
        leads_scrubbed=2,
        leads_cancelled=2,
        returned_at=utcnow(),
        returned_lead_id=77,
        next_attempt_at=None,
    )
    async with client_factory(keyed) as (_app, client):
        await login(client)
        page = await client.get("/console/erasures")
        assert page.status_code == 200
        html = page.text
        assert listed(html) == [done, failed]
        assert "@example.com" not in html  # no address, of any erasure
        failed_row = row(html, failed)
        assert "FAILED" in failed_row
        assert "HTTP 400: the contact is protected" in failed_row
        assert f'action="/console/erasures/{failed}/retry"' in failed_row
        assert 'aria-label="Retry erasure' in failed_row
        done_row = row(html, done)
        assert "COMPLETED" in done_row
        assert 'href="/console/leads/77">lead 77</a>' in done_row
        assert "retry" not in done_row.lower()
        assert 'href="/console/erasures" aria-current="page">Erasures</a>' in html
        assert 'id="erase-email"' in html
        assert '<label for="erase-email">' in html

        overview = (await client.get("/console")).text
        assert re.search(r'data-testid="erasures-open"><a href="/console/erasures">1</a>', overview)
        assert re.search(r'data-testid="erasures-failed"><a [^>]*>1</a>', overview)


async def test_keyset_pages_and_the_status_filter(
    client_factory: Any, sessions: Sessions, engine: AsyncEngine
) -> None:
    ids = await insert_erasures(sessions, ERASURE_PAGE_SIZE + 3)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE erasures SET status = 'FAILED' WHERE id IN (:a, :b)"),
            {"a": ids[0], "b": ids[10]},
        )
    newest = sorted(ids, reverse=True)
    async with client_factory() as (_app, client):
        await login(client)
        first = (await client.get("/console/erasures")).text
        assert listed(first) == newest[:ERASURE_PAGE_SIZE]
        older = re.search(r'<a href="(/console/erasures\?[^"]*)">Older erasures</a>', first)
        assert older is not None
        assert older.group(1) == f"/console/erasures?before={newest[ERASURE_PAGE_SIZE - 1]}"
        second = (await client.get(older.group(1).replace("&amp;", "&"))).text
        assert listed(second) == newest[ERASURE_PAGE_SIZE:]
        assert "Older erasures" not in second

        failed = (await client.get("/console/erasures?status=FAILED")).text
        assert listed(failed) == [ids[10], ids[0]]
        assert '<option value="FAILED" selected>' in failed
        assert (await client.get("/console/erasures?status=COMPLETED")).status_code == 200
        for bad in ("status=failed", "status=ERASED", "before=abc", "before=0", "before=-1"):
            response = await client.get(f"/console/erasures?{bad}")
            assert response.status_code == 400, bad


async def test_a_request_is_confirmed_first_then_cancels_the_leads(
    client_factory: Any, sessions: Sessions, keyed: Settings
) -> None:
    ids = await insert_leads(
        sessions,
        [
            lead_row(0, email="ana@example.com"),
            lead_row(1, email="ana@example.com"),
            lead_row(2, email="bob@example.com"),
        ],
    )
    async with client_factory(keyed) as (app, client):
        calls: list[int] = []
        app.state.ctx.wake_worker = lambda: calls.append(1)
        await login(client)
        token = await csrf(client, "/console/erasures")

        asked = await post(
            client, "/console/erasures/request", {"csrf_token": token, "email": "Ana@Example.com"}
        )
        assert asked.status_code == 200
        assert "This cannot be undone." in asked.text
        assert "2 stored leads" in asked.text
        # The address is shown again only in the form being confirmed, as typed.
        assert asked.text.count("Ana@Example.com") == 1
        assert field(asked.text, "email") == "Ana@Example.com"
        assert field(asked.text, "confirm") == "yes"
        assert await erasure_rows(sessions) == []  # asking changes nothing
        assert (await fetch(sessions, ids[0])).hubspot_sync_status == "PENDING"

        done = await post(
            client,
            "/console/erasures/request",
            {"csrf_token": token, "email": "Ana@Example.com", "confirm": "yes"},
        )
        assert done.status_code == 303
        location = done.headers["location"]
        assert "ana" not in location.lower()
        (erasure,) = await erasure_rows(sessions)
        assert location == f"/console/erasures?requested={erasure.id}&new=1"
        assert (erasure.requested_by, erasure.status, erasure.leads_cancelled) == (
            "console",
            "REQUESTED",
            2,
        )
        assert calls == [1]
        shown = (await client.get(location)).text
        assert f"Erasure {erasure.id} is requested" in shown
        assert "ana@example.com" not in shown.lower()
        assert listed(shown) == [erasure.id]

        again = await post(
            client,
            "/console/erasures/request",
            {"csrf_token": token, "email": "ana@example.com", "confirm": "yes"},
        )
        assert again.headers["location"] == f"/console/erasures?requested={erasure.id}&new=0"
        assert "was reused" in (await client.get(again.headers["location"])).text
    statuses = [(await fetch(sessions, i)).hubspot_sync_status for i in ids]
    assert statuses == ["ERASED", "ERASED", "PENDING"]


async def test_a_request_without_the_csrf_token_or_from_elsewhere_changes_nothing(
    client_factory: Any, sessions: Sessions, keyed: Settings
) -> None:
    (lead_id,) = await insert_leads(sessions, [lead_row(0, email="ana@example.com")])
    (failed,) = await insert_erasures(sessions, 1, status="FAILED", next_attempt_at=None)
    async with client_factory(keyed) as (_app, client):
        await login(client)
        token = await csrf(client, "/console/erasures")
        body = {"email": "ana@example.com", "confirm": "yes"}
        responses = [
            await post(client, "/console/erasures/request", body),
            await post(client, "/console/erasures/request", body | {"csrf_token": "x" * 43}),
            await post(
                client,
                "/console/erasures/request",
                body | {"csrf_token": token},
                origin="https://evil.example",
            ),
            await post(client, f"/console/erasures/{failed}/retry", {"confirm": "yes"}),
            await post(
                client,
                f"/console/erasures/{failed}/retry",
                {"csrf_token": token},
                origin="https://evil.example",
            ),
        ]
        for response in responses:
            assert response.status_code == 403
            assert "text/html" in response.headers["content-type"]
    assert (await fetch(sessions, lead_id)).hubspot_sync_status == "PENDING"
    assert [(e.id, e.status) for e in await erasure_rows(sessions)] == [(failed, "FAILED")]


async def test_a_bad_address_is_shown_in_its_form_with_the_reason(
    client_factory: Any, sessions: Sessions, keyed: Settings
) -> None:
    async with client_factory(keyed) as (_app, client):
        await login(client)
        token = await csrf(client, "/console/erasures")
        for typed, reason in [
            ("not-an-address", "has no @"),
            ("", "is empty"),
            ("ana@example.test", "is not a valid email address"),
            ("a" * 300 + "@example.com", "is longer than 254 characters"),
        ]:
            response = await post(
                client, "/console/erasures/request", {"csrf_token": token, "email": typed}
            )
            assert response.status_code == 400, typed
            assert reason in response.text, typed
            assert 'aria-invalid="true"' in response.text
            if typed:
                assert field(response.text, "email") == typed
    assert await erasure_rows(sessions) == []


async def test_without_an_erasure_key_requests_are_refused(
    client_factory: Any, sessions: Sessions
) -> None:
    (lead_id,) = await insert_leads(sessions, [lead_row(0, email="ana@example.com")])
    async with client_factory() as (_app, client):  # no LEADSYNC_ERASURE_KEY
        await login(client)
        page = await client.get("/console/erasures")
        assert 'id="no-key"' in page.text
        assert "LEADSYNC_ERASURE_KEY" in page.text
        token = field(page.text, "csrf_token")
        for confirm in ("", "yes"):
            response = await post(
                client,
                "/console/erasures/request",
                {"csrf_token": token, "email": "ana@example.com", "confirm": confirm},
            )
            assert response.status_code == 503
            assert "LEADSYNC_ERASURE_KEY" in response.text
    assert (await fetch(sessions, lead_id)).hubspot_sync_status == "PENDING"
    assert await erasure_rows(sessions) == []


async def test_retry_of_a_failed_erasure(client_factory: Any, sessions: Sessions) -> None:
    failed, open_one = await insert_erasures(sessions, 2)
    async with sessions.begin() as session:
        row_ = await session.get(Erasure, failed)
        assert row_ is not None
        row_.status, row_.attempts, row_.next_attempt_at = "FAILED", 4, None
    async with client_factory() as (app, client):
        calls: list[int] = []
        app.state.ctx.wake_worker = lambda: calls.append(1)
        await login(client)
        token = await csrf(client, "/console/erasures")

        done = await post(client, f"/console/erasures/{failed}/retry", {"csrf_token": token})
        assert done.status_code == 303
        assert done.headers["location"] == f"/console/erasures?retried={failed}"
        assert calls == [1]
        page = (await client.get(done.headers["location"])).text
        assert f"Erasure {failed} is queued again" in page
        assert "REQUESTED" in row(page, failed)
        assert "/retry" not in row(page, failed)

        refused = await post(client, f"/console/erasures/{open_one}/retry", {"csrf_token": token})
        assert refused.status_code == 409
        assert "not FAILED" in refused.text
        for missing in ("999999", "abc", "0"):
            response = await post(
                client, f"/console/erasures/{missing}/retry", {"csrf_token": token}
            )
            assert response.status_code == 404, missing
        assert calls == [1]
    rows = {e.id: e for e in await erasure_rows(sessions)}
    assert (rows[failed].status, rows[failed].attempts) == ("REQUESTED", 0)
    assert rows[open_one].status == "REQUESTED"
