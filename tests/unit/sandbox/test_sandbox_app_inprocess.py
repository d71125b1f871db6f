"""create_sandbox_app in-process (httpx's ASGI transport), with a hand-moved clock."""

from __future__ import annotations

import httpx
import pytest

from leadsync.sandbox import ManualClock, SandboxConfig, create_sandbox_app, sandbox_state
from leadsync.sandbox.clock import iso
from leadsync.sandbox.middleware import ConnectionDropped

C = "/crm/v3/objects/contacts"
AUTH = {"Authorization": "Bearer sandbox-token"}


def client_for(config: SandboxConfig, clock: ManualClock) -> httpx.AsyncClient:
    app = create_sandbox_app(config, clock=clock)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox")


async def test_timestamps_come_from_the_injected_clock() -> None:
    clock = ManualClock(start=1_767_225_600.25)
    async with client_for(SandboxConfig(), clock) as http:
        created = (
            await http.post(C, json={"properties": {"email": "a@x.com"}}, headers=AUTH)
        ).json()
        clock.advance(60)
        updated = (
            await http.patch(
                f"{C}/{created['id']}", json={"properties": {"phone": "1"}}, headers=AUTH
            )
        ).json()
    assert created["createdAt"] == "2026-01-01T00:00:00.250Z"
    assert updated["updatedAt"] == "2026-01-01T00:01:00.250Z"
    assert updated["createdAt"] == created["createdAt"]


async def test_window_moves_with_the_injected_clock() -> None:
    clock = ManualClock()
    async with client_for(SandboxConfig(rate_limit="2/10s"), clock) as http:
        codes = [(await http.get(C, headers=AUTH)).status_code for _ in range(3)]
        clock.advance(10)
        codes.append((await http.get(C, headers=AUTH)).status_code)
    assert codes == [200, 200, 429, 200]


async def test_drop_without_a_socket_still_applies_then_fails_the_call() -> None:
    clock = ManualClock()
    app = create_sandbox_app(SandboxConfig(fault_drop=1.0), clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
        with pytest.raises(ConnectionDropped):
            await http.post(C, json={"properties": {"email": "a@x.com"}}, headers=AUTH)
    assert sandbox_state(app).store.get_by_email("a@x.com") is not None


def test_iso_is_hubspots_millisecond_utc_format() -> None:
    assert iso(0.0) == "1970-01-01T00:00:00.000Z"
    assert iso(1_767_225_600.999) == "2026-01-01T00:00:00.999Z"
