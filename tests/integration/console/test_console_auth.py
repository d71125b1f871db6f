"""The console's login, session cookie, CSRF and Origin checks and login throttle, on both
databases: in process, through the app's real routes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from leadsync.config import Settings
from leadsync.web.console.security import LOGIN_FAILURES, SESSION_COOKIE, Signer
from tests.helpers import INTERNAL_TOKEN
from tests.helpers.console import ORIGIN, csrf, failed_row, field, login, post
from tests.helpers.leads import fetch, insert_leads

Sessions = async_sessionmaker[AsyncSession]
CONSOLE_PAGES = (
    "/console",
    "/console/failed",
    "/console/pause",
    "/console/erasures",
    "/console/leads/1",
)


async def test_every_page_redirects_to_the_login_form_without_a_session(
    client_factory: Any,
) -> None:
    async with client_factory() as (_app, client):
        for path in CONSOLE_PAGES:
            response = await client.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/console/login?next=%2Fconsole")


async def test_without_an_internal_token_the_console_answers_503(
    client_factory: Any, settings_factory: Callable[..., Settings]
) -> None:
    async with client_factory(settings_factory(internal_token=None)) as (_app, client):
        for path in ("/console", "/console/login", "/console/failed"):
            response = await client.get(path)
            assert response.status_code == 503
            assert "text/html" in response.headers["content-type"]
            assert "LEADSYNC_INTERNAL_TOKEN" in response.text
        posted = await client.post("/console/login", data={"token": "x"})
        assert posted.status_code == 503


async def test_a_wrong_token_then_the_right_one(client_factory: Any) -> None:
    async with client_factory() as (_app, client):
        wrong = await login(client, "not-the-internal-token")
        assert wrong.status_code == 401
        assert "That is not the token." in wrong.text
        assert SESSION_COOKIE not in wrong.cookies
        assert (await client.get("/console")).status_code == 303

        right = await login(client)
        assert right.status_code == 303
        assert right.headers["location"] == "/console"
        cookie = right.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
        assert "Path=/console" in cookie
        assert "Secure" not in cookie  # plain HTTP here
        page = await client.get("/console")
        assert page.status_code == 200
        assert "<h1>Overview</h1>" in page.text
        for header in ("content-security-policy", "x-frame-options", "referrer-policy"):
            assert header in page.headers
        assert INTERNAL_TOKEN not in page.text
        assert INTERNAL_TOKEN not in right.headers["set-cookie"]


async def test_the_cookie_is_secure_over_https(client_factory: Any) -> None:
    async with client_factory() as (app, _client):
        import httpx

        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://console.example"
        ) as client:
            form = await client.get("/console/login")
            response = await client.post(
                "/console/login",
                data={"form_token": field(form.text, "form_token"), "token": INTERNAL_TOKEN},
                headers={"Origin": "https://console.example"},
            )
    assert response.status_code == 303
    assert "Secure" in response.headers["set-cookie"]


async def test_forged_and_expired_sessions_are_refused(client_factory: Any) -> None:
    past = Signer(INTERNAL_TOKEN, clock=lambda: time.time() - 10_000)
    _session, expired = past.new_session(lifetime_seconds=60)
    _session, other_key = Signer("another-token-of-16-chars").new_session(lifetime_seconds=600)
    _session, good = Signer(INTERNAL_TOKEN).new_session(lifetime_seconds=600)
    sid, expiry, signature = good.split(".")
    tampered = f"{sid}.{int(expiry) + 86400}.{signature}"
    async with client_factory() as (_app, client):
        for cookie in (expired, other_key, tampered, "garbage", good):
            client.cookies.set(SESSION_COOKIE, cookie, path="/console")
            response = await client.get("/console")
            assert response.status_code == (200 if cookie == good else 303), cookie


async def test_a_post_without_the_csrf_token_or_from_elsewhere_changes_nothing(
    client_factory: Any, sessions: Sessions
) -> None:
    (lead_id,) = await insert_leads(sessions, [failed_row(1)])
    async with client_factory() as (_app, client):
        await login(client)
        token = await csrf(client)
        body = {"scope": "selected", "lead_id": lead_id, "confirm": "yes", "upto": lead_id}

        missing = await post(client, "/console/failed/resync", body)
        wrong = await post(client, "/console/failed/resync", body | {"csrf_token": "x" * 43})
        foreign = await post(
            client,
            "/console/failed/resync",
            body | {"csrf_token": token},
            origin="https://evil.example",
        )
        null_origin = await post(
            client, "/console/failed/resync", body | {"csrf_token": token}, origin="null"
        )
        pause = await post(client, "/console/pause", {"action": "pause", "confirm": "yes"})

        for response in (missing, wrong, foreign, null_origin, pause):
            assert response.status_code == 403
            assert "text/html" in response.headers["content-type"]
        assert (await fetch(sessions, lead_id)).hubspot_sync_status == "FAILED"
        assert "running" in (await client.get("/console/pause")).text

        done = await post(client, "/console/failed/resync", body | {"csrf_token": token})
        assert done.status_code == 303
        assert (await fetch(sessions, lead_id)).hubspot_sync_status == "PENDING"


async def test_a_token_from_another_session_is_refused(
    client_factory: Any, sessions: Sessions
) -> None:
    (lead_id,) = await insert_leads(sessions, [failed_row(1)])
    async with client_factory() as (_app, first), client_factory() as (_app2, second):
        await login(first)
        await login(second)
        token = await csrf(first)
        response = await post(
            second,
            "/console/failed/resync",
            {
                "csrf_token": token,
                "scope": "selected",
                "lead_id": lead_id,
                "confirm": "yes",
                "upto": lead_id,
            },
        )
    assert response.status_code == 403
    assert (await fetch(sessions, lead_id)).hubspot_sync_status == "FAILED"


async def test_login_attempts_are_throttled_per_client(client_factory: Any) -> None:
    async with client_factory() as (_app, client):
        for _ in range(LOGIN_FAILURES):
            assert (await login(client, "wrong-token-guess-0000")).status_code == 401
        throttled = await login(client)  # even the right token waits now
        assert throttled.status_code == 429
        assert int(throttled.headers["retry-after"]) > 0
        assert SESSION_COOKIE not in throttled.cookies
        assert (await client.get("/console")).status_code == 303


async def test_a_login_form_from_elsewhere_is_refused(client_factory: Any) -> None:
    async with client_factory() as (_app, client):
        form = await client.get("/console/login")
        no_token = await client.post(
            "/console/login", data={"token": INTERNAL_TOKEN}, headers={"Origin": ORIGIN}
        )
        foreign = await client.post(
            "/console/login",
            data={"form_token": field(form.text, "form_token"), "token": INTERNAL_TOKEN},
            headers={"Origin": "https://evil.example"},
        )
    assert no_token.status_code == 403
    assert foreign.status_code == 403


async def test_logout_ends_the_session(client_factory: Any) -> None:
    async with client_factory() as (_app, client):
        await login(client)
        token = await csrf(client)
        out = await post(client, "/console/logout", {"csrf_token": token})
        assert out.status_code == 303
        assert out.headers["location"] == "/console/login?logged_out=1"
        for path in CONSOLE_PAGES:
            assert (await client.get(path)).status_code == 303


async def test_the_token_never_reaches_a_log_line(
    client_factory: Any, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    async with client_factory() as (_app, client):
        await login(client, INTERNAL_TOKEN + "-typo")
        await login(client)
        token = await csrf(client)
        await post(
            client, "/console/pause", {"csrf_token": token, "action": "pause", "confirm": "yes"}
        )
    captured = capsys.readouterr()
    logs = captured.out + captured.err + caplog.text
    assert "console.login" in logs
    assert INTERNAL_TOKEN not in logs
