"""POST /_sandbox/input-errors over real HTTP: one email's writes fail, the rest of a batch
lands; single creates and updates of that email get the injected status."""

from __future__ import annotations

from typing import Any

import httpx

C = "/crm/v3/objects/contacts"
UPSERT = C + "/batch/upsert"


def item(email: str, trace: str) -> dict[str, Any]:
    return {"id": email, "idProperty": "email", "objectWriteTraceId": trace, "properties": {}}


def emails(control: httpx.Client) -> list[str]:
    return sorted(c["properties"]["email"] for c in control.get("/contacts").json()["results"])


def pending(control: httpx.Client) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = control.get("/input-errors").json()["input_errors"]
    return listed


def test_a_failing_input_is_a_207_error_while_the_other_inputs_are_applied(
    client: httpx.Client, control: httpx.Client
) -> None:
    rule = {"email": " B@x.com ", "status": "500", "category": "INTERNAL_ERROR", "message": "boom"}
    assert control.post("/input-errors", json=rule).json() == {"pending": 1}
    inputs = [item("a@x.com", "t-a"), item("B@X.com", "t-b"), item("c@x.com", "t-c")]

    response = client.post(UPSERT, json={"inputs": inputs})

    assert response.status_code == 207
    body = response.json()
    assert body["numErrors"] == 1
    assert body["errors"] == [
        {
            "status": "500",
            "category": "INTERNAL_ERROR",
            "message": "boom",
            "context": {"ids": ["b@x.com"], "objectWriteTraceId": ["t-b"]},
            "errors": [],
            "links": {},
        }
    ]
    assert sorted(r["objectWriteTraceId"] for r in body["results"]) == ["t-a", "t-c"]
    assert emails(control) == ["a@x.com", "c@x.com"]
    # Used up: the retry lands.
    assert pending(control) == []
    retried = client.post(UPSERT, json={"inputs": [item("b@x.com", "t-b2")]})
    assert retried.status_code == 200
    assert emails(control) == ["a@x.com", "b@x.com", "c@x.com"]


def test_single_create_gets_the_injected_status_and_nothing_is_applied(
    client: httpx.Client, control: httpx.Client
) -> None:
    control.post("/input-errors", json={"email": "a@x.com", "status": "423", "category": "LOCKED"})

    locked = client.post(C, json={"properties": {"email": "A@x.com"}})

    assert locked.status_code == 423
    assert locked.json()["category"] == "LOCKED"
    assert "a@x.com" in locked.json()["message"]
    assert emails(control) == []
    assert client.post(C, json={"properties": {"email": "a@x.com"}}).status_code == 201


def test_updates_by_id_and_by_email_are_refused_with_a_non_numeric_status_as_400(
    client: httpx.Client, control: httpx.Client
) -> None:
    contact = client.post(C, json={"properties": {"email": "a@x.com", "firstname": "Old"}}).json()
    rule = {"email": "a@x.com", "status": "BLOCKED", "category": "POLICY_VIOLATION", "times": 2}
    control.post("/input-errors", json=rule)
    change = {"properties": {"firstname": "New"}}

    by_id = client.patch(f"{C}/{contact['id']}", json=change)
    by_email = client.patch(f"{C}/A@x.com", params={"idProperty": "email"}, json=change)
    third = client.patch(f"{C}/{contact['id']}", json=change)

    assert (by_id.status_code, by_email.status_code, third.status_code) == (400, 400, 200)
    assert by_id.json()["category"] == by_email.json()["category"] == "POLICY_VIOLATION"
    stored = control.get("/contacts").json()["results"][0]
    assert stored["properties"]["firstname"] == "New"  # only the third landed


def test_times_counts_every_write_of_the_email_batch_or_single(
    client: httpx.Client, control: httpx.Client
) -> None:
    rule = {"email": "a@x.com", "status": "503", "category": "SERVICE_UNAVAILABLE", "times": 3}
    control.post("/input-errors", json=rule)

    first = client.post(UPSERT, json={"inputs": [item("a@x.com", "1")]})
    left_after_one = pending(control)[0]["times"]
    second = client.post(C, json={"properties": {"email": "a@x.com"}})
    third = client.post(UPSERT, json={"inputs": [item("a@x.com", "3")]})
    fourth = client.post(UPSERT, json={"inputs": [item("a@x.com", "4")]})

    assert left_after_one == 2
    assert [r.status_code for r in (first, second, third, fourth)] == [207, 503, 207, 200]
    assert second.json()["category"] == "SERVICE_UNAVAILABLE"
    assert third.json()["errors"][0]["context"]["objectWriteTraceId"] == ["3"]
    assert pending(control) == []


def test_listing_delete_and_reset(client: httpx.Client, control: httpx.Client) -> None:
    control.post("/input-errors", json={"email": "a@x.com", "status": "500", "category": "X"})
    second = {"email": "b@x.com", "status": 502, "category": "BAD_GATEWAY", "times": 2}
    assert control.post("/input-errors", json=second).json() == {"pending": 3}

    listed = control.get("/input-errors").json()
    assert listed["pending"] == 3
    assert [
        (e["email"], e["status"], e["category"], e["times"]) for e in listed["input_errors"]
    ] == [
        ("a@x.com", "500", "X", 1),
        ("b@x.com", "502", "BAD_GATEWAY", 2),
    ]
    assert control.get("/stats").json()["input_errors_pending"] == 3
    assert control.delete("/input-errors").json() == {"pending": 0}
    assert client.post(C, json={"properties": {"email": "a@x.com"}}).status_code == 201
    control.post("/input-errors", json={"email": "b@x.com", "status": "500", "category": "X"})
    control.post("/reset")
    assert pending(control) == []
    assert client.post(C, json={"properties": {"email": "b@x.com"}}).status_code == 201


def test_invalid_input_errors_are_refused(control: httpx.Client) -> None:
    cases = [
        ({"email": "a@x.com", "status": "500", "category": "internal"}, "UPPER_SNAKE"),
        ({"email": "  ", "status": "500", "category": "X"}, "email"),
        ({"email": "a@x.com", "status": "700", "category": "X"}, "200 to 599"),
        ({"email": "a@x.com", "category": "X"}, "status"),
        ({"email": "a@x.com", "status": "500", "category": "X", "times": 0}, "times"),
        ({"email": "a@x.com", "status": "500", "category": "X", "id": 1}, "id"),
    ]
    for body, needle in cases:
        refused = control.post("/input-errors", json=body)
        assert refused.status_code == 400, body
        assert needle in refused.json()["message"], (body, refused.json())
    assert pending(control) == []
