"""ContactWriter against the HubSpot sandbox and a fake budget: batch and single mode outcomes.

The sandbox answers as HubSpot does, or as it is told to (`hubspot.inject`,
`hubspot.fail_input`); `hubspot.sent` holds every request the writer's client made.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from leadsync.engine.gate import Paused, ProbeDue
from leadsync.engine.writer import ContactWriter, LeadResult, ResultKind
from leadsync.hubspot.client import HubSpotClient
from leadsync.hubspot.models import RateLimitInfo
from leadsync.store.queue import LeadSnapshot
from tests.helpers.hubspot import (
    CONTACTS,
    SEARCH,
    UPSERT,
    SandboxHubSpot,
    error_body,
    rate_limit_body,
)

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
RATE_HEADERS = {
    "X-HubSpot-RateLimit-Max": "190",
    "X-HubSpot-RateLimit-Remaining": "0",
    "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
}


class FakeBudget:
    """Records every call; `acquire` raises `fail_with` from call number `fail_from` on."""

    def __init__(self) -> None:
        self.acquired = 0
        self.observed: list[RateLimitInfo] = []
        self.rate_pauses: list[dict[str, Any]] = []
        self.auth_pauses: list[str] = []
        self.fail_from: int | None = None
        self.fail_with: Exception = Paused(until=NOW, reason="rate_limit")
        self.writes_succeeded = 0

    async def acquire(self) -> None:
        self.acquired += 1
        if self.fail_from is not None and self.acquired >= self.fail_from:
            raise self.fail_with

    async def observe(self, info: RateLimitInfo) -> None:
        self.observed.append(info)

    async def pause_for_rate_limit(self, **kwargs: Any) -> object:
        self.rate_pauses.append(kwargs)
        return NOW

    async def pause_for_auth(self, *, detail: str) -> object:
        self.auth_pauses.append(detail)
        return NOW

    async def write_succeeded(self) -> None:
        self.writes_succeeded += 1


def lead(lead_id: int, email: str, **fields: Any) -> LeadSnapshot:
    values: dict[str, Any] = {
        "firstname": None,
        "lastname": None,
        "phone": None,
        "company": None,
        "message": None,
        "source": None,
    }
    values.update(fields)
    return LeadSnapshot.of(
        id=lead_id,
        email=email,
        created_at=NOW,
        attempts=0,
        lease_token=f"t{lead_id}",
        **values,
    )


def contact_json(contact_id: str, properties: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "id": contact_id,
        "properties": properties,
        "createdAt": "2026-03-01T12:00:00Z",
        "updatedAt": "2026-03-01T12:00:00Z",
        "archived": False,
        **extra,
    }


def sent(hubspot: SandboxHubSpot, path: str, method: str = "POST") -> list[dict[str, Any]]:
    """The JSON bodies the writer sent to `method path`, in order."""
    return [
        json.loads(request.content)
        for request in hubspot.sent
        if (request.method, request.url.path) == (method, path)
    ]


def patches(hubspot: SandboxHubSpot) -> list[dict[str, Any]]:
    """The bodies of every PATCH of a contact."""
    return [json.loads(r.content) for r in hubspot.sent if r.method == "PATCH"]


def contact_id(hubspot: SandboxHubSpot, email: str) -> str:
    """The id of the sandbox's contact for `email`."""
    found = hubspot.sandbox.state.store.get_by_email(email)
    assert found is not None, f"no contact for {email}"
    return found.id


def existing(hubspot: SandboxHubSpot, email: str) -> str:
    """Create a contact in the sandbox directly (as if made earlier) and return its id."""
    return hubspot.sandbox.state.store.create({"email": email}, now=time.time()).id


@pytest.fixture
def make_client(hubspot: SandboxHubSpot) -> Callable[..., HubSpotClient]:
    def make(**overrides: Any) -> HubSpotClient:
        return hubspot.client(**({"total_timeout": 5.0} | overrides))

    return make


@pytest.fixture
async def client(make_client: Callable[..., HubSpotClient]) -> AsyncIterator[HubSpotClient]:
    async with make_client() as hub:
        yield hub


@pytest.fixture
def budget() -> FakeBudget:
    return FakeBudget()


