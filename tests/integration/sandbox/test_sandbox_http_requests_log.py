"""GET /_sandbox/requests over real HTTP: when each CRM request came and went, how it ended,
which emails it named, and the Retry-After and policy of its 429."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from leadsync.sandbox import SandboxConfig

C = "/crm/v3/objects/contacts"
UPSERT = C + "/batch/upsert"


def upsert(*emails: str) -> dict[str, Any]:
    return {"inputs": [{"id": e, "idProperty": "email", "properties": {}} for e in emails]}


def logged(control: httpx.Client, **params: float) -> list[dict[str, Any]]:
    response = control.get("/requests", params=params)
    assert response.status_code == 200
    requests: list[dict[str, Any]] = response.json()["requests"]
    return requests


def test_a_429_is_logged_with_its_retry_after_and_policy(
    client: httpx.Client, control: httpx.Client, configure: Callable[..., SandboxConfig]
) -> None:
    configure(rate_limit="1/10s")
    before = time.time()
    assert client.post(UPSERT, json=upsert("a@x.com")).status_code == 200
    limited = client.post(UPSERT, json=upsert("B@x.com", "c@x.com"))
    after = time.time()

    assert limited.status_code == 429
    ok, entry = logged(control)
    assert ok["status"] == 200
    assert entry == {
        "at": entry["at"],
        "done_at": entry["done_at"],
        "endpoint": "batch_upsert",
        "status": 429,
        "emails": ["b@x.com", "c@x.com"],
        "retry_after": float(limited.headers["retry-after"]),
        "policy": "TEN_SECONDLY_ROLLING",
    }
    assert before <= ok["at"] <= ok["done_at"] <= entry["at"] <= entry["done_at"] <= after


def test_injected_answers_are_logged_with_their_retry_after_and_policy(
    client: httpx.Client, control: httpx.Client
) -> None:
    unavailable = {"status": "error", "message": "Down", "correlationId": str(uuid.uuid4())}
    unavailable["category"] = "INTERNAL_ERROR"
    daily = {**unavailable, "category": "RATE_LIMITS", "policyName": "DAILY"}
    retry = {"Retry-After": "7"}
    control.post("/inject", json={"status": 503, "json": unavailable, "headers": retry})
    control.post("/inject", json={"status": 429, "json": daily})

    first = client.post(C, json={"properties": {"email": "D@x.com"}})
    second = client.post(UPSERT, json=upsert("e@x.com"))

    assert (first.status_code, first.headers["retry-after"], second.status_code) == (503, "7", 429)
    injected_503, injected_429 = logged(control)
    assert (injected_503["status"], injected_503["endpoint"], injected_503["emails"]) == (
        503,
        "create",
        ["d@x.com"],
    )
    assert (injected_503["retry_after"], injected_503["policy"]) == (7.0, None)
    assert injected_503["at"] <= injected_503["done_at"]
    assert (injected_429["status"], injected_429["retry_after"], injected_429["policy"]) == (
        429,
        None,
        "DAILY",
    )


def test_each_endpoint_logs_the_emails_it_writes_or_looks_up(
    client: httpx.Client, control: httpx.Client
) -> None:
    contact = client.post(C, json={"properties": {"email": "A@x.com"}}).json()
    client.patch(f"{C}/{contact['id']}", json={"properties": {"firstname": "A"}})
    client.patch(f"{C}/B@X.com", params={"idProperty": "email"}, json={"properties": {}})
    lookup = {"propertyName": "email", "operator": "EQ", "value": "C@x.com"}
    search = {"filterGroups": [{"filters": [lookup]}]}
    client.post(C + "/search", json=search)
    client.get(C)
    client.get(f"{C}/{contact['id']}")
    httpx.post(control.base_url.join("/crm/v3/objects/contacts"), json={})  # no token

    assert [(e["endpoint"], e["status"], e["emails"]) for e in logged(control)] == [
        ("create", 201, ["a@x.com"]),
        ("update", 200, ["a@x.com"]),
        ("update", 404, ["b@x.com"]),
        ("search", 200, ["c@x.com"]),
        ("list", 200, []),
        ("read", 200, []),
        ("create", 401, []),
    ]


def test_since_filters_by_arrival_and_reset_clears_the_log(
    client: httpx.Client, control: httpx.Client
) -> None:
    client.get(C)
    client.get(C + "/1")
    first, second = logged(control)

    assert logged(control, since=second["at"]) == [second]
    assert logged(control, since=first["at"]) == [first, second]
    assert control.get("/requests", params={"since": "soon"}).status_code == 400
    # The control API is not a CRM request: listing the log does not grow it.
    assert len(logged(control)) == 2
    control.post("/reset")
    assert logged(control) == []
