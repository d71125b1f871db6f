"""ContactWriter against a respx HubSpot and a fake budget: batch and single mode outcomes."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import respx

from leadsync.engine.gate import Paused, ProbeDue
from leadsync.engine.writer import ContactWriter, LeadResult, ResultKind
from leadsync.hubspot.client import HubSpotClient
from leadsync.hubspot.models import RateLimitInfo
from leadsync.store.queue import LeadSnapshot

BASE = "https://api.hubapi.test"
CONTACTS = "/crm/v3/objects/contacts"
UPSERT = f"{CONTACTS}/batch/upsert"
SEARCH = f"{CONTACTS}/search"
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
RATE_HEADERS = {
    "X-HubSpot-RateLimit-Max": "190",
    "X-HubSpot-RateLimit-Remaining": "150",
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


def error_json(message: str, category: str, **extra: Any) -> dict[str, Any]:
    return {"status": "error", "message": message, "correlationId": "c-1", "category": category}


def upsert_ok(request: httpx.Request, *, skip: set[str] = frozenset()) -> httpx.Response:
    """Answer a batch upsert like HubSpot: one result per input, ids derived from the email."""
    inputs = json.loads(request.content)["inputs"]
    results = [
        contact_json(
            str(1000 + sum(map(ord, item["id"]))),
            item["properties"],
            new=True,
            objectWriteTraceId=item.get("objectWriteTraceId"),
        )
        for item in inputs
        if item["id"] not in skip
    ]
    return httpx.Response(
        200, json={"status": "COMPLETE", "results": results}, headers=RATE_HEADERS
    )


def sent(route: respx.Route, index: int = -1) -> dict[str, Any]:
    return json.loads(route.calls[index].request.content)


@pytest.fixture
def router() -> respx.MockRouter:
    return respx.MockRouter(base_url=BASE, assert_all_called=False, assert_all_mocked=True)


@pytest.fixture
async def client(router: respx.MockRouter) -> AsyncIterator[HubSpotClient]:
    async with HubSpotClient(
        base_url=BASE,
        token_provider=lambda: "pat-test-token",
        transport=httpx.MockTransport(router.async_handler),
        total_timeout=5.0,
    ) as hub:
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


async def test_batch_upsert_syncs_every_lead(router, make_service, budget) -> None:
    route = router.post(UPSERT).mock(side_effect=upsert_ok)
    leads = [lead(i, f"user{i}@x.com", firstname=f"U{i}") for i in range(1, 6)]

    results = by_id(await make_service().sync(leads))

    assert route.call_count == 1
    assert budget.acquired == 1
    body = sent(route)
    assert [i["id"] for i in body["inputs"]] == [f"user{i}@x.com" for i in range(1, 6)]
    assert {i["idProperty"] for i in body["inputs"]} == {"email"}
    assert [i["objectWriteTraceId"] for i in body["inputs"]] == ["1", "2", "3", "4", "5"]
    assert body["inputs"][0]["properties"] == {"email": "user1@x.com", "firstname": "U1"}
    assert all(r.kind is ResultKind.SYNCED and r.http_status == 200 for r in results.values())
    assert len({r.hubspot_id for r in results.values()}) == 5
    assert budget.observed[-1].max == 190
    assert budget.observed[-1].remaining == 150
    assert route.calls[0].request.headers["Authorization"] == "Bearer pat-test-token"


async def test_batch_dedupes_emails_and_newest_non_empty_field_wins(router, make_service) -> None:
    route = router.post(UPSERT).mock(side_effect=upsert_ok)
    leads = [
        lead(3, "Ana@X.com", firstname="Ana", phone="+34 600", company="Old Co"),
        lead(9, " ana@x.COM ", firstname="Anita", phone=None, company="New Co", lastname=""),
        lead(5, "bob@x.com", firstname="Bob"),
    ]

    results = by_id(await make_service().sync(leads))

    assert route.call_count == 1
    inputs = sent(route)["inputs"]
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
    assert results[3].hubspot_id == results[9].hubspot_id is not None
    assert results[5].hubspot_id != results[3].hubspot_id


async def test_batch_uses_extra_properties(router, make_service) -> None:
    route = router.post(UPSERT).mock(side_effect=upsert_ok)
    service = make_service(extra_properties={"source": "lead_source"})
    await service.sync([lead(1, "a@x.com", source="website")])
    assert sent(route)["inputs"][0]["properties"] == {"email": "a@x.com", "lead_source": "website"}


async def test_batch_207_maps_errors_back_by_trace_id(router, make_service) -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        inputs = json.loads(request.content)["inputs"]
        ok = [i for i in inputs if "bad" not in i["id"]]
        body = {
            "status": "COMPLETE",
            "results": [
                contact_json(f"9{i['objectWriteTraceId']}", i["properties"], new=False) for i in ok
            ],
            "numErrors": 2,
            "errors": [
                {
                    "status": "error",
                    "category": "VALIDATION_ERROR",
                    "message": "Email address bad1@x is invalid",
                    "context": {"objectWriteTraceId": ["2"]},
                },
                {  # keyed only by the input id (the email), as some variants do
                    "status": "error",
                    "category": "VALIDATION_ERROR",
                    "message": "Email address BAD2@x is invalid",
                    "context": {"ids": ["BAD2@x"]},
                },
            ],
        }
        return httpx.Response(207, json=body)

    router.post(UPSERT).mock(side_effect=reply)
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
    router, make_service, status: str, category: str, kind: ResultKind, recorded: int
) -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        inputs = json.loads(request.content)["inputs"]
        ok = [i for i in inputs if i["id"] != "odd@x.com"]
        error = {
            "status": status,
            "category": category,
            "message": "HubSpot's own words",
            "context": {"ids": ["odd@x.com"]},
        }
        body = {
            "status": "COMPLETE",
            "results": [contact_json("7", i["properties"]) for i in ok],
            "numErrors": 1,
            "errors": [error],
        }
        return httpx.Response(207, json=body)

    router.post(UPSERT).mock(side_effect=reply)
    results = by_id(await make_service().sync([lead(1, "good@x.com"), lead(2, "odd@x.com")]))

    assert results[1].kind is ResultKind.SYNCED
    assert results[2].kind is kind
    assert results[2].http_status == recorded
    assert results[2].error == f"{category}: HubSpot's own words"


async def test_batch_409_retries_instead_of_failing(router, make_service) -> None:
    body = error_json("Conflict: the contact is being written", "CONFLICT")
    router.post(UPSERT).mock(return_value=httpx.Response(409, json=body))
    results = by_id(await make_service().sync([lead(1, "a@x.com"), lead(2, "b@x.com")]))
    assert {r.kind for r in results.values()} == {ResultKind.RETRY}
    assert {r.http_status for r in results.values()} == {409}
    assert len(router.calls) == 1  # not split: a conflict is nobody's fault


async def test_the_write_carries_the_emails_synced_leads_newest_value_wins(
    router, make_service
) -> None:
    route = router.post(UPSERT).mock(side_effect=upsert_ok)
    history = [
        lead(1, "ana@x.com", firstname="First", company="Acme", phone="100"),
        lead(5, "ana@x.com", firstname="Newest", phone=None),
    ]
    retried = lead(3, "ana@x.com", firstname="Older", phone="333", lastname="Lopez")

    results = by_id(await make_service().sync([retried], history=history))

    assert results[3].kind is ResultKind.SYNCED
    (sent_input,) = sent(route)["inputs"]
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


@pytest.mark.parametrize("mode", ["batch", "single"])
async def test_leads_whose_lease_is_lost_are_not_sent(router, make_service, mode: str) -> None:
    upsert = router.post(UPSERT).mock(side_effect=upsert_ok)
    create = router.post(CONTACTS).mock(
        return_value=httpx.Response(201, json=contact_json("1", {"email": "a@x.com"}))
    )
    lease = LosingLease(lost={2})
    leads = [lead(1, "a@x.com"), lead(2, "b@x.com")]

    results = by_id(await make_service(mode).sync(leads, lease=lease))

    assert results[2].kind is ResultKind.RELEASED
    assert results[1].kind is ResultKind.SYNCED
    bodies = [json.loads(c.request.content) for c in (*upsert.calls, *create.calls)]
    assert "b@x.com" not in json.dumps(bodies)
    assert lease.asked  # checked before every call


async def test_batch_input_missing_from_a_200_is_retried(router, make_service) -> None:
    router.post(UPSERT).mock(side_effect=lambda request: upsert_ok(request, skip={"b@x.com"}))
    results = by_id(await make_service().sync([lead(1, "a@x.com"), lead(2, "b@x.com")]))
    assert results[1].kind is ResultKind.SYNCED
    assert results[2].kind is ResultKind.RETRY
    assert results[2].http_status == 200
    assert results[2].error


@pytest.mark.parametrize(("n", "bad"), [(16, {5}), (32, {3, 30}), (64, {1, 17, 40}), (7, {2})])
async def test_whole_batch_400_is_split_until_bad_leads_stand_alone(
    router, make_service, budget, n: int, bad: set[int]
) -> None:
    bad_emails = {f"user{i}@x" for i in bad}

    def reply(request: httpx.Request) -> httpx.Response:
        ids = [i["id"] for i in json.loads(request.content)["inputs"]]
        wrong = [e for e in ids if e in bad_emails]
        if wrong:
            message = f"Property values were not valid: Email address {wrong[0]} is invalid"
            return httpx.Response(400, json=error_json(message, "VALIDATION_ERROR"))
        return upsert_ok(request)

    route = router.post(UPSERT).mock(side_effect=reply)
    leads = [lead(i, f"user{i}@x" if i in bad else f"user{i}@x.com") for i in range(1, n + 1)]

    results = by_id(await make_service().sync(leads))

    assert set(results) == set(range(1, n + 1))
    for lead_id, result in results.items():
        if lead_id in bad:
            assert result.kind is ResultKind.FAILED
            assert result.http_status == 400
            assert "VALIDATION_ERROR" in (result.error or "")
        else:
            assert result.kind is ResultKind.SYNCED, lead_id
    # Each bad lead costs at most two calls per halving level, plus the first call.
    bound = 1 + 2 * len(bad) * math.ceil(math.log2(n))
    assert len(bad) + 1 <= route.call_count <= bound
    assert budget.acquired == route.call_count  # every call waits for the shared budget


async def test_emails_named_by_a_whole_batch_400_are_tried_alone_the_rest_at_once(
    router, make_service, budget
) -> None:
    # HubSpot names the invalid emails; a named email that is valid after all still syncs.
    named = ["user3@x", "user9@x.com"]
    invalid = {"user3@x"}

    def reply(request: httpx.Request) -> httpx.Response:
        ids = [i["id"] for i in json.loads(request.content)["inputs"]]
        if any(e in invalid for e in ids):
            listed = ", ".join(f"Email address {e} is invalid" for e in named)
            return httpx.Response(400, json=error_json(listed, "VALIDATION_ERROR"))
        return upsert_ok(request)

    route = router.post(UPSERT).mock(side_effect=reply)
    leads = [lead(i, "user3@x" if i == 3 else f"user{i}@x.com") for i in range(1, 17)]

    results = by_id(await make_service().sync(leads))

    assert results[3].kind is ResultKind.FAILED
    assert all(results[i].kind is ResultKind.SYNCED for i in range(1, 17) if i != 3)
    # The whole batch, the 14 unnamed at once, then each named email alone.
    assert route.call_count == 4
    assert budget.acquired == 4


@pytest.mark.parametrize(
    ("policy", "daily"), [("TEN_SECONDLY_ROLLING", False), ("SECONDLY", False), ("DAILY", True)]
)
async def test_batch_429_rate_limits_and_pauses_once(
    router, make_service, budget, policy: str, daily: bool
) -> None:
    body = {
        "status": "error",
        "message": "You have reached your limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": "c",
        "policyName": policy,
    }
    headers = {"Retry-After": "7", **RATE_HEADERS, "X-HubSpot-RateLimit-Remaining": "0"}
    router.post(UPSERT).respond(429, json=body, headers=headers)
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
    router, make_service, budget, status: int
) -> None:
    category = "INVALID_AUTHENTICATION" if status == 401 else "MISSING_SCOPES"
    router.post(UPSERT).respond(status, json=error_json("Authentication failed", category))
    results = by_id(await make_service().sync([lead(1, "a@x.com"), lead(2, "b@x.com")]))
    assert all(r.kind is ResultKind.AUTH_PAUSED for r in results.values())
    assert all(r.http_status == status for r in results.values())
    assert len(budget.auth_pauses) == 1
    assert "pat-test-token" not in budget.auth_pauses[0]
    assert budget.rate_pauses == []


@pytest.mark.parametrize("status", [500, 502, 503, 504, 521])
async def test_batch_server_errors_retry(router, make_service, budget, status: int) -> None:
    router.post(UPSERT).respond(status, json=error_json("oops", "INTERNAL_ERROR"))
    results = by_id(await make_service().sync([lead(1, "a@x.com"), lead(2, "b@x.com")]))
    assert all(r.kind is ResultKind.RETRY and r.http_status == status for r in results.values())
    assert all(r.error for r in results.values())
    assert budget.rate_pauses == []
    assert budget.auth_pauses == []


async def test_batch_423_retries_after_at_least_two_seconds(router, make_service) -> None:
    router.post(UPSERT).respond(423, json=error_json("locked", "LOCKED"))
    (result,) = await make_service().sync([lead(1, "a@x.com")])
    assert result.kind is ResultKind.RETRY
    assert result.http_status == 423
    assert result.retry_after_seconds is not None
    assert result.retry_after_seconds >= 2.0


async def test_batch_503_with_retry_after_carries_it(router, make_service) -> None:
    router.post(UPSERT).respond(503, json=error_json("busy", "X"), headers={"Retry-After": "30"})
    (result,) = await make_service().sync([lead(1, "a@x.com")])
    assert result.kind is ResultKind.RETRY
    assert result.retry_after_seconds == 30


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.ConnectError("connection refused"),
        httpx.RemoteProtocolError("server disconnected"),
    ],
)
async def test_batch_timeouts_and_connection_errors_retry(
    router, make_service, exc: Exception
) -> None:
    router.post(UPSERT).mock(side_effect=exc)
    results = await make_service().sync([lead(1, "a@x.com"), lead(2, "b@x.com")])
    assert [r.kind for r in results] == [ResultKind.RETRY, ResultKind.RETRY]
    assert all(r.http_status is None for r in results)


async def test_batch_unreadable_2xx_retries(router, make_service) -> None:
    router.post(UPSERT).respond(200, content=b"<html>gateway</html>")
    (result,) = await make_service().sync([lead(1, "a@x.com")])
    assert result.kind is ResultKind.RETRY


@pytest.mark.parametrize("exc", [Paused(until=NOW, reason="rate_limit"), ProbeDue()])
async def test_batch_paused_budget_releases_without_calling(
    router, make_service, budget, exc: Exception
) -> None:
    route = router.post(UPSERT).mock(side_effect=upsert_ok)
    budget.fail_from, budget.fail_with = 1, exc
    results = by_id(await make_service().sync([lead(1, "a@x.com"), lead(2, "a@x.com")]))
    assert route.call_count == 0
    assert [r.kind for r in results.values()] == [ResultKind.RELEASED] * 2


async def test_batch_paused_while_splitting_releases_the_rest(router, make_service, budget) -> None:
    router.post(UPSERT).mock(
        side_effect=lambda request: httpx.Response(
            400, json=error_json("Property values were not valid", "VALIDATION_ERROR")
        )
    )
    budget.fail_from = 2  # the first call goes out, the split halves find the gate paused
    results = by_id(await make_service().sync([lead(i, f"u{i}@x.com") for i in range(1, 5)]))
    assert all(r.kind is ResultKind.RELEASED for r in results.values())


# --- single mode ----------------------------------------------------------------------


async def test_single_creates_a_contact(router, make_service, budget) -> None:
    create = router.post(CONTACTS).respond(
        201, json=contact_json("501", {"email": "a@x.com"}), headers=RATE_HEADERS
    )
    (result,) = await make_service("single").sync([lead(1, "A@x.com", firstname="Ana")])
    assert result == LeadResult(1, ResultKind.SYNCED, hubspot_id="501", http_status=201)
    assert sent(create) == {"properties": {"email": "a@x.com", "firstname": "Ana"}}
    assert budget.acquired == 1
    assert budget.observed[-1].max == 190


async def test_single_dedupes_leads_of_one_email(router, make_service) -> None:
    create = router.post(CONTACTS).respond(201, json=contact_json("501", {"email": "a@x.com"}))
    leads = [lead(1, "a@x.com", firstname="Old"), lead(2, "A@X.com", firstname="New")]
    results = by_id(await make_service("single").sync(leads))
    assert create.call_count == 1
    assert sent(create)["properties"]["firstname"] == "New"
    assert results[1].hubspot_id == results[2].hubspot_id == "501"


async def test_single_409_patches_the_existing_id(router, make_service, budget) -> None:
    router.post(CONTACTS).respond(
        409, json=error_json("Contact already exists. Existing ID: 37765128953", "CONFLICT")
    )
    patch = router.patch(f"{CONTACTS}/37765128953").respond(
        200, json=contact_json("37765128953", {"email": "a@x.com"})
    )
    search = router.post(SEARCH).respond(200, json={"total": 0, "results": []})

    (result,) = await make_service("single").sync([lead(1, "a@x.com", firstname="Ana")])

    assert result == LeadResult(1, ResultKind.SYNCED, hubspot_id="37765128953", http_status=200)
    assert sent(patch) == {"properties": {"email": "a@x.com", "firstname": "Ana"}}
    assert search.call_count == 0
    assert budget.acquired == 2  # the create and the patch both count against the budget


async def test_single_409_without_id_searches_then_patches(router, make_service) -> None:
    router.post(CONTACTS).respond(409, json=error_json("Contact already exists", "CONFLICT"))
    search = router.post(SEARCH).respond(
        200, json={"total": 1, "results": [contact_json("777", {"email": "a@x.com"})]}
    )
    patch = router.patch(f"{CONTACTS}/777").respond(200, json=contact_json("777", {}))

    (result,) = await make_service("single").sync([lead(1, "A@x.com")])

    assert result.kind is ResultKind.SYNCED
    assert result.hubspot_id == "777"
    assert patch.call_count == 1
    flt = sent(search)["filterGroups"][0]["filters"][0]
    assert flt == {"propertyName": "email", "operator": "EQ", "value": "a@x.com"}


async def test_single_409_search_finds_nothing_retries(router, make_service) -> None:
    router.post(CONTACTS).respond(409, json=error_json("Contact already exists", "CONFLICT"))
    router.post(SEARCH).respond(200, json={"total": 0, "results": []})
    patch = router.patch(url__regex=rf"{CONTACTS}/.+").respond(200, json=contact_json("1", {}))

    (result,) = await make_service("single").sync([lead(1, "a@x.com")])

    assert result.kind is ResultKind.RETRY
    assert result.http_status == 409
    assert patch.call_count == 0


async def test_single_search_429_does_not_pause_the_shared_budget(
    router, make_service, budget
) -> None:
    router.post(CONTACTS).respond(409, json=error_json("Contact already exists", "CONFLICT"))
    router.post(SEARCH).respond(
        429,
        json={"status": "error", "message": "secondly", "policyName": "SECONDLY"},
        headers={"Retry-After": "1"},
    )

    (result,) = await make_service("single").sync([lead(1, "a@x.com")])

    assert result.kind is ResultKind.RETRY
    assert budget.rate_pauses == []


async def test_single_create_429_pauses(router, make_service, budget) -> None:
    router.post(CONTACTS).respond(
        429,
        json={"status": "error", "message": "daily", "policyName": "DAILY"},
    )
    results = await make_service("single").sync([lead(1, "a@x.com"), lead(2, "b@x.com")])
    assert results[0].kind is ResultKind.RATE_LIMITED
    assert budget.rate_pauses[0]["daily"] is True


async def test_single_400_fails_only_that_lead(router, make_service) -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        email = json.loads(request.content)["properties"]["email"]
        if email == "bad@x":
            return httpx.Response(
                400, json=error_json("Property values were not valid", "VALIDATION_ERROR")
            )
        return httpx.Response(201, json=contact_json("42", {"email": email}))

    router.post(CONTACTS).mock(side_effect=reply)
    results = by_id(await make_service("single").sync([lead(1, "bad@x"), lead(2, "ok@x.com")]))
    assert results[1].kind is ResultKind.FAILED
    assert results[1].http_status == 400
    assert results[2].kind is ResultKind.SYNCED


async def test_single_paused_mid_batch_releases_the_rest(router, make_service, budget) -> None:
    create = router.post(CONTACTS).respond(201, json=contact_json("42", {}))
    budget.fail_from = 2
    results = by_id(
        await make_service("single").sync([lead(i, f"u{i}@x.com") for i in range(1, 4)])
    )
    assert create.call_count == 1
    assert results[1].kind is ResultKind.SYNCED
    assert results[2].kind is results[3].kind is ResultKind.RELEASED


async def test_single_paused_before_the_patch_releases(router, make_service, budget) -> None:
    router.post(CONTACTS).respond(
        409, json=error_json("Contact already exists. Existing ID: 5", "CONFLICT")
    )
    patch = router.patch(f"{CONTACTS}/5").respond(200, json=contact_json("5", {}))
    budget.fail_from = 2
    (result,) = await make_service("single").sync([lead(1, "a@x.com")])
    assert result.kind is ResultKind.RELEASED
    assert patch.call_count == 0


@pytest.mark.parametrize("status", [401, 403])
async def test_single_auth_failure_pauses(router, make_service, budget, status: int) -> None:
    router.post(CONTACTS).respond(status, json=error_json("nope", "INVALID_AUTHENTICATION"))
    (result,) = await make_service("single").sync([lead(1, "a@x.com")])
    assert result.kind is ResultKind.AUTH_PAUSED
    assert len(budget.auth_pauses) == 1


# --- a prepaid first turn (the worker already waited for the budget's slot) -----------


async def test_prepaid_batch_does_not_acquire_again(router, make_service, budget) -> None:
    route = router.post(UPSERT).mock(side_effect=upsert_ok)
    results = await make_service().sync([lead(1, "a@x.com")], prepaid=True)
    assert results[0].kind is ResultKind.SYNCED
    assert route.call_count == 1
    assert budget.acquired == 0


async def test_prepaid_covers_only_the_first_call_of_a_split(router, make_service, budget) -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        ids = [i["id"] for i in json.loads(request.content)["inputs"]]
        if "bad@x" in ids:
            return httpx.Response(400, json=error_json("Property values were not valid", "V"))
        return upsert_ok(request)

    route = router.post(UPSERT).mock(side_effect=reply)
    leads = [lead(1, "a@x.com"), lead(2, "bad@x"), lead(3, "c@x.com"), lead(4, "d@x.com")]
    results = by_id(await make_service().sync(leads, prepaid=True))
    assert results[2].kind is ResultKind.FAILED
    assert budget.acquired == route.call_count - 1


async def test_prepaid_single_mode_pays_for_every_later_call(router, make_service, budget) -> None:
    router.post(CONTACTS).respond(
        409, json=error_json("Contact already exists. Existing ID: 5", "CONFLICT")
    )
    router.patch(f"{CONTACTS}/5").respond(200, json=contact_json("5", {}))
    results = await make_service("single").sync(
        [lead(1, "a@x.com"), lead(2, "b@x.com")], prepaid=True
    )
    assert [r.kind for r in results] == [ResultKind.SYNCED, ResultKind.SYNCED]
    assert budget.acquired == 3  # 4 calls (2 creates, 2 patches), the first one prepaid