@pytest.fixture
def make_service(client: HubSpotClient, budget: FakeBudget) -> Callable[..., ContactWriter]:
    def make(mode: str = "batch", **kwargs: Any) -> ContactWriter:
        return ContactWriter(client=client, budget=budget, mode=mode, **kwargs)  # type: ignore[arg-type]

    return make


def by_id(results: list[LeadResult]) -> dict[int, LeadResult]:
    ids = [r.lead_id for r in results]
    assert len(ids) == len(set(ids)), "one result per lead"
    return {r.lead_id: r for r in results}


# --- batch mode -----------------------------------------------------------------------


async def test_batch_upsert_syncs_every_lead(hubspot, make_service, budget) -> None:
    leads = [lead(i, f"user{i}@x.com", firstname=f"U{i}") for i in range(1, 6)]

    results = by_id(await make_service().sync(leads))

    (body,) = sent(hubspot, UPSERT)
    assert budget.acquired == 1
    assert [i["id"] for i in body["inputs"]] == [f"user{i}@x.com" for i in range(1, 6)]
    assert {i["idProperty"] for i in body["inputs"]} == {"email"}
    assert [i["objectWriteTraceId"] for i in body["inputs"]] == ["1", "2", "3", "4", "5"]
    assert body["inputs"][0]["properties"] == {"email": "user1@x.com", "firstname": "U1"}
    assert all(r.kind is ResultKind.SYNCED and r.http_status == 200 for r in results.values())
    assert {r.hubspot_id for r in results.values()} == {
        contact_id(hubspot, f"user{i}@x.com") for i in range(1, 6)
    }
    assert budget.observed[-1].max == 190
    assert budget.observed[-1].remaining == 189
    assert hubspot.sent[0].headers["Authorization"] == f"Bearer {hubspot.token}"


async def test_batch_dedupes_emails_and_newest_non_empty_field_wins(hubspot, make_service) -> None:
    leads = [
        lead(3, "Ana@X.com", firstname="Ana", phone="+34 600", company="Old Co"),
        lead(9, " ana@x.COM ", firstname="Anita", phone=None, company="New Co", lastname=""),
        lead(5, "bob@x.com", firstname="Bob"),
    ]

    results = by_id(await make_service().sync(leads))

    (body,) = sent(hubspot, UPSERT)
    inputs = body["inputs"]
    assert [i["id"] for i in inputs] == ["ana@x.com", "bob@x.com"]
    ana = inputs[0]
    assert ana["objectWriteTraceId"] == "9"  # the newest lead of the email
    assert ana["properties"] == {
        "email": "ana@x.com",
        "firstname": "Anita",  # newest wins
        "phone": "+34 600",  # newest is empty: the older value stays
        "company": "New Co",
    }
    assert results[3].kind is results[9].kind is ResultKind.SYNCED
    assert results[3].hubspot_id == results[9].hubspot_id == contact_id(hubspot, "ana@x.com")
    assert results[5].hubspot_id == contact_id(hubspot, "bob@x.com")


async def test_batch_uses_extra_properties(hubspot, make_service) -> None:
    await hubspot.configure(extra_properties=["lead_source"])  # created in the portal
    service = make_service(extra_properties={"source": "lead_source"})

    (result,) = await service.sync([lead(1, "a@x.com", source="website")])

    assert result.kind is ResultKind.SYNCED
    (body,) = sent(hubspot, UPSERT)
    assert body["inputs"][0]["properties"] == {"email": "a@x.com", "lead_source": "website"}
    (contact,) = await hubspot.contacts()
    assert contact["properties"]["lead_source"] == "website"


async def test_batch_207_fails_only_the_invalid_inputs(hubspot, make_service) -> None:
    await hubspot.configure(invalid_batch="per-input")
    leads = [lead(1, "good@x.com"), lead(2, "bad1@x"), lead(3, "bad2@x"), lead(4, "ok@x.com")]

    results = by_id(await make_service().sync(leads))

    assert len(sent(hubspot, UPSERT)) == 1
    for good, email in ((1, "good@x.com"), (4, "ok@x.com")):
        assert results[good].kind is ResultKind.SYNCED
        assert results[good].http_status == 207
        assert results[good].hubspot_id == contact_id(hubspot, email)
    for bad in (2, 3):
        assert results[bad].kind is ResultKind.FAILED
        assert results[bad].http_status == 400
        assert "VALIDATION_ERROR" in (results[bad].error or "")
    assert "bad1@x" in (results[2].error or "")


