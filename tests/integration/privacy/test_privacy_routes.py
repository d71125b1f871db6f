"""The privacy routes on SQLite and PostgreSQL: erasure requests, their list, one erasure, the
retry of a FAILED one, and the access lookup; never an address in a URL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from jsonschema import Draft202012Validator
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from leadsync.config import Settings
from leadsync.store import history, privacy
from leadsync.store.db import transaction, utcnow
from tests.helpers import INTERNAL_HEADERS, ClientFactory
from tests.helpers.leads import failed_row, fetch, insert_leads, lead_row

Sessions = async_sessionmaker[AsyncSession]
MAX_ID = 2**63 - 1

ROUTES = [
    ("post", "/internal/erasures", {"json": {"email": "ana@example.com"}}),
    ("get", "/internal/erasures", {}),
    ("get", "/internal/erasures/1", {}),
    ("post", "/internal/erasures/1/retry", {}),
    ("post", "/internal/subjects/lookup", {"json": {"email": "ana@example.com"}}),
]
OPERATIONS = {
    ("post", "/internal/erasures"): "requestErasure",
    ("get", "/internal/erasures"): "listErasures",
    ("get", "/internal/erasures/{erasure_id}"): "getErasure",
    ("post", "/internal/erasures/{erasure_id}/retry"): "retryErasure",
    ("post", "/internal/subjects/lookup"): "lookupSubject",
}


def woken(app: FastAPI) -> list[int]:
    """Count the worker wake-ups the routes ask for from now on."""
    calls: list[int] = []
    app.state.ctx.wake_worker = lambda: calls.append(1)
    return calls


async def erase(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post("/internal/erasures", json={"email": email}, headers=INTERNAL_HEADERS)


async def make_failed(engine: AsyncEngine, erasure_id: int) -> None:
    """Leave an erasure as HubSpot's refusal does: FAILED, with its error, nothing due."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE erasures SET status = 'FAILED', attempts = 3, http_status = 400, "
                "error = 'HTTP 400: not allowed', next_attempt_at = NULL WHERE id = :id"
            ),
            {"id": erasure_id},
        )


def error_shape(spec: dict[str, Any], body: Any) -> None:
    schema = {"$ref": "#/components/schemas/ErrorResponse", "components": spec["components"]}
    Draft202012Validator(schema).validate(body)


# --- auth ---------------------------------------------------------------------------------------


async def test_every_privacy_route_needs_the_token(
    client_factory: ClientFactory, settings_factory: Callable[..., Settings]
) -> None:
    async with client_factory(settings_factory(erasure_key="k" * 16)) as (_app, client):
        for method, path, kwargs in ROUTES:
            bare = await client.request(method.upper(), path, **kwargs)
            wrong = await client.request(
                method.upper(), path, headers={"Authorization": "Bearer nope"}, **kwargs
            )
            for response in (bare, wrong):
                assert response.status_code == 401, (method, path)
                assert response.headers["WWW-Authenticate"] == "Bearer"
                assert response.json() == {
                    "detail": "missing or invalid bearer token",
                    "errors": [],
                }
    async with client_factory(settings_factory(internal_token=None)) as (_app, client):
        for method, path, kwargs in ROUTES:
            response = await client.request(
                method.upper(), path, headers=INTERNAL_HEADERS, **kwargs
            )
            assert response.status_code == 503, (method, path)
            assert "LEADSYNC_INTERNAL_TOKEN" in response.json()["detail"]


# --- POST /internal/erasures --------------------------------------------------------------------


async def test_an_erasure_cancels_every_lead_of_the_email_and_only_those(
    client_factory: ClientFactory, keyed_settings: Callable[..., Settings], sessions: Sessions
) -> None:
    ids = await insert_leads(
        sessions,
        [
            lead_row(0, email="ana@example.com"),
            failed_row(1, email="ana@example.com"),
            lead_row(2, email="ana@example.com", hubspot_sync_status="SYNCED", hubspot_id="7"),
            lead_row(3, email="bob@example.com"),
        ],
    )
    async with client_factory(keyed_settings()) as (app, client):
        wakes = woken(app)
        response = await erase(client, "  Ana@EXAMPLE.com ")
        assert response.status_code == 202, response.text
        body = response.json()
        assert response.headers["Location"] == f"/internal/erasures/{body['id']}"
        assert body["created"] is True
        assert body["status"] == "REQUESTED"
        assert body["requested_by"] == "api"
        assert body["leads_cancelled"] == 3
        assert body["attempts"] == 0
        assert "email" not in body  # the address is never shown back
        assert "ana@example.com" not in response.text
        assert wakes == [1]

        shown = await client.get(response.headers["Location"], headers=INTERNAL_HEADERS)
        assert shown.status_code == 200
        assert shown.json() == {k: v for k, v in body.items() if k != "created"}

    statuses = [(await fetch(sessions, i)).hubspot_sync_status for i in ids]
    assert statuses == ["ERASED", "ERASED", "ERASED", "PENDING"]


