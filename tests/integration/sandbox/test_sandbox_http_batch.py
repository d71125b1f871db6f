"""Batch upsert and read over real HTTP: the 100 cap, duplicate ids, 200 / 207 / whole 400."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from leadsync.sandbox import RunningSandbox, SandboxConfig

UPSERT = "/crm/v3/objects/contacts/batch/upsert"
READ = "/crm/v3/objects/contacts/batch/read"


def item(email: str, trace: str | None = None, **props: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": email, "idProperty": "email", "properties": props}
    if trace is not None:
        entry["objectWriteTraceId"] = trace
    return entry


def test_upsert_creates_then_updates_with_new_flags(client: httpx.Client) -> None:
    first = client.post(UPSERT, json={"inputs": [item("a@x.com", firstname="A")]})
    assert first.status_code == 200
    body = first.json()
    assert body["status"] == "COMPLETE"
    assert [r["new"] for r in body["results"]] == [True]
    second = client.post(UPSERT, json={"inputs": [item("A@X.com", lastname="Z"), item("b@x.com")]})
    results = {r["properties"]["email"]: r for r in second.json()["results"]}
    assert results["a@x.com"]["new"] is False
    assert results["a@x.com"]["id"] == body["results"][0]["id"]
    assert results["a@x.com"]["properties"]["firstname"] == "A"
    assert results["b@x.com"]["new"] is True


def test_more_than_100_inputs_is_a_whole_batch_400(
    client: httpx.Client, sandbox: RunningSandbox
) -> None:
    inputs = [item(f"u{i}@x.com") for i in range(101)]
    response = client.post(UPSERT, json={"inputs": inputs})
    assert response.status_code == 400
    assert len(sandbox.state.store) == 0
    assert client.post(UPSERT, json={"inputs": inputs[:100]}).status_code == 200


def test_duplicate_ids_case_insensitive_fail_the_whole_batch(
    client: httpx.Client, sandbox: RunningSandbox
) -> None:
    inputs = [item("a@x.com"), item("b@x.com"), item("A@x.com")]
    response = client.post(UPSERT, json={"inputs": inputs})
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "Duplicate IDs found in batch input: [a@x.com]. IDs must be unique"
    assert body["context"] == {"ids": ["a@x.com"]}
    assert body["category"] == "VALIDATION_ERROR"
    assert len(sandbox.state.store) == 0


def test_invalid_input_fails_the_whole_batch_by_default(
    client: httpx.Client, sandbox: RunningSandbox
) -> None:
    inputs = [item("good@x.com", "1"), item("bad", "2"), item("also@x.com", "3", nope="x")]
    response = client.post(UPSERT, json={"inputs": inputs})
    assert response.status_code == 400
    message = response.json()["message"]
    inner = json.loads(message.removeprefix("Property values were not valid: "))
    assert {e["error"] for e in inner} == {"INVALID_EMAIL", "PROPERTY_DOESNT_EXIST"}
    assert len(sandbox.state.store) == 0


def test_invalid_input_gets_207_per_input_errors_when_configured(
    client: httpx.Client, sandbox: RunningSandbox, configure: Callable[..., SandboxConfig]
) -> None:
    configure(invalid_batch="per-input")
    inputs = [item("good@x.com", "lead-1"), item("bad", "lead-2"), item("ok@x.com", "lead-3")]
    response = client.post(UPSERT, json={"inputs": inputs})
    assert response.status_code == 207
    body = response.json()
    assert body["numErrors"] == 1
    [error] = body["errors"]
    assert error["context"]["objectWriteTraceId"] == ["lead-2"]
    assert error["category"] == "VALIDATION_ERROR"
    assert error["errors"][0]["code"] == "INVALID_EMAIL"
    assert sorted(r["objectWriteTraceId"] for r in body["results"]) == ["lead-1", "lead-3"]
    assert {c.email for c in sandbox.state.store} == {"good@x.com", "ok@x.com"}


def test_batch_read_by_email_with_207_for_missing(client: httpx.Client) -> None:
    client.post(UPSERT, json={"inputs": [item("a@x.com", firstname="A")]})
    found = client.post(READ, json={"idProperty": "email", "inputs": [{"id": "A@x.com"}]})
    assert found.status_code == 200
    assert found.json()["results"][0]["properties"]["firstname"] == "A"
    partial = client.post(
        READ,
        json={
            "idProperty": "email",
            "properties": ["email"],
            "inputs": [{"id": "a@x.com"}, {"id": "z@x.com"}],
        },
    )
    assert partial.status_code == 207
    body = partial.json()
    assert len(body["results"]) == 1
    assert body["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert body["errors"][0]["context"]["ids"] == ["z@x.com"]