async def test_batch_207_maps_errors_back_by_trace_id_or_input_id(hubspot, make_service) -> None:
    # HubSpot's variants of a 207: one error keyed by the trace id alone, one by the input id
    # alone (in the case the input was sent with); the sandbox always sends both.
    body = {
        "status": "COMPLETE",
        "results": [
            contact_json("91", {"email": "good@x.com"}, new=False, objectWriteTraceId="1"),
            contact_json("94", {"email": "ok@x.com"}, new=False, objectWriteTraceId="4"),
        ],
        "numErrors": 2,
        "errors": [
            {
                "status": "error",
                "category": "VALIDATION_ERROR",
                "message": "Email address bad1@x is invalid",
                "context": {"objectWriteTraceId": ["2"]},
            },
            {
                "status": "error",
                "category": "VALIDATION_ERROR",
                "message": "Email address BAD2@x is invalid",
                "context": {"ids": ["BAD2@x"]},
            },
        ],
    }
    await hubspot.inject(status=207, json=body)
    leads = [lead(1, "good@x.com"), lead(2, "bad1@x"), lead(3, "bad2@x"), lead(4, "ok@x.com")]

    results = by_id(await make_service().sync(leads))

    assert results[1].kind is ResultKind.SYNCED
    assert results[1].hubspot_id == "91"
    assert results[4].kind is ResultKind.SYNCED
    assert results[4].hubspot_id == "94"
    assert results[1].http_status == 207
    for bad in (2, 3):
        assert results[bad].kind is ResultKind.FAILED
        assert results[bad].http_status == 400
        assert "VALIDATION_ERROR" in (results[bad].error or "")
    assert "bad1@x" in (results[2].error or "")


@pytest.mark.parametrize(
    ("status", "category", "kind", "recorded"),
    [
        ("500", "INTERNAL_ERROR", ResultKind.RETRY, 500),
        ("429", "RATE_LIMITS", ResultKind.RETRY, 429),
        ("error", "CONFLICT", ResultKind.RETRY, 400),
        ("400", "VALIDATION_ERROR", ResultKind.FAILED, 400),
        ("404", "OBJECT_NOT_FOUND", ResultKind.FAILED, 404),
    ],
)
async def test_batch_207_errors_follow_hubspots_status_and_category(
    hubspot, make_service, status: str, category: str, kind: ResultKind, recorded: int
) -> None:
    await hubspot.fail_input(
        "odd@x.com", status=status, category=category, message="HubSpot's own words"
    )

    results = by_id(await make_service().sync([lead(1, "good@x.com"), lead(2, "odd@x.com")]))

    assert results[1].kind is ResultKind.SYNCED
    assert results[2].kind is kind
    assert results[2].http_status == recorded
    assert results[2].error == f"{category}: HubSpot's own words"
    assert [c["properties"]["email"] for c in await hubspot.contacts()] == ["good@x.com"]


async def test_batch_409_retries_instead_of_failing(hubspot, make_service) -> None:
    body = error_body("Conflict: the contact is being written", "CONFLICT")
    await hubspot.inject(status=409, json=body)
    results = by_id(await make_service().sync([lead(1, "a@x.com"), lead(2, "b@x.com")]))
    assert {r.kind for r in results.values()} == {ResultKind.RETRY}
    assert {r.http_status for r in results.values()} == {409}
    assert len(hubspot.sent) == 1  # not split: a conflict is nobody's fault


async def test_the_write_carries_the_emails_synced_leads_newest_value_wins(
    hubspot, make_service
) -> None:
    history = [
        lead(1, "ana@x.com", firstname="First", company="Acme", phone="100"),
        lead(5, "ana@x.com", firstname="Newest", phone=None),
    ]
    retried = lead(3, "ana@x.com", firstname="Older", phone="333", lastname="Lopez")

    results = by_id(await make_service().sync([retried], history=history))

    assert results[3].kind is ResultKind.SYNCED
    ((sent_input,),) = [body["inputs"] for body in sent(hubspot, UPSERT)]
    # By lead id: 1, then 3, then 5; empty values never win.
    assert sent_input["properties"] == {
        "email": "ana@x.com",
        "firstname": "Newest",
        "lastname": "Lopez",
        "phone": "333",
        "company": "Acme",
    }


