"""POST /_sandbox/inject: canned answers for the next CRM requests (in-process, ASGI)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from leadsync.sandbox import ManualClock, SandboxConfig, create_sandbox_app, sandbox_state
from leadsync.sandbox.inject import InjectedResponse, InjectionQueue
from leadsync.sandbox.state import SandboxState

C = "/crm/v3/objects/contacts"
AUTH = {"Authorization": "Bearer sandbox-token"}
ADA = {"properties": {"email": "ada@example.com"}}
LOCKED = {"status": "error", "message": "Locked", "correlationId": "c-1", "category": "LOCKED"}


@pytest.fixture
def app() -> FastAPI:
    return create_sandbox_app(SandboxConfig(), clock=ManualClock())


@pytest.fixture
def state(app: FastAPI) -> SandboxState:
    return sandbox_state(app)


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        yield client


async def test_next_crm_request_gets_the_injected_answer_then_normal_service(
    http: httpx.AsyncClient, state: SandboxState
) -> None:
    queued = await http.post(
        "/_sandbox/inject", json={"status": 423, "json": LOCKED, "headers": {"Retry-After": "3"}}
    )
    locked = await http.post(C, json=ADA, headers=AUTH)
    created = await http.post(C, json=ADA, headers=AUTH)

    assert (queued.status_code, queued.json()) == (201, {"pending": 1})
    assert locked.status_code == 423
    assert locked.json() == LOCKED
    assert locked.headers["retry-after"] == "3"
    assert locked.headers["content-type"] == "application/json"
    assert created.status_code == 201
    assert len(state.store) == 1  # the injected answer wrote nothing


async def test_injected_answer_comes_before_auth_and_limits(http: httpx.AsyncClient) -> None:
    await http.patch("/_sandbox/config", json={"rate_limit": "1/10s"})
    await http.get(C, headers=AUTH)  # spends the only request of the window
    await http.post("/_sandbox/inject", json={"status": 500, "json": {"message": "boom"}})

    injected = await http.post(C, json=ADA)  # no token at all
    await http.post("/_sandbox/inject", json={"status": 503, "content": ""})
    still_injected = await http.get(C, headers=AUTH)
    limited = await http.get(C, headers=AUTH)

    assert injected.status_code == 500
    assert still_injected.status_code == 503
    assert limited.status_code == 429


async def test_times_and_order(http: httpx.AsyncClient) -> None:
    await http.post("/_sandbox/inject", json={"status": 502, "times": 2})
    await http.post("/_sandbox/inject", json={"status": 504})
    stats = (await http.get("/_sandbox/stats")).json()  # the control API takes none

    codes = [(await http.get(C, headers=AUTH)).status_code for _ in range(4)]

    assert stats["injections_pending"] == 3
    assert codes == [502, 502, 504, 200]
    after = (await http.get("/_sandbox/stats")).json()
    assert (after["injected"], after["injections_pending"]) == (3, 0)
    assert after["requests"]["list"] == {"502": 2, "504": 1, "200": 1}


async def test_raw_content_is_sent_as_is(http: httpx.AsyncClient) -> None:
    html = "<html><body>Bad Gateway</body></html>"
    await http.post(
        "/_sandbox/inject",
        json={"status": 502, "content": html, "headers": {"Content-Type": "text/html"}},
    )
    await http.post("/_sandbox/inject", json={"status": 404, "content": ""})

    proxy = await http.post(C, json=ADA, headers=AUTH)
    empty = await http.patch(f"{C}/1", json=ADA, headers=AUTH)

    assert (proxy.status_code, proxy.text) == (502, html)
    assert proxy.headers["content-type"] == "text/html"
    assert (empty.status_code, empty.content) == (404, b"")
    assert "content-type" not in empty.headers


async def test_delete_and_reset_drop_pending_answers(http: httpx.AsyncClient) -> None:
    await http.post("/_sandbox/inject", json={"status": 500, "times": 5})
    cleared = await http.delete("/_sandbox/inject")
    after_delete = await http.get(C, headers=AUTH)
    await http.post("/_sandbox/inject", json={"status": 500})
    await http.post("/_sandbox/reset")
    after_reset = await http.get(C, headers=AUTH)

    assert cleared.json() == {"pending": 0}
    assert (after_delete.status_code, after_reset.status_code) == (200, 200)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": 101}, "status"),
        ({"status": 500, "times": 0}, "times"),
        ({"status": 500, "json": {}, "content": "x"}, "either json or content"),
        ({"status": 500, "body": "x"}, "body"),
        ({"json": {}}, "status is required when action is respond"),
        ({"action": "explode"}, "action"),
        ({"action": "drop", "status": 500}, "status only applies to action respond, not drop"),
        ({"action": "hang", "json": {}, "headers": {"a": "b"}}, "json, headers only apply"),
        ({"action": "delay"}, "delay_ms is required when action is delay"),
        ({"action": "delay", "delay_ms": 0}, "delay_ms"),
        ({"action": "drop", "delay_ms": 5}, "delay_ms only applies to action delay"),
        ({"action": "delay", "delay_ms": 5, "hang_seconds": 1}, "hang_seconds only applies"),
        ({"action": "hang", "hang_seconds": -1}, "hang_seconds"),
        ({"status": 500, "endpoints": ["contacts"]}, "endpoints"),
        ({"status": 500, "endpoints": []}, "endpoints must name at least one endpoint"),
        ({"action": "drop", "times": 10_001}, "times"),
    ],
)
async def test_invalid_injections_are_refused(
    http: httpx.AsyncClient, state: SandboxState, body: dict[str, object], field: str
) -> None:
    refused = await http.post("/_sandbox/inject", json=body)

    assert refused.status_code == 400
    assert refused.json()["category"] == "VALIDATION_ERROR"
    assert field in refused.json()["message"]
    assert len(state.injections) == 0


def test_queue_counts_requests_left() -> None:
    queue = InjectionQueue()
    queue.push(InjectedResponse(status=500, times=2))
    queue.push(InjectedResponse.model_validate({"status": 429, "json": {"policyName": "DAILY"}}))

    assert len(queue) == 3
    taken = [queue.take("list") for _ in range(4)]
    assert [item.status if item else None for item in taken] == [500, 500, 429, None]
    assert taken[2] is not None
    assert taken[2].json_body == {"policyName": "DAILY"}


def test_injected_response_is_frozen_and_strict() -> None:
    item = InjectedResponse(status=503)
    with pytest.raises(ValidationError):
        item.status = 500  # type: ignore[misc]
    with pytest.raises(ValidationError):
        InjectedResponse.model_validate({"status": 503, "headers": {"Retry-After": 30}})


def test_queue_gives_each_request_the_oldest_injection_for_its_endpoint() -> None:
    queue = InjectionQueue()
    queue.push(InjectedResponse(action="drop", endpoints=frozenset({"batch_upsert"}), times=2))
    queue.push(InjectedResponse(status=503))
    queue.push(InjectedResponse(action="delay", delay_ms=10, endpoints=frozenset({"create"})))

    taken = [queue.take(e) for e in ("create", "create", "batch_upsert", "list", "batch_upsert")]

    assert [item.action if item else None for item in taken] == [
        "respond",
        "delay",
        "drop",
        None,
        "drop",
    ]
    assert len(queue) == 0


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [
        ({"retry-after": "2.5"}, 2.5),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),
        ({}, None),
    ],
)
def test_injected_answer_knows_its_retry_after(
    headers: dict[str, str], retry_after: float | None
) -> None:
    assert InjectedResponse(status=503, headers=headers).retry_after == retry_after


def test_injected_answer_knows_its_policy_name() -> None:
    daily = InjectedResponse.model_validate({"status": 429, "json": {"policyName": "DAILY"}})
    assert daily.policy == "DAILY"
    assert InjectedResponse.model_validate({"status": 429, "json": [1]}).policy is None
    assert InjectedResponse(status=429, content="x").policy is None
