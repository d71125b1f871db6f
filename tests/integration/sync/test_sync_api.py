"""The operators' sync routes: POST /internal/leads/resync-failed and GET /internal/sync/status."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from leadsync.config import RateLimit
from leadsync.engine.gate import JITTER_SECONDS, SPACING_MARGIN, Gate
from leadsync.store.db import utcnow
from tests.helpers import INTERNAL_HEADERS
from tests.helpers.leads import failed_row, fetch_all, insert_leads, lead_row

RESYNC = "/internal/leads/resync-failed"
STATUS = "/internal/sync/status"


def failed(i: int, *, status: int, age: float) -> dict[str, Any]:
    """A lead that failed on `status`, its last attempt `age` seconds ago."""
    return failed_row(i, status=status, attempted_at=utcnow() - dt.timedelta(seconds=age))


async def states(sessions, ids: list[int]) -> list[str]:
    leads = await fetch_all(sessions)
    return [leads[i].hubspot_sync_status for i in ids]


async def test_resync_failed_route(app_client, sessions) -> None:
    ids = await insert_leads(
        sessions,
        [
            failed(0, status=400, age=10),
            failed(1, status=400, age=7200),
            failed(2, status=503, age=10),
            failed(3, status=404, age=10),
            failed(4, status=400, age=10),
            lead_row(5, hubspot_sync_status="SYNCED", hubspot_next_attempt_at=None),
        ],
    )

    for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"}, {"X": "y"}):
        response = await app_client.post(RESYNC, headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert await states(sessions, ids) == ["FAILED"] * 5 + ["SYNCED"]

    async def resync(body: dict[str, Any] | None) -> int:
        response = await app_client.post(RESYNC, headers=INTERNAL_HEADERS, json=body)
        assert response.status_code == 200, response.text
        return response.json()["requeued"]

    assert await resync({"lead_ids": [ids[0], ids[5]]}) == 1  # a SYNCED lead is not touched
    assert await states(sessions, ids) == [
        "PENDING",
        "FAILED",
        "FAILED",
        "FAILED",
        "FAILED",
        "SYNCED",
    ]
    assert await resync({"older_than_seconds": 3600}) == 1
    assert (await states(sessions, ids))[1] == "PENDING"
    assert await resync({"limit": 1}) == 1
    assert (await states(sessions, ids))[2] == "PENDING"  # lowest id first
    assert await resync(None) == 2  # no body: every FAILED lead
    assert await states(sessions, ids) == ["PENDING"] * 5 + ["SYNCED"]
    assert await resync(None) == 0

    leads = await fetch_all(sessions)
    assert {leads[i].hubspot_sync_attempts for i in ids[:5]} == {0}
    assert leads[ids[3]].hubspot_error == "HTTP 404"  # kept until the next outcome


BAD_FILTERS = [
    {"lead_ids": [0]},
    {"lead_ids": "1"},
    {"older_than_seconds": -1},
    {"limit": 0},
    {"unknown": 1},
]


async def test_resync_failed_rejects_bad_filters(app_client, sessions) -> None:
    (lead_id,) = await insert_leads(sessions, [failed(0, status=400, age=10)])
    for body in BAD_FILTERS:
        response = await app_client.post(RESYNC, headers=INTERNAL_HEADERS, json=body)
        assert response.status_code == 422, body
        assert response.json()["errors"], body
    assert await states(sessions, [lead_id]) == ["FAILED"]


# Each of these used to act on real rows (true is lead 1, "2" is lead 2) or answer a 500.
HOSTILE_FILTERS = [
    ('{"lead_ids": [true]}', "lead_ids.0"),
    ('{"lead_ids": ["2"]}', "lead_ids.0"),
    ('{"lead_ids": [2.5]}', "lead_ids.0"),
    ('{"lead_ids": [1, 9223372036854775808]}', "lead_ids.1"),
    ('{"older_than_seconds": true}', "older_than_seconds"),
    ('{"older_than_seconds": "60"}', "older_than_seconds"),
    ('{"older_than_seconds": 64000000000}', "older_than_seconds"),
    ('{"older_than_seconds": 1e308}', "older_than_seconds"),
    ('{"older_than_seconds": 3153600000.5}', "older_than_seconds"),
    ('{"older_than_seconds": "inf"}', "older_than_seconds"),
    ('{"older_than_seconds": 1' + "0" * 400 + "}", "older_than_seconds"),
    ('{"limit": true}', "limit"),
    ('{"limit": "1"}', "limit"),
    ('{"limit": 1.5}', "limit"),
    ('{"limit": 1000001}', "limit"),
    ('{"lead_ids": [' + ", ".join(["1"] * 1001) + "]}", "lead_ids"),
]


async def test_resync_failed_is_strict_and_bounded(app_client, sessions) -> None:
    ids = await insert_leads(sessions, [failed(i, status=400, age=10) for i in range(2)])

    for raw, field in HOSTILE_FILTERS:
        response = await app_client.post(
            RESYNC, headers={**INTERNAL_HEADERS, "Content-Type": "application/json"}, content=raw
        )
        assert response.status_code == 422, (raw[:80], response.text)
        assert response.headers["content-type"] == "application/json"
        assert [e["field"] for e in response.json()["errors"]] == [field], raw[:80]
    assert await states(sessions, ids) == ["FAILED", "FAILED"]  # nothing was requeued


async def test_resync_failed_refuses_json_with_two_meanings(app_client, sessions) -> None:
    ids = await insert_leads(sessions, [failed(i, status=400, age=10) for i in range(2)])
    headers = {**INTERNAL_HEADERS, "Content-Type": "application/json"}

    for raw in (
        f'{{"lead_ids": [{ids[0]}], "lead_ids": [{ids[1]}]}}',
        '{"older_than_seconds": NaN}',
        '{"older_than_seconds": Infinity}',
    ):
        response = await app_client.post(RESYNC, headers=headers, content=raw)
        assert response.status_code == 422, raw
        assert [e["field"] for e in response.json()["errors"]] == ["body"]
    assert await states(sessions, ids) == ["FAILED", "FAILED"]


async def test_resync_failed_body_is_an_object_or_nothing(app_client, sessions) -> None:
    ids = await insert_leads(sessions, [failed(i, status=400, age=10) for i in range(3)])
    headers = {**INTERNAL_HEADERS, "Content-Type": "application/json"}

    refused = await app_client.post(RESYNC, headers=headers, content=b"null")
    assert refused.status_code == 422
    assert refused.json()["errors"] == [
        {"field": "body", "message": "the body must be a JSON object"}
    ]
    assert await states(sessions, ids) == ["FAILED"] * 3

    limited = await app_client.post(RESYNC, headers=headers, content=b'{"limit": 1}')
    everything = await app_client.post(RESYNC, headers=headers, content=b"{}")
    nothing_left = await app_client.post(RESYNC, headers=INTERNAL_HEADERS)  # no body at all
    assert [r.json()["requeued"] for r in (limited, everything, nothing_left)] == [1, 2, 0]


async def test_resync_failed_accepts_the_bounds(app_client, sessions) -> None:
    ids = await insert_leads(sessions, [failed(i, status=400, age=10) for i in range(2)])
    largest = [2**63 - 1 - i for i in range(999)] + [ids[0]]

    async def resync(body: dict[str, Any]) -> int:
        response = await app_client.post(RESYNC, headers=INTERNAL_HEADERS, json=body)
        assert response.status_code == 200, response.text[:200]
        return response.json()["requeued"]

    assert len(json.dumps({"lead_ids": largest})) < 64 * 1024  # fits in the default body limit
    assert await resync({"lead_ids": largest, "limit": 1_000_000}) == 1
    assert await resync({"older_than_seconds": 3_153_600_000}) == 0  # nothing is 100 years old
    # An int where a float goes; 1.0 is an integer in JSON Schema's data model.
    assert await resync({"older_than_seconds": 0, "limit": 1.0}) == 1
    assert await states(sessions, ids) == ["PENDING", "PENDING"]


async def test_sync_status_route(app_client, sessions, settings_factory) -> None:
    now = utcnow()
    await insert_leads(
        sessions,
        [
            lead_row(0, hubspot_next_attempt_at=now - dt.timedelta(seconds=120)),
            lead_row(1),
            lead_row(
                2,
                hubspot_sync_status="RETRYING",
                hubspot_next_attempt_at=now + dt.timedelta(hours=1),
            ),
            lead_row(3, hubspot_sync_status="SYNCED", hubspot_next_attempt_at=None),
            failed(4, status=400, age=5),
        ],
    )
    unauthorized = await app_client.get(STATUS)
    assert unauthorized.status_code == 401

    response = await app_client.get(STATUS, headers=INTERNAL_HEADERS)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"counts", "oldest_due_seconds", "gate", "budget"}
    assert body["counts"] == {
        "PENDING": 2,
        "IN_PROGRESS": 0,
        "RETRYING": 1,
        "SYNCED": 1,
        "FAILED": 1,
        "ERASED": 0,
    }
    assert 120 <= body["oldest_due_seconds"] < 180
    assert body["gate"] == {
        "paused": False,
        "reason": None,
        "detail": None,
        "paused_until": None,
        "auth_failures": 0,
    }
    budget = body["budget"]
    assert set(budget) == {
        "limit",
        "seconds_between_requests",
        "next_slot_at",
        "reported_max",
        "reported_remaining",
        "daily_remaining",
    }
    assert budget["limit"] == "90/10s"
    assert budget["seconds_between_requests"] == round(
        (10 * SPACING_MARGIN + JITTER_SECONDS) / 90, 4
    )
    assert dt.datetime.fromisoformat(budget["next_slot_at"]).tzinfo is not None

    settings = settings_factory()
    gate = Gate(sessions=sessions, limit=RateLimit(90, 10), zone=settings.account_zone)
    until = await gate.pause_for_rate_limit(
        retry_after_seconds=600, interval_seconds=None, daily=False, detail="HTTP 429"
    )
    body = (await app_client.get(STATUS, headers=INTERNAL_HEADERS)).json()
    assert body["gate"]["paused"] is True
    assert body["gate"]["reason"] == "rate_limit"
    assert body["gate"]["detail"] == "HTTP 429"
    assert dt.datetime.fromisoformat(body["gate"]["paused_until"]) == until