class LosingLease:
    """A lease that other workers take over, one lead at a time."""

    def __init__(self, lost: set[int]) -> None:
        self.lost = lost
        self.asked: list[list[int]] = []

    async def cover(self, lead_ids: Any) -> set[int]:
        self.asked.append(list(lead_ids))
        return {i for i in lead_ids if i not in self.lost}

    @contextlib.asynccontextmanager
    async def fence(self, lead_ids: Any) -> AsyncIterator[set[int]]:
        yield set(lead_ids)


@pytest.mark.parametrize("mode", ["batch", "single"])
async def test_leads_whose_lease_is_lost_are_not_sent(hubspot, make_service, mode: str) -> None:
    lease = LosingLease(lost={2})
    leads = [lead(1, "a@x.com"), lead(2, "b@x.com")]

    results = by_id(await make_service(mode).sync(leads, lease=lease))

    assert results[2].kind is ResultKind.RELEASED
    assert results[1].kind is ResultKind.SYNCED
    assert hubspot.sent
    assert all(b"b@x.com" not in request.content for request in hubspot.sent)
    assert lease.asked  # checked before every call


async def test_batch_input_missing_from_a_200_is_retried(hubspot, make_service) -> None:
    # A 2xx that silently leaves an input out: nothing says it was applied.
    only_a = contact_json("1", {"email": "a@x.com"}, new=True, objectWriteTraceId="1")
    await hubspot.inject(status=200, json={"status": "COMPLETE", "results": [only_a]})
    results = by_id(await make_service().sync([lead(1, "a@x.com"), lead(2, "b@x.com")]))
    assert results[1].kind is ResultKind.SYNCED
    assert results[2].kind is ResultKind.RETRY
    assert results[2].http_status == 200
    assert results[2].error


@pytest.mark.parametrize(("n", "bad"), [(16, {5}), (32, {3, 30}), (64, {1, 17, 40}), (7, {2})])
async def test_whole_batch_400_is_split_until_bad_leads_stand_alone(
    hubspot, make_service, budget, n: int, bad: set[int]
) -> None:
    # The bad leads carry a property the portal does not have: HubSpot's 400 names the
    # property, not the leads, so only halving finds them.
    await hubspot.configure(invalid_batch="whole")
    leads = [lead(i, f"user{i}@x.com", source="web" if i in bad else None) for i in range(1, n + 1)]

    results = by_id(await make_service(extra_properties={"source": "lead_source"}).sync(leads))

    assert set(results) == set(range(1, n + 1))
    for lead_id, result in results.items():
        if lead_id in bad:
            assert result.kind is ResultKind.FAILED
            assert result.http_status == 400
            assert "VALIDATION_ERROR" in (result.error or "")
            assert "lead_source" in (result.error or "")
        else:
            assert result.kind is ResultKind.SYNCED, lead_id
    # Each bad lead costs at most two calls per halving level, plus the first call.
    calls = len(sent(hubspot, UPSERT))
    bound = 1 + 2 * len(bad) * math.ceil(math.log2(n))
    assert len(bad) + 1 <= calls <= bound
    assert budget.acquired == calls  # every call waits for the shared budget
    assert len(await hubspot.contacts()) == n - len(bad)


async def test_emails_named_by_a_whole_batch_400_are_tried_alone_the_rest_at_once(
    hubspot, make_service, budget
) -> None:
    # HubSpot names the invalid emails; a named email that is valid after all still syncs.
    named = ["user3@x", "user9@x.com"]
    listed = ", ".join(f"Email address {e} is invalid" for e in named)
    await hubspot.inject(status=400, json=error_body(listed, "VALIDATION_ERROR"))
    leads = [lead(i, "user3@x" if i == 3 else f"user{i}@x.com") for i in range(1, 17)]

    results = by_id(await make_service().sync(leads))

    assert results[3].kind is ResultKind.FAILED
    assert all(results[i].kind is ResultKind.SYNCED for i in range(1, 17) if i != 3)
    # The whole batch, the 14 unnamed at once, then each named email alone.
    assert [len(body["inputs"]) for body in sent(hubspot, UPSERT)] == [16, 14, 1, 1]
    assert budget.acquired == 4


