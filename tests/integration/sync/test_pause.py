"""Pausing and resuming the sync by hand (maintenance) and after a credential pause: the use
cases the console and the CLI share, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from leadsync.config import Settings
from leadsync.engine.gate import Gate, Paused, PauseReason
from leadsync.sandbox.server import RunningSandbox
from leadsync.usecases.sync import pause_sync, resume_sync, sync_status
from tests.helpers import wait_for
from tests.helpers.cli import leadsync
from tests.helpers.worker import new_lead, sandbox_worker, status_of

Sessions = async_sessionmaker[AsyncSession]


def gate_of(sessions: Sessions, settings: Settings) -> Gate:
    return Gate(sessions=sessions, limit=settings.rate_limit, zone=settings.account_zone)


async def test_a_pause_by_hand_holds_every_worker_until_resumed(
    sessions: Sessions, settings_factory: Callable[..., Settings]
) -> None:
    settings = settings_factory()
    gate = gate_of(sessions, settings)

    result = await pause_sync(sessions, settings=settings, actor="s-1234", note="db upgrade")

    assert result.detail == "paused by hand (s-1234): db upgrade"
    with pytest.raises(Paused):
        await gate.reserve()
    with pytest.raises(Paused):
        await gate.check()
    # HubSpot's own pauses do not replace it meanwhile.
    await gate.pause_for_rate_limit(
        retry_after_seconds=1, interval_seconds=None, daily=False, detail="429"
    )
    await gate.pause_for_auth(detail="401")
    report = await sync_status(sessions, settings=settings)
    assert (report.gate.paused, report.gate.reason) == (True, "manual")
    assert report.gate.detail == "paused by hand (s-1234): db upgrade"

    resumed = await resume_sync(sessions, settings=settings, actor="s-1234")

    assert resumed.lifted is PauseReason.MANUAL
    assert resumed.still_paused is None
    await gate.check()
    await gate.reserve()
    assert not (await sync_status(sessions, settings=settings)).gate.paused


async def test_resume_after_an_auth_pause_keeps_the_token_on_trial(
    sessions: Sessions, settings_factory: Callable[..., Settings]
) -> None:
    settings = settings_factory()
    gate = gate_of(sessions, settings)
    await gate.pause_for_auth(detail="HTTP 401 INVALID_AUTHENTICATION: expired")

    resumed = await resume_sync(sessions, settings=settings, actor="cli")

    assert resumed.lifted is PauseReason.AUTH
    state = await gate.state()
    assert state.pause_reason is None
    assert state.auth_failures == 1  # kept until a write works: a bad token backs off further
    await gate.reserve()


async def test_a_hubspot_pause_is_not_lifted_by_hand(
    sessions: Sessions, settings_factory: Callable[..., Settings]
) -> None:
    settings = settings_factory()
    gate = gate_of(sessions, settings)
    until = await gate.pause_for_rate_limit(
        retry_after_seconds=60, interval_seconds=None, daily=False, detail="429"
    )

    resumed = await resume_sync(sessions, settings=settings, actor="cli")

    assert resumed.lifted is None
    assert resumed.still_paused is PauseReason.RATE_LIMIT
    assert resumed.paused_until == until
    with pytest.raises(Paused):
        await gate.check()


async def test_no_lead_reaches_hubspot_while_paused_by_hand(
    sessions: Sessions,
    sandbox: RunningSandbox,
    sandbox_settings: Callable[..., Settings],
) -> None:
    settings = sandbox_settings()
    await pause_sync(sessions, settings=settings, actor="cli")
    refusals: list[str] = []
    async with sandbox_worker(settings, sessions) as worker:
        reserve = worker.gate.reserve

        async def counted_reserve() -> dt.datetime:
            try:
                return await reserve()
            except Paused as paused:
                refusals.append(paused.reason)
                raise

        worker.gate.reserve = counted_reserve  # type: ignore[method-assign]
        lead_id = await new_lead(sessions)
        worker.wake()
        # The worker found the lead due and asked the gate twice: held, nothing was sent.
        await wait_for(lambda: len(refusals) >= 2, timeout=15)
        assert set(refusals) == {"manual"}
        assert len(sandbox.state.store) == 0
        assert (await status_of(sessions, lead_id, "PENDING")()) is not None
        await resume_sync(sessions, settings=settings, actor="cli")
        await wait_for(status_of(sessions, lead_id), timeout=20)


async def test_cli_pause_status_resume(db_url: str, sessions: Sessions) -> None:
    code, out, err = await leadsync(db_url, "pause", "--yes", "--note", "ticket 42")
    assert code == 0, err
    assert out.strip() == "sync paused by hand; `leadsync resume` lifts it"
    assert "sync.gate.paused_by_hand" in err
    assert "actor=cli" in err

    code, out, err = await leadsync(db_url, "status", "--json")
    assert code == 0, err
    gate = json.loads(out)["gate"]
    assert (gate["paused"], gate["reason"]) == (True, "manual")
    assert gate["detail"] == "paused by hand (cli): ticket 42"

    code, out, err = await leadsync(db_url, "resume", "--yes")
    assert code == 0, err
    assert out.strip() == "sync resumed (lifted the manual pause)"
    code, out, err = await leadsync(db_url, "resume", "--yes")
    assert (code, out.strip()) == (0, "the sync was not paused")


async def test_cli_resume_refuses_a_hubspot_pause(
    db_url: str, sessions: Sessions, settings_factory: Callable[..., Settings]
) -> None:
    settings = settings_factory()
    await gate_of(sessions, settings).pause_for_rate_limit(
        retry_after_seconds=None, interval_seconds=None, daily=True, detail="daily"
    )

    code, _out, err = await leadsync(db_url, "resume", "--yes")

    assert code == 1
    assert "paused by HubSpot (daily_limit)" in err


async def test_cli_pause_asks_for_confirmation(db_url: str, sessions: Sessions) -> None:
    code, _out, _err = await leadsync(db_url, "pause")  # no terminal: the answer is "no"

    assert code == 1
    report = await sync_status(sessions, settings=Settings(database_url=db_url))
    assert not report.gate.paused