async def test_a_second_request_reuses_the_open_erasure(
    client_factory: ClientFactory, keyed_settings: Callable[..., Settings], sessions: Sessions
) -> None:
    await insert_leads(sessions, [lead_row(0, email="ana@example.com")])
    async with client_factory(keyed_settings()) as (_app, client):
        first = (await erase(client, "ana@example.com")).json()
        (late,) = await insert_leads(sessions, [lead_row(1, email="ana@example.com")])
        again = await erase(client, "ANA@example.com")
        assert again.status_code == 202
        assert again.headers["Location"] == f"/internal/erasures/{first['id']}"
        second = again.json()
        assert (second["id"], second["created"]) == (first["id"], False)
        assert second["leads_cancelled"] == 2  # the lead that came in between is cancelled too
        listed = (await client.get("/internal/erasures", headers=INTERNAL_HEADERS)).json()
        assert [e["id"] for e in listed["items"]] == [first["id"]]
    assert (await fetch(sessions, late)).hubspot_sync_status == "ERASED"


async def test_without_an_erasure_key_the_request_is_a_503_and_changes_nothing(
    client_factory: ClientFactory, sessions: Sessions
) -> None:
    (lead_id,) = await insert_leads(sessions, [lead_row(0, email="ana@example.com")])
    async with client_factory() as (app, client):  # settings_factory() sets no key
        wakes = woken(app)
        response = await erase(client, "ana@example.com")
        assert response.status_code == 503
        assert response.json()["errors"] == []
        assert "LEADSYNC_ERASURE_KEY" in response.json()["detail"]
        assert "ana@example.com" not in response.text
        error_shape(app.openapi(), response.json())
        listed = (await client.get("/internal/erasures", headers=INTERNAL_HEADERS)).json()
        assert listed == {"items": [], "next_after": None}
        assert wakes == []
    assert (await fetch(sessions, lead_id)).hubspot_sync_status == "PENDING"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-address"}, "email"),
        ({"email": "ana@example.test"}, "email"),
        ({"email": ""}, "email"),
        ({"email": "a" * 65 + "@example.com"}, "email"),
        ({"email": 42}, "email"),
        ({"email": ["ana@example.com"]}, "email"),
        ({}, "email"),
        ({"email": "ana@example.com", "lead_id": 1}, "lead_id"),
        ([], "body"),
    ],
    ids=["no-at", "special-use", "empty", "long-local", "number", "list", "missing", "extra",
         "array"],
)  # fmt: skip
async def test_a_bad_email_is_a_422_in_the_error_shape(
    client_factory: ClientFactory,
    keyed_settings: Callable[..., Settings],
    sessions: Sessions,
    body: Any,
    field: str,
) -> None:
    (lead_id,) = await insert_leads(sessions, [lead_row(0, email="ana@example.com")])
    async with client_factory(keyed_settings()) as (app, client):
        for path in ("/internal/erasures", "/internal/subjects/lookup"):
            response = await client.post(path, json=body, headers=INTERNAL_HEADERS)
            assert response.status_code == 422, (path, response.text)
            assert field in {e["field"] for e in response.json()["errors"]}
            error_shape(app.openapi(), response.json())
    assert (await fetch(sessions, lead_id)).hubspot_sync_status == "PENDING"


async def test_a_duplicate_key_in_the_body_is_refused(
    client_factory: ClientFactory, keyed_settings: Callable[..., Settings]
) -> None:
    async with client_factory(keyed_settings()) as (_app, client):
        response = await client.post(
            "/internal/erasures",
            content=b'{"email": "bob@example.com", "email": "ana@example.com"}',
            headers={**INTERNAL_HEADERS, "Content-Type": "application/json"},
        )
    assert response.status_code == 422
    assert "more than once" in response.json()["errors"][0]["message"]


# --- GET /internal/erasures and /internal/erasures/{id} -----------------------------------------