@pytest.mark.parametrize(
    ("policy", "daily"), [("TEN_SECONDLY_ROLLING", False), ("SECONDLY", False), ("DAILY", True)]
)
async def test_batch_429_rate_limits_and_pauses_once(
    hubspot, make_service, budget, policy: str, daily: bool
) -> None:
    headers = {"Retry-After": "7", **RATE_HEADERS}
    await hubspot.inject(status=429, json=rate_limit_body(policy), headers=headers)
    leads = [lead(i, f"u{i}@x.com") for i in range(1, 11)]

    results = by_id(await make_service().sync(leads))

    assert all(r.kind is ResultKind.RATE_LIMITED for r in results.values())
    assert all(r.http_status == 429 and r.retry_after_seconds == 7 for r in results.values())
    # One response, one pause: not one per lead of the batch.
    assert len(budget.rate_pauses) == 1
    pause = budget.rate_pauses[0]
    assert pause["daily"] is daily
    assert pause["retry_after_seconds"] == 7
    assert pause["interval_seconds"] == 10.0
    assert budget.auth_pauses == []
    assert len(budget.observed) == 1
    assert budget.observed[0].remaining == 0


@pytest.mark.parametrize("status", [401, 403])
async def test_batch_auth_failure_pauses_and_keeps_leads(
    hubspot, make_service, budget, status: int
) -> None:
    category = "INVALID_AUTHENTICATION" if status == 401 else "MISSING_SCOPES"
    await hubspot.inject(status=status, json=error_body("Authentication failed", category))
    results = by_id(await make_service().sync([lead(1, "a@x.com"), lead(2, "b@x.com")]))
    assert all(r.kind is ResultKind.AUTH_PAUSED for r in results.values())
    assert all(r.http_status == status for r in results.values())
    assert len(budget.auth_pauses) == 1
    assert hubspot.token not in budget.auth_pauses[0]
    assert budget.rate_pauses == []


async def test_batch_revoked_token_pauses_for_auth(hubspot, make_service, budget) -> None:
    await hubspot.configure(revoke_tokens=[hubspot.token], add_tokens=["pat-other"])
    results = by_id(await make_service().sync([lead(1, "a@x.com")]))
    assert results[1].kind is ResultKind.AUTH_PAUSED
    assert results[1].http_status == 401
    assert len(budget.auth_pauses) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504, 521])
async def test_batch_server_errors_retry(hubspot, make_service, budget, status: int) -> None:
    await hubspot.inject(status=status, json=error_body("oops", "INTERNAL_ERROR"))
    results = by_id(await make_service().sync([lead(1, "a@x.com"), lead(2, "b@x.com")]))
    assert all(r.kind is ResultKind.RETRY and r.http_status == status for r in results.values())
    assert all(r.error for r in results.values())
    assert budget.rate_pauses == []
    assert budget.auth_pauses == []


async def test_batch_423_retries_after_at_least_two_seconds(hubspot, make_service) -> None:
    await hubspot.inject(status=423, json=error_body("locked", "LOCKED"))
    (result,) = await make_service().sync([lead(1, "a@x.com")])
    assert result.kind is ResultKind.RETRY
    assert result.http_status == 423
    assert result.retry_after_seconds is not None
    assert result.retry_after_seconds >= 2.0


async def test_batch_503_with_retry_after_carries_it(hubspot, make_service) -> None:
    await hubspot.inject(status=503, json=error_body("busy", "X"), headers={"Retry-After": "30"})
    (result,) = await make_service().sync([lead(1, "a@x.com")])
    assert result.kind is ResultKind.RETRY
    assert result.retry_after_seconds == 30


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("failure", ["hang", "drop", "refused"])
async def test_batch_timeouts_and_connection_errors_retry(
    hubspot, make_client, budget, failure: str
) -> None:
    # hang: the read times out; drop: the connection closes unanswered; refused: nobody listens.
    overrides: dict[str, Any] = {"read_timeout": 0.1}
    if failure == "refused":
        overrides["base_url"] = f"http://127.0.0.1:{_closed_port()}"
    else:
        await hubspot.inject(action=failure)

    async with make_client(**overrides) as client:
        service = ContactWriter(client=client, budget=budget, mode="batch")  # type: ignore[arg-type]
        results = await service.sync([lead(1, "a@x.com"), lead(2, "b@x.com")])

    assert [r.kind for r in results] == [ResultKind.RETRY, ResultKind.RETRY]
    assert all(r.http_status is None for r in results)


