"""POST /contacts/gdpr-delete over real HTTP: by email and by id, HubSpot's validation, the
blocklist that an API write gets past, and the control API's record of both."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.helpers import wait_for

from leadsync.sandbox import ManualClock, RunningSandbox

C = "/crm/v3/objects/contacts"
GDPR = C + "/gdpr-delete"
UPSERT = C + "/batch/upsert"


def by_email(email: str) -> dict[str, Any]:
    return {"objectId": email, "idProperty": "email"}


def create(client: httpx.Client, email: str, **props: str) -> dict[str, Any]:
    response = client.post(C, json={"properties": {"email": email, **props}})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def upsert(client: httpx.Client, email: str) -> dict[str, Any]:
    body = {"inputs": [{"id": email, "idProperty": "email", "properties": {"firstname": "X"}}]}
    response = client.post(UPSERT, json=body)
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    return dict(result)


def search(client: httpx.Client, email: str) -> list[dict[str, Any]]:
    flt = {"propertyName": "email", "operator": "EQ", "value": email}
    response = client.post(C + "/search", json={"filterGroups": [{"filters": [flt]}]})
    assert response.status_code == 200
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def deletions(control: httpx.Client) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = control.get("/gdpr-deletions").json()
    return listed


def blocklist(control: httpx.Client) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = control.get("/blocklist").json()
    return listed


def emails(control: httpx.Client) -> list[str]:
    return sorted(c["properties"]["email"] for c in control.get("/contacts").json()["results"])


# --- by email --------------------------------------------------------------------------------


def test_delete_by_email_removes_the_contact_and_blocklists_the_email(
    client: httpx.Client, control: httpx.Client, clock: ManualClock
) -> None:
    ana = create(client, "ana@example.com")
    create(client, "bob@example.com")

    response = client.post(GDPR, json=by_email("ana@example.com"))

    assert response.status_code == 204
    assert response.content == b""
    assert "content-type" not in response.headers
    assert client.get(f"{C}/{ana['id']}").status_code == 404
    assert client.get(f"{C}/ana%40example.com", params={"idProperty": "email"}).status_code == 404
    assert search(client, "ana@example.com") == []
    assert emails(control) == ["bob@example.com"]
    assert deletions(control) == [
        {
            "at": clock(),
            "objectId": "ana@example.com",
            "idProperty": "email",
            "deleted_contact_id": ana["id"],
            "blocklisted": True,
        }
    ]
    assert blocklist(control) == [
        {
            "email": "ana@example.com",
            "added_at": clock(),
            "recreated_at": None,
            "recreated_contact_id": None,
        }
    ]


def test_delete_by_email_matches_without_regard_to_case(
    client: httpx.Client, control: httpx.Client
) -> None:
    ana = create(client, "Ana@Example.com")

    assert client.post(GDPR, json=by_email(" ANA@example.COM ")).status_code == 204

    assert emails(control) == []
    (applied,) = deletions(control)
    assert applied["objectId"] == " ANA@example.COM "  # as sent
    assert applied["deleted_contact_id"] == ana["id"]
    assert [entry["email"] for entry in blocklist(control)] == ["ana@example.com"]


def test_an_unknown_email_is_204_and_blocklisted(
    client: httpx.Client, control: httpx.Client
) -> None:
    create(client, "bob@example.com")

    response = client.post(GDPR, json=by_email("Nobody@Example.com"))

    assert response.status_code == 204
    assert emails(control) == ["bob@example.com"]
    (applied,) = deletions(control)
    assert (applied["deleted_contact_id"], applied["blocklisted"]) == (None, True)
    assert [entry["email"] for entry in blocklist(control)] == ["nobody@example.com"]


def test_a_second_delete_of_the_same_email_is_204_and_keeps_the_first_blocklisting(
    client: httpx.Client, control: httpx.Client, clock: ManualClock
) -> None:
    create(client, "ana@example.com")
    client.post(GDPR, json=by_email("ana@example.com"))
    first = clock()
    clock.advance(5)

    assert client.post(GDPR, json=by_email("ana@example.com")).status_code == 204

    assert [d["deleted_contact_id"] is None for d in deletions(control)] == [False, True]
    (entry,) = blocklist(control)
    assert entry["added_at"] == first


# --- by id -----------------------------------------------------------------------------------


@pytest.mark.parametrize("id_property", [None, "hs_object_id"])
def test_delete_by_id_removes_the_contact_and_blocklists_its_email(
    client: httpx.Client, control: httpx.Client, id_property: str | None
) -> None:
    ana = create(client, "ana@example.com")
    body: dict[str, Any] = {"objectId": ana["id"]}
    if id_property is not None:
        body["idProperty"] = id_property

    assert client.post(GDPR, json=body).status_code == 204

    assert client.get(f"{C}/{ana['id']}").status_code == 404
    (applied,) = deletions(control)
    assert applied["objectId"] == ana["id"]
    assert applied["idProperty"] is None
    assert (applied["deleted_contact_id"], applied["blocklisted"]) == (ana["id"], True)
    assert [entry["email"] for entry in blocklist(control)] == ["ana@example.com"]


def test_a_numeric_object_id_is_read_as_its_text(
    client: httpx.Client, control: httpx.Client
) -> None:
    ana = create(client, "ana@example.com")

    assert client.post(GDPR, json={"objectId": int(ana["id"])}).status_code == 204

    assert emails(control) == []


def test_deleting_a_contact_without_email_blocklists_nothing(
    client: httpx.Client, control: httpx.Client
) -> None:
    response = client.post(C, json={"properties": {"firstname": "Nameless"}})
    nameless = response.json()

    assert client.post(GDPR, json={"objectId": nameless["id"]}).status_code == 204

    (applied,) = deletions(control)
    assert (applied["deleted_contact_id"], applied["blocklisted"]) == (nameless["id"], False)
    assert blocklist(control) == []


def test_an_unknown_id_is_404_object_not_found_and_nothing_is_recorded(
    client: httpx.Client, control: httpx.Client
) -> None:
    ana = create(client, "ana@example.com")

    response = client.post(GDPR, json={"objectId": "100000000999"})

    assert response.status_code == 404
    body = response.json()
    assert list(body) == ["status", "message", "correlationId", "category", "context"]
    assert body["category"] == "OBJECT_NOT_FOUND"
    assert body["context"] == {"id": ["100000000999"]}
    uuid.UUID(body["correlationId"])
    # An email given without idProperty=email is read as an id, as HubSpot does.
    assert client.post(GDPR, json={"objectId": "ana@example.com"}).status_code == 404
    assert emails(control) == ["ana@example.com"]
    assert client.get(f"{C}/{ana['id']}").status_code == 200
    assert deletions(control) == []
    assert blocklist(control) == []


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'["a@example.com"]', "expected an object"),
        (b"{", "Invalid input JSON on line 1"),
        (b"", "Invalid input JSON on line 1"),
        (b"{}", "objectId is required"),
        (b'{"objectId": null}', "objectId is required"),
        (b'{"objectId": "  "}', "objectId must not be blank"),
        (b'{"objectId": ""}', "objectId must not be blank"),
        (b'{"objectId": true}', "objectId must be a string"),
        (b'{"objectId": {"email": "a@example.com"}}', "objectId must be a string"),
        (b'{"objectId": ["a@example.com"]}', "objectId must be a string"),
        (b'{"objectId": "a@example.com", "idProperty": "phone"}', "'phone' is not a unique"),
        (b'{"objectId": "a@example.com", "idProperty": 1}', "1 is not a unique"),
        (b'{"objectId": "a@example.com", "idProperty": "EMAIL"}', "'EMAIL' is not a unique"),
    ],
)
def test_a_malformed_body_is_400_validation_error_and_nothing_is_applied(
    client: httpx.Client, control: httpx.Client, content: bytes, message: str
) -> None:
    create(client, "a@example.com")

    response = client.post(GDPR, content=content, headers={"content-type": "application/json"})

    assert response.status_code == 400
    body = response.json()
    assert (body["status"], body["category"]) == ("error", "VALIDATION_ERROR")
    assert message in body["message"]
    uuid.UUID(body["correlationId"])
    assert emails(control) == ["a@example.com"]
    assert deletions(control) == []
    assert blocklist(control) == []


# --- the blocklist does not stop API writes --------------------------------------------------


def test_an_upsert_after_a_delete_recreates_the_contact_and_the_blocklist_records_it(
    client: httpx.Client, control: httpx.Client, clock: ManualClock
) -> None:
    ana = create(client, "ana@example.com")
    client.post(GDPR, json=by_email("ana@example.com"))
    deleted_at = clock()
    clock.advance(3)

    again = upsert(client, "ANA@example.com")

    assert again["new"] is True
    assert again["id"] != ana["id"]
    assert emails(control) == ["ana@example.com"]
    assert blocklist(control) == [
        {
            "email": "ana@example.com",
            "added_at": deleted_at,
            "recreated_at": deleted_at + 3,
            "recreated_contact_id": again["id"],
        }
    ]
    # Only the write that re-created it is recorded; later writes update that contact.
    clock.advance(1)
    assert upsert(client, "ana@example.com")["new"] is False
    assert blocklist(control)[0]["recreated_at"] == deleted_at + 3


def test_a_create_after_a_delete_of_an_unknown_email_recreates_it_too(
    client: httpx.Client, control: httpx.Client, clock: ManualClock
) -> None:
    client.post(GDPR, json=by_email("late@example.com"))

    created = create(client, "Late@Example.com")

    (entry,) = blocklist(control)
    assert (entry["recreated_at"], entry["recreated_contact_id"]) == (clock(), created["id"])


def test_an_update_giving_a_contact_a_blocklisted_email_is_recorded_as_a_recreation(
    client: httpx.Client, control: httpx.Client
) -> None:
    client.post(GDPR, json=by_email("ana@example.com"))
    other = create(client, "other@example.com")

    response = client.patch(f"{C}/{other['id']}", json={"properties": {"email": "ana@example.com"}})

    assert response.status_code == 200
    assert blocklist(control)[0]["recreated_contact_id"] == other["id"]


def test_deleting_a_recreated_contact_starts_the_blocklisting_over(
    client: httpx.Client, control: httpx.Client, clock: ManualClock
) -> None:
    client.post(GDPR, json=by_email("ana@example.com"))
    upsert(client, "ana@example.com")
    clock.advance(7)

    client.post(GDPR, json=by_email("ana@example.com"))

    assert emails(control) == []
    assert blocklist(control) == [
        {
            "email": "ana@example.com",
            "added_at": clock(),
            "recreated_at": None,
            "recreated_contact_id": None,
        }
    ]
    assert [d["deleted_contact_id"] is not None for d in deletions(control)] == [False, True]


def test_reset_clears_the_deletions_and_the_blocklist(
    client: httpx.Client, control: httpx.Client
) -> None:
    create(client, "ana@example.com")
    client.post(GDPR, json=by_email("ana@example.com"))
    client.post(GDPR, json=by_email("bob@example.com"))
    stats = control.get("/stats").json()
    assert (stats["gdpr_deletions"], stats["blocklisted"]) == (2, 2)

    control.post("/reset")

    assert deletions(control) == []
    assert blocklist(control) == []
    # After the reset the email is a stranger again: a create is no re-creation.
    create(client, "ana@example.com")
    assert blocklist(control) == []


# --- the gate: auth, limits, log, stats, injections, overlaps ---------------------------------


def test_a_wrong_token_is_401_and_nothing_is_deleted(
    client: httpx.Client, client_for: Callable[..., httpx.Client], control: httpx.Client
) -> None:
    create(client, "ana@example.com")

    response = client_for("wrong").post(GDPR, json=by_email("ana@example.com"))

    assert response.status_code == 401
    assert response.json()["category"] == "INVALID_AUTHENTICATION"
    assert emails(control) == ["ana@example.com"]
    assert deletions(control) == []


def test_a_delete_spends_the_ten_second_budget_like_any_write(
    client: httpx.Client,
    control: httpx.Client,
    configure: Callable[..., object],
) -> None:
    configure(rate_limit="2/10s")
    create(client, "ana@example.com")

    first = client.post(GDPR, json=by_email("ana@example.com"))
    refused = client.post(GDPR, json=by_email("bob@example.com"))

    assert first.status_code == 204
    assert first.headers["x-hubspot-ratelimit-max"] == "2"
    assert first.headers["x-hubspot-ratelimit-remaining"] == "0"
    assert refused.status_code == 429
    assert refused.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert [d["objectId"] for d in deletions(control)] == ["ana@example.com"]
    stats = control.get("/stats").json()
    assert stats["requests"]["gdpr_delete"] == {"204": 1, "429": 1}


def test_the_request_log_names_the_email_a_delete_touched(
    client: httpx.Client, control: httpx.Client
) -> None:
    ana = create(client, "ana@example.com")
    client.post(GDPR, json=by_email("Bob@Example.com"))
    client.post(GDPR, json={"objectId": ana["id"]})
    client.post(GDPR, json={"objectId": ana["id"]})  # 404 now

    logged = [e for e in control.get("/requests").json()["requests"] if e["endpoint"] != "create"]

    assert [(e["endpoint"], e["status"], e["emails"]) for e in logged] == [
        ("gdpr_delete", 204, ["bob@example.com"]),
        ("gdpr_delete", 204, ["ana@example.com"]),  # by id: the contact's email on arrival
        ("gdpr_delete", 404, []),
    ]
    assert all(e["done_at"] is not None and e["done_at"] >= e["at"] for e in logged)


def test_an_injected_answer_for_gdpr_delete_passes_other_endpoints_by(
    client: httpx.Client, control: httpx.Client
) -> None:
    down = {
        "status": "error",
        "message": "down",
        "correlationId": str(uuid.uuid4()),
        "category": "INTERNAL_ERROR",
    }
    queued = control.post(
        "/inject", json={"status": 503, "json": down, "endpoints": ["gdpr_delete"]}
    )
    assert queued.status_code == 201

    create(client, "ana@example.com")  # passes the injection by
    refused = client.post(GDPR, json=by_email("ana@example.com"))
    applied = client.post(GDPR, json=by_email("ana@example.com"))

    assert (refused.status_code, applied.status_code) == (503, 204)
    assert len(deletions(control)) == 1
    assert control.get("/stats").json()["requests"]["gdpr_delete"] == {"503": 1, "204": 1}


def test_drop_applies_the_delete_then_cuts_the_connection(
    client: httpx.Client, control: httpx.Client
) -> None:
    create(client, "ana@example.com")
    control.post("/inject", json={"action": "drop", "endpoints": ["gdpr_delete"]})

    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.post(GDPR, json=by_email("ana@example.com"))

    assert emails(control) == []
    assert [d["blocklisted"] for d in deletions(control)] == [True]
    (entry,) = [e for e in control.get("/requests").json()["requests"] if e["endpoint"] != "create"]
    assert (entry["endpoint"], entry["status"]) == ("gdpr_delete", "drop")


async def test_an_upsert_during_a_delayed_delete_overlaps_and_the_delete_lands_last(
    sandbox: RunningSandbox,
    client: httpx.Client,
    client_for: Callable[..., httpx.Client],
    control: httpx.Client,
) -> None:
    # The race an erasure must not lose: a delete and a write of one email in flight at once.
    create(client, "ana@example.com")
    control.post(
        "/inject", json={"action": "delay", "delay_ms": 3000, "endpoints": ["gdpr_delete"]}
    )
    slow = client_for(sandbox.token, timeout=10)

    def delete_in_progress() -> bool:
        logged = control.get("/requests").json()["requests"]
        return any(e["endpoint"] == "gdpr_delete" and e["done_at"] is None for e in logged)

    with ThreadPoolExecutor(1) as pool:
        deleting = pool.submit(slow.post, GDPR, json=by_email("ana@example.com"))
        await wait_for(delete_in_progress)
        upsert(client, "ana@example.com")
        assert delete_in_progress()  # the upsert really came during the delete
        assert deleting.result().status_code == 204

    stats = control.get("/stats").json()
    assert (stats["write_overlaps"], stats["overlapping_emails"]) == (1, ["ana@example.com"])
    assert emails(control) == []  # the delete landed after the upsert


# --- any sequence over HTTP ------------------------------------------------------------------

FEW = ("ana@x.com", "bob@x.com")
SPELLED = st.sampled_from(FEW).flatmap(
    lambda e: st.sampled_from([e, e.upper(), e.capitalize(), f" {e} "])
)
STEPS = st.lists(
    st.tuples(st.sampled_from(["create", "upsert", "delete_email", "delete_id"]), SPELLED),
    max_size=12,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # reset per example below
)
@given(steps=STEPS)
def test_any_sequence_of_writes_and_deletes_over_http_keeps_one_contact_per_email(
    sandbox: RunningSandbox, client: httpx.Client, control: httpx.Client, steps: list[Any]
) -> None:
    sandbox.state.reset()
    live: dict[str, str] = {}  # email -> its contact's id
    gone: dict[str, str] = {}  # email -> the id of its last deleted contact
    for kind, raw in steps:
        email = raw.strip().lower()
        if kind == "create":
            response = client.post(C, json={"properties": {"email": raw}})
            assert response.status_code == (409 if email in live else 201)
            live.setdefault(email, response.json().get("id", ""))
        elif kind == "upsert":
            result = upsert(client, raw)
            assert (result["new"], result["id"]) == (
                email not in live,
                live.get(email, result["id"]),
            )
            live[email] = result["id"]
        elif kind == "delete_email":
            assert client.post(GDPR, json=by_email(raw)).status_code == 204
            if email in live:
                gone[email] = live.pop(email)
        else:
            target = live.get(email) or gone.get(email) or "100000000000"
            response = client.post(GDPR, json={"objectId": target})
            assert response.status_code == (204 if email in live else 404)
            if email in live:
                gone[email] = live.pop(email)
        stored = control.get("/contacts").json()["results"]
        # At most one contact per email; a deleted email has none until a later write.
        assert sorted(c["properties"]["email"] for c in stored) == sorted(live)
        assert {c["properties"]["email"]: c["id"] for c in stored} == live
        for contact_id in gone.values():
            assert client.get(f"{C}/{contact_id}").status_code == 404
    for email in set(gone) - set(live):  # search has its own limit of 5/s: once, at the end
        assert search(client, email) == []
    blocked = {entry["email"] for entry in blocklist(control)}
    assert blocked == {raw.strip().lower() for kind, raw in steps if kind == "delete_email"} | set(
        gone
    )