async def test_the_list_pages_newest_first_and_filters_by_status(
    client_factory: ClientFactory, keyed_settings: Callable[..., Settings], engine: AsyncEngine
) -> None:
    async with client_factory(keyed_settings()) as (_app, client):
        ids = [(await erase(client, f"person{i}@example.com")).json()["id"] for i in range(5)]
        await make_failed(engine, ids[1])

        first = await client.get("/internal/erasures?limit=2", headers=INTERNAL_HEADERS)
        assert first.status_code == 200
        page = first.json()
        assert [e["id"] for e in page["items"]] == [ids[4], ids[3]]
        assert page["next_after"] == ids[3]
        second = (
            await client.get(
                "/internal/erasures",
                params={"limit": 2, "after": page["next_after"]},
                headers=INTERNAL_HEADERS,
            )
        ).json()
        assert [e["id"] for e in second["items"]] == [ids[2], ids[1]]
        last = (
            await client.get(
                "/internal/erasures",
                params={"limit": 2, "after": second["next_after"]},
                headers=INTERNAL_HEADERS,
            )
        ).json()
        assert ([e["id"] for e in last["items"]], last["next_after"]) == ([ids[0]], None)

        failed = (
            await client.get("/internal/erasures?status=FAILED", headers=INTERNAL_HEADERS)
        ).json()
        assert [(e["id"], e["error"], e["http_status"]) for e in failed["items"]] == [
            (ids[1], "HTTP 400: not allowed", 400)
        ]
        every = (await client.get("/internal/erasures", headers=INTERNAL_HEADERS)).json()
        assert len(every["items"]) == 5
        assert every["next_after"] is None


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=501", "limit=abc", "limit=+5", "limit=1.0", "limit=", "after=0",
     f"after={MAX_ID + 1}", "after=-1", "after=1e3", "status=requested", "status=ERASED",
     "status="],
)  # fmt: skip
async def test_junk_query_parameters_are_422s(client_factory: ClientFactory, query: str) -> None:
    async with client_factory() as (app, client):
        response = await client.get(f"/internal/erasures?{query}", headers=INTERNAL_HEADERS)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == query.split("=")[0]
    error_shape(app.openapi(), response.json())


async def test_one_erasure_404_and_422(
    client_factory: ClientFactory, keyed_settings: Callable[..., Settings]
) -> None:
    async with client_factory(keyed_settings()) as (app, client):
        erasure_id = (await erase(client, "ana@example.com")).json()["id"]
        found = await client.get(f"/internal/erasures/{erasure_id}", headers=INTERNAL_HEADERS)
        assert found.status_code == 200
        assert found.json()["id"] == erasure_id
        missing = await client.get(
            f"/internal/erasures/{erasure_id + 1000}", headers=INTERNAL_HEADERS
        )
        assert missing.status_code == 404
        assert missing.json() == {
            "detail": f"no erasure with id {erasure_id + 1000}",
            "errors": [],
        }
        largest = await client.get(f"/internal/erasures/{MAX_ID}", headers=INTERNAL_HEADERS)
        assert largest.status_code == 404
        for bad in ("0", str(MAX_ID + 1), "00"):
            response = await client.get(f"/internal/erasures/{bad}", headers=INTERNAL_HEADERS)
            assert response.status_code == 422, bad
            assert response.json()["errors"][0]["field"] == "erasure_id"
            error_shape(app.openapi(), response.json())
        # Not digits: no route (an email where an id goes is never read as one).
        for bad in ("abc", "ana@example.com", "-1"):
            response = await client.get(f"/internal/erasures/{bad}", headers=INTERNAL_HEADERS)
            assert response.status_code == 404, bad


# --- POST /internal/erasures/{id}/retry ---------------------------------------------------------