async def test_batch_unreadable_2xx_retries(hubspot, make_service) -> None:
    await hubspot.inject(status=200, content="<html>gateway</html>")
    (result,) = await make_service().sync([lead(1, "a@x.com")])
    assert result.kind is ResultKind.RETRY


@pytest.mark.parametrize("exc", [Paused(until=NOW, reason="rate_limit"), ProbeDue()])
async def test_batch_paused_budget_releases_without_calling(
    hubspot, make_service, budget, exc: Exception
) -> None:
    budget.fail_from, budget.fail_with = 1, exc
    results = by_id(await make_service().sync([lead(1, "a@x.com"), lead(2, "a@x.com")]))
    assert hubspot.sent == []
    assert [r.kind for r in results.values()] == [ResultKind.RELEASED] * 2


async def test_batch_paused_while_splitting_releases_the_rest(
    hubspot, make_service, budget
) -> None:
    body = error_body("Property values were not valid", "VALIDATION_ERROR")
    await hubspot.inject(status=400, json=body)
    budget.fail_from = 2  # the first call goes out, the split halves find the gate paused
    results = by_id(await make_service().sync([lead(i, f"u{i}@x.com") for i in range(1, 5)]))
    assert all(r.kind is ResultKind.RELEASED for r in results.values())
    assert len(hubspot.sent) == 1


# --- single mode ----------------------------------------------------------------------


async def test_single_creates_a_contact(hubspot, make_service, budget) -> None:
    (result,) = await make_service("single").sync([lead(1, "A@x.com", firstname="Ana")])
    created = contact_id(hubspot, "a@x.com")
    assert result == LeadResult(1, ResultKind.SYNCED, hubspot_id=created, http_status=201)
    assert sent(hubspot, CONTACTS) == [{"properties": {"email": "a@x.com", "firstname": "Ana"}}]
    assert budget.acquired == 1
    assert budget.observed[-1].max == 190


async def test_single_dedupes_leads_of_one_email(hubspot, make_service) -> None:
    leads = [lead(1, "a@x.com", firstname="Old"), lead(2, "A@X.com", firstname="New")]
    results = by_id(await make_service("single").sync(leads))
    (create,) = sent(hubspot, CONTACTS)
    assert create["properties"]["firstname"] == "New"
    assert results[1].hubspot_id == results[2].hubspot_id == contact_id(hubspot, "a@x.com")


async def test_single_409_patches_the_existing_id(hubspot, make_service, budget) -> None:
    known = existing(hubspot, "a@x.com")

    (result,) = await make_service("single").sync([lead(1, "a@x.com", firstname="Ana")])

    assert result == LeadResult(1, ResultKind.SYNCED, hubspot_id=known, http_status=200)
    assert sent(hubspot, f"{CONTACTS}/{known}", "PATCH") == [
        {"properties": {"email": "a@x.com", "firstname": "Ana"}}
    ]
    assert sent(hubspot, SEARCH) == []
    assert budget.acquired == 2  # the create and the patch both count against the budget


async def test_single_409_without_id_searches_then_patches(hubspot, make_service) -> None:
    known = existing(hubspot, "a@x.com")
    await hubspot.inject(
        status=409, json=error_body("Contact already exists", "CONFLICT"), endpoints=["create"]
    )

    (result,) = await make_service("single").sync([lead(1, "A@x.com")])

    assert result.kind is ResultKind.SYNCED
    assert result.hubspot_id == known
    assert len(patches(hubspot)) == 1
    (search,) = sent(hubspot, SEARCH)
    flt = search["filterGroups"][0]["filters"][0]
    assert flt == {"propertyName": "email", "operator": "EQ", "value": "a@x.com"}


async def test_single_409_search_finds_nothing_retries(hubspot, make_service) -> None:
    # Search lags creates by seconds: the contact the 409 speaks of is not found yet.
    await hubspot.inject(
        status=409, json=error_body("Contact already exists", "CONFLICT"), endpoints=["create"]
    )

    (result,) = await make_service("single").sync([lead(1, "a@x.com")])

    assert result.kind is ResultKind.RETRY
    assert result.http_status == 409
    assert len(sent(hubspot, SEARCH)) == 1
    assert patches(hubspot) == []


