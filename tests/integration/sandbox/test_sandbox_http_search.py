"""Search over real HTTP: index lag, its own 5/s limit, no rate-limit headers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from tests.helpers import wait_for

from leadsync.sandbox import ManualClock, SandboxConfig, sandbox_in_thread

C = "/crm/v3/objects/contacts"


def by_email(email: str) -> dict[str, Any]:
    return {
        "filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": email}]}]
    }


def test_a_new_contact_is_searchable_only_after_the_lag(
    client: httpx.Client, clock: ManualClock, configure: Callable[..., SandboxConfig]
) -> None:
    configure(search_lag_ms=3000)
    client.post(C, json={"properties": {"email": "late@example.com"}})
    assert client.post(C + "/search", json=by_email("LATE@example.com")).json()["total"] == 0
    clock.advance(2.9)
    assert client.post(C + "/search", json=by_email("late@example.com")).json()["total"] == 0
    clock.advance(0.2)
    found = client.post(C + "/search", json=by_email("Late@Example.com")).json()
    assert found["total"] == 1
    assert found["results"][0]["properties"]["email"] == "late@example.com"


async def test_search_lag_with_the_real_clock() -> None:
    config = SandboxConfig(search_lag_ms=300, search_rate_limit="none")
    with sandbox_in_thread(config=config) as sandbox, httpx.Client(base_url=sandbox.url) as http:
        http.headers["Authorization"] = f"Bearer {sandbox.token}"
        created_at = time.monotonic()
        http.post(C, json={"properties": {"email": "real@example.com"}})
        assert http.post(C + "/search", json=by_email("real@example.com")).json()["total"] == 0

        def found() -> int:
            total: int = http.post(C + "/search", json=by_email("real@example.com")).json()["total"]
            return total

        await wait_for(found, timeout=5, interval=0.01)
        assert time.monotonic() - created_at >= 0.3


def test_search_has_its_own_five_per_second_limit(client: httpx.Client, clock: ManualClock) -> None:
    answers = [client.post(C + "/search", json={}) for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    refused = answers[-1].json()
    assert refused["policyName"] == "SECONDLY"
    assert refused["errorType"] == "RATE_LIMIT"
    clock.advance(1.0)
    assert client.post(C + "/search", json={}).status_code == 200


def test_search_sends_no_rate_limit_headers_and_spends_no_window(client: httpx.Client) -> None:
    before = client.get(C).headers["x-hubspot-ratelimit-remaining"]
    for _ in range(6):
        answer = client.post(C + "/search", json={})
        assert not [h for h in answer.headers if h.startswith("x-hubspot-ratelimit")]
    after = client.get(C).headers["x-hubspot-ratelimit-remaining"]
    assert int(before) - int(after) == 1