async def test_retry_arms_a_failed_erasure_and_refuses_the_others(
    client_factory: ClientFactory, keyed_settings: Callable[..., Settings], engine: AsyncEngine
) -> None:
    async with client_factory(keyed_settings()) as (app, client):
        erasure_id = (await erase(client, "ana@example.com")).json()["id"]
        wakes = woken(app)
        open_one = await client.post(
            f"/internal/erasures/{erasure_id}/retry", headers=INTERNAL_HEADERS
        )
        assert open_one.status_code == 409
        assert open_one.json() == {
            "detail": f"erasure {erasure_id} is REQUESTED, not FAILED: only a FAILED erasure "
            "can be retried",
            "errors": [],
        }
        assert wakes == []

        await make_failed(engine, erasure_id)
        retried = await client.post(
            f"/internal/erasures/{erasure_id}/retry", headers=INTERNAL_HEADERS
        )
        assert retried.status_code == 200, retried.text
        body = retried.json()
        assert (body["id"], body["status"], body["attempts"]) == (erasure_id, "REQUESTED", 0)
        assert body["next_attempt_at"] is not None
        assert "created" not in body
        assert wakes == [1]

        again = await client.post(
            f"/internal/erasures/{erasure_id}/retry", headers=INTERNAL_HEADERS
        )
        assert again.status_code == 409

        missing = await client.post(
            f"/internal/erasures/{erasure_id + 1000}/retry", headers=INTERNAL_HEADERS
        )
        assert missing.status_code == 404
        assert missing.json()["detail"] == f"no erasure with id {erasure_id + 1000}"
        zero = await client.post("/internal/erasures/0/retry", headers=INTERNAL_HEADERS)
        assert zero.status_code == 422
        wrong_method = await client.get(
            f"/internal/erasures/{erasure_id}/retry", headers=INTERNAL_HEADERS
        )
        assert wrong_method.status_code == 405
        assert wakes == [1]


# --- POST /internal/subjects/lookup -------------------------------------------------------------


async def test_access_returns_exactly_that_emails_leads_in_any_casing(
    client_factory: ClientFactory, keyed_settings: Callable[..., Settings], sessions: Sessions
) -> None:
    ana, _bob, ana2, _anabel = await insert_leads(
        sessions,
        [
            lead_row(0, email="ana@example.com", phone="+34 600"),
            lead_row(1, email="bob@example.com"),
            failed_row(2, email="ana@example.com"),
            lead_row(3, email="ana@example.com.mx"),
        ],
    )
    now = utcnow()
    async with transaction(sessions) as session:
        await history.append(
            session,
            [history.Attempt(ana2, now, 1, history.SyncOutcome.FAILED, 400, "INVALID_EMAIL: x")],
        )
    async with client_factory(keyed_settings()) as (_app, client):
        for spelled in ("ana@example.com", "ANA@Example.COM", "  Ana@example.com"):
            response = await client.post(
                "/internal/subjects/lookup", json={"email": spelled}, headers=INTERNAL_HEADERS
            )
            assert response.status_code == 200, response.text
            subject = response.json()
            assert subject["email"] == "ana@example.com"
            assert [lead["id"] for lead in subject["leads"]] == [ana, ana2]
            assert subject["leads"][0]["phone"] == "+34 600"
            assert [h["error"] for h in subject["leads"][1]["history"]] == ["INVALID_EMAIL: x"]
            assert subject["erasures"] == []
            assert subject["matched_by_hash"] is True
        nobody = await client.post(
            "/internal/subjects/lookup",
            json={"email": "nobody@example.com"},
            headers=INTERNAL_HEADERS,
        )
        assert nobody.json() == {
            "email": "nobody@example.com",
            "leads": [],
            "erasures": [],
            "matched_by_hash": True,
        }


async def test_access_without_a_key_reads_the_stored_leads_only(
    client_factory: ClientFactory, sessions: Sessions
) -> None:
    (ana,) = await insert_leads(sessions, [lead_row(0, email="ana@example.com")])
    async with client_factory() as (_app, client):
        response = await client.post(
            "/internal/subjects/lookup", json={"email": "ana@example.com"}, headers=INTERNAL_HEADERS
        )
    assert response.status_code == 200
    subject = response.json()
    assert [lead["id"] for lead in subject["leads"]] == [ana]
    assert subject["matched_by_hash"] is False