async def test_single_search_429_does_not_pause_the_shared_budget(
    hubspot, make_service, budget
) -> None:
    await hubspot.inject(
        status=409, json=error_body("Contact already exists", "CONFLICT"), endpoints=["create"]
    )
    await hubspot.inject(
        status=429,
        json=rate_limit_body("SECONDLY"),
        headers={"Retry-After": "1"},
        endpoints=["search"],
    )

    (result,) = await make_service("single").sync([lead(1, "a@x.com")])

    assert result.kind is ResultKind.RETRY
    assert budget.rate_pauses == []


async def test_single_create_429_pauses(hubspot, make_service, budget) -> None:
    await hubspot.inject(status=429, json=rate_limit_body("DAILY"), endpoints=["create"])
    results = await make_service("single").sync([lead(1, "a@x.com"), lead(2, "b@x.com")])
    assert results[0].kind is ResultKind.RATE_LIMITED
    assert budget.rate_pauses[0]["daily"] is True


async def test_single_400_fails_only_that_lead(hubspot, make_service) -> None:
    results = by_id(await make_service("single").sync([lead(1, "bad@x"), lead(2, "ok@x.com")]))
    assert results[1].kind is ResultKind.FAILED
    assert results[1].http_status == 400
    assert results[2].kind is ResultKind.SYNCED


async def test_single_paused_mid_batch_releases_the_rest(hubspot, make_service, budget) -> None:
    budget.fail_from = 2
    results = by_id(
        await make_service("single").sync([lead(i, f"u{i}@x.com") for i in range(1, 4)])
    )
    assert len(sent(hubspot, CONTACTS)) == 1
    assert results[1].kind is ResultKind.SYNCED
    assert results[2].kind is results[3].kind is ResultKind.RELEASED


async def test_single_paused_before_the_patch_releases(hubspot, make_service, budget) -> None:
    existing(hubspot, "a@x.com")  # the create answers 409 with its id
    budget.fail_from = 2
    (result,) = await make_service("single").sync([lead(1, "a@x.com")])
    assert result.kind is ResultKind.RELEASED
    assert patches(hubspot) == []


@pytest.mark.parametrize("status", [401, 403])
async def test_single_auth_failure_pauses(hubspot, make_service, budget, status: int) -> None:
    await hubspot.inject(status=status, json=error_body("nope", "INVALID_AUTHENTICATION"))
    (result,) = await make_service("single").sync([lead(1, "a@x.com")])
    assert result.kind is ResultKind.AUTH_PAUSED
    assert len(budget.auth_pauses) == 1


# --- a prepaid first turn (the worker already waited for the budget's slot) -----------


async def test_prepaid_batch_does_not_acquire_again(hubspot, make_service, budget) -> None:
    results = await make_service().sync([lead(1, "a@x.com")], prepaid=True)
    assert results[0].kind is ResultKind.SYNCED
    assert len(sent(hubspot, UPSERT)) == 1
    assert budget.acquired == 0


async def test_prepaid_covers_only_the_first_call_of_a_split(hubspot, make_service, budget) -> None:
    leads = [lead(1, "a@x.com"), lead(2, "bad@x"), lead(3, "c@x.com"), lead(4, "d@x.com")]
    results = by_id(await make_service().sync(leads, prepaid=True))
    assert results[2].kind is ResultKind.FAILED
    calls = len(sent(hubspot, UPSERT))
    assert calls > 1
    assert budget.acquired == calls - 1


async def test_prepaid_single_mode_pays_for_every_later_call(hubspot, make_service, budget) -> None:
    for email in ("a@x.com", "b@x.com"):
        existing(hubspot, email)  # each create answers 409, then a patch
    results = await make_service("single").sync(
        [lead(1, "a@x.com"), lead(2, "b@x.com")], prepaid=True
    )
    assert [r.kind for r in results] == [ResultKind.SYNCED, ResultKind.SYNCED]
    assert len(hubspot.sent) == 4
    assert budget.acquired == 3  # 4 calls (2 creates, 2 patches), the first one prepaid
