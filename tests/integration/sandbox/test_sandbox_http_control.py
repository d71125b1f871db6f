"""The control API: contacts, stats by endpoint and status, reset, config patch."""

from __future__ import annotations

import httpx

from leadsync.sandbox import RunningSandbox

C = "/crm/v3/objects/contacts"


def test_contacts_lists_every_contact_with_all_properties(
    client: httpx.Client, control: httpx.Client
) -> None:
    created = client.post(C, json={"properties": {"email": "a@x.com", "phone": "1"}}).json()
    [contact] = control.get("/contacts").json()["results"]
    assert contact["id"] == created["id"]
    assert contact["properties"]["phone"] == "1"


def test_stats_count_requests_by_endpoint_and_status(
    client: httpx.Client, control: httpx.Client
) -> None:
    client.post(C, json={"properties": {"email": "a@x.com"}})
    client.post(C, json={"properties": {"email": "a@x.com"}})
    client.get(C + "/1")
    stats = control.get("/stats").json()
    assert stats["requests"] == {"create": {"201": 1, "409": 1}, "read": {"404": 1}}
    assert stats["total_requests"] == 3
    assert stats["contacts"] == 1
    assert stats["faults"] == {"5xx": 0, "timeout": 0, "drop": 0}


def test_reset_clears_contacts_and_stats(client: httpx.Client, control: httpx.Client) -> None:
    client.post(C, json={"properties": {"email": "a@x.com"}})
    assert control.post("/reset").status_code == 200
    assert control.get("/contacts").json() == {"total": 0, "results": []}
    stats = control.get("/stats").json()
    assert (stats["total_requests"], stats["max_requests_in_10s"]) == (0, {})


def test_config_patch_changes_knobs_and_refuses_bad_values(
    sandbox: RunningSandbox, control: httpx.Client
) -> None:
    patched = control.patch(
        "/config",
        json={"rate_limit": "100/10s", "fault_5xx": 0.1, "invalid_batch": "per-input", "seed": 5},
    )
    assert patched.status_code == 200
    body = patched.json()
    assert (body["rate_limit"], body["fault_5xx"], body["invalid_batch"]) == (
        "100/10s",
        0.1,
        "per-input",
    )
    assert control.get("/config").json() == body
    assert sandbox.state.config.seed == 5
    refused = control.patch("/config", json={"fault_drop": 2})
    assert refused.status_code == 400
    assert "fault_drop" in refused.json()["message"]
    assert sandbox.state.config.fault_drop == 0