async def test_access_after_a_completed_erasure_finds_the_scrubbed_leads_by_hash(
    client_factory: ClientFactory,
    keyed_settings: Callable[..., Settings],
    sessions: Sessions,
    engine: AsyncEngine,
) -> None:
    (ana,) = await insert_leads(sessions, [lead_row(0, email="ana@example.com", phone="+34")])
    settings = keyed_settings()
    key = settings.read_erasure_key()
    assert key is not None
    async with client_factory(settings) as (_app, client):
        erasure_id = (await erase(client, "ana@example.com")).json()["id"]
        # What a completed erasure leaves (store.privacy.complete_erasure): the rows scrubbed,
        # only the keyed hash of the address kept.
        hashed = privacy.email_hash(key, "ana@example.com")
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE leads SET email = NULL, phone = NULL, firstname = NULL, "
                    "email_hash = :hash, scrubbed_at = :now WHERE id = :id"
                ),
                {"hash": hashed, "now": utcnow(), "id": ana},
            )
            await conn.execute(
                text(
                    "UPDATE erasures SET status = 'COMPLETED', email = NULL, completed_at = :now, "
                    "http_status = 204, leads_scrubbed = 1, next_attempt_at = NULL WHERE id = :id"
                ),
                {"now": utcnow(), "id": erasure_id},
            )
        response = await client.post(
            "/internal/subjects/lookup", json={"email": "Ana@example.com"}, headers=INTERNAL_HEADERS
        )
        shown = (
            await client.get(f"/internal/erasures/{erasure_id}", headers=INTERNAL_HEADERS)
        ).json()
    subject = response.json()
    (lead,) = subject["leads"]
    assert (lead["id"], lead["email"], lead["phone"]) == (ana, None, None)
    assert lead["scrubbed_at"] is not None
    assert [(e["id"], e["status"]) for e in subject["erasures"]] == [(erasure_id, "COMPLETED")]
    assert (shown["status"], shown["leads_scrubbed"], shown["http_status"]) == ("COMPLETED", 1, 204)


# --- the published contract ---------------------------------------------------------------------


async def test_the_routes_are_published_without_an_email_in_any_url(
    app_client: httpx.AsyncClient,
) -> None:
    spec = (await app_client.get("/openapi.json")).json()
    found = {
        (method, path): operation
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if (method, path) in OPERATIONS
    }
    assert {key: op["operationId"] for key, op in found.items()} == OPERATIONS
    for (method, path), operation in found.items():
        assert "email" not in path
        for parameter in operation.get("parameters", []):
            assert parameter["in"] in ("path", "query")
            assert "email" not in parameter["name"], (method, path)
        assert operation["security"] == [{"internalToken": []}]
        assert {"401", "422", "431", "503"} <= set(operation["responses"]), (method, path)
        for status, declared in operation["responses"].items():
            if int(status) >= 400:
                assert declared["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorResponse"
                }
    assert "Location" in found[("post", "/internal/erasures")]["responses"]["202"]["headers"]
    assert (
        "LEADSYNC_ERASURE_KEY"
        in (found[("post", "/internal/erasures")]["responses"]["503"]["description"])
    )
    assert {"404", "409"} <= set(
        found[("post", "/internal/erasures/{erasure_id}/retry")]["responses"]
    )
    assert "404" in found[("get", "/internal/erasures/{erasure_id}")]["responses"]
    parameters = {
        p["name"]: p["schema"] for p in found[("get", "/internal/erasures")]["parameters"]
    }
    assert (parameters["limit"]["minimum"], parameters["limit"]["maximum"]) == (1, 500)
    assert parameters["limit"]["default"] == 50
    assert parameters["after"]["anyOf"][0]["maximum"] == MAX_ID  # exact, not a float


async def test_an_unavailable_database_is_a_503_on_every_privacy_route(
    client_factory: ClientFactory, keyed_settings: Callable[..., Settings], tmp_path: Any
) -> None:
    missing = tmp_path / "no-such-dir" / "leadsync.db"
    settings = keyed_settings(database_url=f"sqlite+aiosqlite:///{missing}")
    async with client_factory(settings, migrate_on_start=False) as (app, client):
        for method, path, kwargs in ROUTES:
            response = await client.request(
                method.upper(), path, headers=INTERNAL_HEADERS, **kwargs
            )
            assert response.status_code == 503, (method, path, response.text)
            error_shape(app.openapi(), response.json())


async def test_another_method_is_a_405_naming_the_methods_the_path_has(
    client_factory: ClientFactory,
) -> None:
    async with client_factory() as (_app, client):
        for method, path, allowed in [
            ("OPTIONS", "/internal/erasures", "GET, POST"),
            ("DELETE", "/internal/erasures", "GET, POST"),
            ("PATCH", "/internal/erasures", "GET, POST"),
            ("GET", "/internal/subjects/lookup", "POST"),
            ("DELETE", "/internal/erasures/1", "GET"),
            ("GET", "/internal/erasures/1/retry", "POST"),
        ]:
            response = await client.request(method, path, headers=INTERNAL_HEADERS)
            assert response.status_code == 405, (method, path)
            assert response.headers["Allow"] == allowed, (method, path)
            assert response.json() == {"detail": "Method Not Allowed", "errors": []}
