"""POST /_sandbox/inject over real HTTP: drop, hang and delay actions, the endpoints filter."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from tests.helpers import wait_for

from leadsync.sandbox import RunningSandbox

C = "/crm/v3/objects/contacts"
UPSERT = C + "/batch/upsert"
# The server's event loop times sleeps to its millisecond, and `at`/`done_at` are wall-clock
# readings: a duration measured either way may come out a hair short of the one asked for.
SLACK = 0.01


def upsert(*emails: str) -> dict[str, Any]:
    return {"inputs": [{"id": e, "idProperty": "email", "properties": {}} for e in emails]}


def create(email: str) -> dict[str, Any]:
    return {"properties": {"email": email}}


def error(status: int) -> dict[str, Any]:
    message = f"HTTP {status}"
    return {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": "X",
    }


def emails(control: httpx.Client) -> list[str]:
    return sorted(c["properties"]["email"] for c in control.get("/contacts").json()["results"])


def logged(control: httpx.Client) -> list[dict[str, Any]]:
    requests: list[dict[str, Any]] = control.get("/requests").json()["requests"]
    return requests


def in_progress(control: httpx.Client, endpoint: str) -> bool:
    return any(e["endpoint"] == endpoint and e["done_at"] is None for e in logged(control))


def test_drop_applies_the_write_then_cuts_the_connection(
    client: httpx.Client, control: httpx.Client
) -> None:
    queued = control.post("/inject", json={"action": "drop", "endpoints": ["batch_upsert"]})
    assert queued.status_code == 201

    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.post(UPSERT, json=upsert("Dropped@x.com"))

    assert emails(control) == ["dropped@x.com"]
    [entry] = logged(control)
    assert (entry["status"], entry["emails"]) == ("drop", ["dropped@x.com"])
    assert entry["done_at"] >= entry["at"]
    # Taken once: the retry is served, and meets the contact it never saw created.
    retried = client.post(UPSERT, json=upsert("dropped@x.com"))
    assert retried.status_code == 200
    assert retried.json()["results"][0]["new"] is False


def test_drop_times_applies_each_dropped_write(client: httpx.Client, control: httpx.Client) -> None:
    control.post("/inject", json={"action": "drop", "times": 2, "endpoints": ["create"]})

    for email in ("a@x.com", "b@x.com"):
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            client.post(C, json=create(email))

    assert client.post(C, json=create("c@x.com")).status_code == 201
    assert emails(control) == ["a@x.com", "b@x.com", "c@x.com"]
    assert control.get("/stats").json()["requests"]["create"] == {"drop": 2, "201": 1}


async def test_hang_holds_the_request_unanswered_and_applies_nothing(
    sandbox: RunningSandbox,
    client_for: Callable[..., httpx.Client],
    control: httpx.Client,
) -> None:
    control.post("/inject", json={"action": "hang"})
    http = client_for(sandbox.token, timeout=0.3)

    with pytest.raises(httpx.ReadTimeout):
        http.post(UPSERT, json=upsert("hung@x.com"))

    # Held until the client left, then let go.
    await wait_for(lambda: logged(control)[0]["done_at"] is not None)
    [entry] = logged(control)
    assert (entry["status"], entry["emails"]) == ("timeout", ["hung@x.com"])
    # Held about as long as the client waited (it started waiting a moment before `at`).
    assert entry["done_at"] - entry["at"] >= 0.2
    assert sandbox.state.hangs.active == 0
    assert emails(control) == []
    assert http.post(UPSERT, json=upsert("hung@x.com"), timeout=5).status_code == 200


def test_hang_seconds_ends_the_hang_with_a_504(client: httpx.Client, control: httpx.Client) -> None:
    control.post("/inject", json={"action": "hang", "hang_seconds": 0.2})

    response = client.post(C, json=create("slow@x.com"))

    assert response.status_code == 504
    assert response.elapsed.total_seconds() >= 0.2 - SLACK
    assert emails(control) == []
    assert logged(control)[0]["status"] == 504


async def test_delay_serves_the_request_late_and_the_write_lands_after_the_delay(
    sandbox: RunningSandbox,
    client: httpx.Client,
    control: httpx.Client,
) -> None:
    control.post("/inject", json={"action": "delay", "delay_ms": 800})

    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(client.post, C, json=create("late@x.com"))
        await wait_for(lambda: in_progress(control, "create"))
        during = emails(control)
        response = pending.result()

    assert during == []  # still waiting: nothing applied yet
    assert response.status_code == 201
    assert response.elapsed.total_seconds() >= 0.8 - SLACK
    assert emails(control) == ["late@x.com"]
    [entry] = logged(control)
    assert entry["status"] == 201
    assert entry["done_at"] - entry["at"] >= 0.8 - SLACK


async def test_delay_lands_even_after_the_client_gave_up(
    sandbox: RunningSandbox,
    client_for: Callable[..., httpx.Client],
    control: httpx.Client,
) -> None:
    control.post("/inject", json={"action": "delay", "delay_ms": 400})
    http = client_for(sandbox.token, timeout=0.1)

    with pytest.raises(httpx.ReadTimeout):
        http.post(UPSERT, json=upsert("ghost@x.com"))

    await wait_for(lambda: emails(control) == ["ghost@x.com"])


def test_endpoints_filter_lets_other_requests_pass_in_fifo_order(
    client: httpx.Client, control: httpx.Client
) -> None:
    only_upserts = {"status": 503, "json": error(503), "endpoints": ["batch_upsert"]}
    any_endpoint = {"status": 502, "json": error(502)}
    writes = {"status": 500, "json": error(500), "endpoints": ["create", "update"], "times": 2}
    for injection in (only_upserts, any_endpoint, writes):
        assert control.post("/inject", json=injection).status_code == 201

    statuses = [
        client.get(C).status_code,  # passes the upsert-only one by, takes the second
        client.get(C).status_code,  # nothing left for a list
        client.post(C, json=create("a@x.com")).status_code,
        client.post(UPSERT, json=upsert("b@x.com")).status_code,
        client.post(UPSERT, json=upsert("b@x.com")).status_code,
        client.patch(C + "/b@x.com?idProperty=email", json={"properties": {}}).status_code,
        client.post(C, json=create("a@x.com")).status_code,
    ]

    assert statuses == [502, 200, 500, 503, 200, 500, 201]
    assert control.get("/stats").json()["injections_pending"] == 0
