"""Faults over real HTTP: seeded 5xx, hangs past the client's timeout, apply-then-drop."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from tests.helpers import wait_for

from leadsync.sandbox import RunningSandbox, SandboxConfig

C = "/crm/v3/objects/contacts"
UPSERT = C + "/batch/upsert"


def statuses(client: httpx.Client, n: int) -> list[int]:
    return [client.get(C).status_code for _ in range(n)]


def test_seeded_5xx_replay_after_reset(
    client: httpx.Client, sandbox: RunningSandbox, configure: Callable[..., SandboxConfig]
) -> None:
    configure(fault_5xx=0.5, seed=1234, rate_limit="none")
    first = statuses(client, 40)
    assert set(first) <= {200, 500, 502, 503, 504}
    assert 5 < sum(s != 200 for s in first) < 35
    sandbox.state.reset()
    assert statuses(client, 40) == first
    configure(seed=99)
    assert statuses(client, 40) != first


def test_injected_5xx_keeps_hubspot_envelope_and_headers(
    client: httpx.Client, sandbox: RunningSandbox, configure: Callable[..., SandboxConfig]
) -> None:
    configure(fault_5xx=1.0)
    response = client.post(C, json={"properties": {"email": "a@x.com"}})
    assert response.status_code in {500, 502, 503, 504}
    assert response.json()["status"] == "error"
    assert "x-hubspot-ratelimit-remaining" in response.headers
    assert len(sandbox.state.store) == 0


async def test_hang_outlasts_a_short_client_timeout(
    sandbox: RunningSandbox,
    client_for: Callable[..., httpx.Client],
    configure: Callable[..., SandboxConfig],
) -> None:
    configure(fault_timeout=1.0)
    http = client_for(sandbox.token, timeout=0.3)
    with pytest.raises(httpx.ReadTimeout):
        http.post(C, json={"properties": {"email": "slow@x.com"}})
    assert sandbox.state.stats.faults["timeout"] == 1
    # The sandbox lets go of the request as soon as the client has left.
    await wait_for(lambda: sandbox.state.hangs.active == 0)
    assert len(sandbox.state.store) == 0


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        (C, {"properties": {"email": "dropped@x.com"}}),
        (UPSERT, {"inputs": [{"id": "dropped@x.com", "idProperty": "email", "properties": {}}]}),
    ],
)
def test_apply_then_drop_writes_but_never_answers(
    client: httpx.Client,
    sandbox: RunningSandbox,
    configure: Callable[..., SandboxConfig],
    control: httpx.Client,
    path: str,
    payload: dict[str, object],
) -> None:
    configure(fault_drop=1.0)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.post(path, json=payload)
    contacts = control.get("/contacts").json()["results"]
    assert [c["properties"]["email"] for c in contacts] == ["dropped@x.com"]
    stats = control.get("/stats").json()
    assert stats["drops"] == 1
    # A naive retry now meets the contact it could not see being created.
    sandbox.state.update_config({"fault_drop": 0.0})
    retried = client.post(C, json={"properties": {"email": "dropped@x.com"}})
    assert retried.status_code == 409


def test_latency_is_added_to_crm_requests(
    client: httpx.Client, configure: Callable[..., SandboxConfig]
) -> None:
    configure(latency_ms=150)
    response = client.get(C)
    assert response.status_code == 200
    assert response.elapsed.total_seconds() >= 0.15


def test_control_api_is_never_faulted(
    control: httpx.Client, configure: Callable[..., SandboxConfig]
) -> None:
    configure(fault_5xx=1.0, latency_ms=0)
    assert all(control.get("/stats").status_code == 200 for _ in range(10))
