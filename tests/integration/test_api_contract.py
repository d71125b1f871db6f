"""/openapi.json says what the server does: operation ids, security, every status and its body.

Each request below is one the server really answers; the test checks that the answer's status
is declared on that operation and that its body has the declared error shape. schemathesis
(`make contract`, run by .ci/run) explores the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from leadsync.config import Settings
from tests.helpers import INTERNAL_HEADERS, ClientFactory

JSON = {"Content-Type": "application/json"}
OPERATION_IDS = {
    ("post", "/leads"): "createLead",
    ("get", "/internal/leads"): "listLeads",
    ("get", "/internal/leads/{lead_id}"): "getLead",
    ("post", "/internal/leads/resync-failed"): "resyncFailed",
    ("get", "/internal/sync/status"): "getSyncStatus",
    ("get", "/healthz"): "getHealth",
    ("get", "/readyz"): "getReadiness",
    ("post", "/internal/erasures"): "requestErasure",
    ("get", "/internal/erasures"): "listErasures",
    ("get", "/internal/erasures/{erasure_id}"): "getErasure",
    ("post", "/internal/erasures/{erasure_id}/retry"): "retryErasure",
    ("post", "/internal/subjects/lookup"): "lookupSubject",
}


@pytest.fixture
async def spec(app_client: httpx.AsyncClient) -> dict[str, Any]:
    response = await app_client.get("/openapi.json")
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


def error_schema(spec: dict[str, Any]) -> dict[str, Any]:
    """The ErrorResponse schema with its components, ready for a JSON Schema validator."""
    return {"$ref": "#/components/schemas/ErrorResponse", "components": spec["components"]}


def test_every_operation_has_its_stable_operation_id(spec: dict[str, Any]) -> None:
    found = {
        (method, path): operation["operationId"]
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
    }

    assert found == OPERATION_IDS


def test_internal_operations_declare_the_bearer_scheme(spec: dict[str, Any]) -> None:
    assert spec["components"]["securitySchemes"]["internalToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["internalToken"]["description"],
    }
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            if path.startswith("/internal/"):
                assert operation["security"] == [{"internalToken": []}], path
                assert {"401", "503"} <= set(operation["responses"]), path
            else:
                assert "security" not in operation, path


def test_every_error_is_declared_with_the_one_error_shape(spec: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert spec["components"]["schemas"]["ErrorResponse"]["required"] == ["detail", "errors"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, declared in operation["responses"].items():
                if int(status) < 400:
                    continue
                schema = declared["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (
                    method,
                    path,
                    status,
                )
                assert declared["description"], (method, path, status)


def test_idempotency_key_is_declared_with_its_pattern(spec: dict[str, Any]) -> None:
    (parameter,) = spec["paths"]["/leads"]["post"]["parameters"]

    assert parameter["name"] == "Idempotency-Key"
    assert parameter["in"] == "header"
    assert parameter["schema"] == {
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "pattern": "^[\\u0021-\\u007e]{1,255}$",
    }


def test_numbers_have_declared_ranges(spec: dict[str, Any]) -> None:
    # Exact integers: 2**63 - 1 as a float would read 2**63, a value the server refuses.
    resync = spec["components"]["schemas"]["ResyncRequest"]["properties"]
    lead_ids = resync["lead_ids"]["anyOf"][0]
    assert lead_ids["maxItems"] == 1000
    assert (lead_ids["items"]["minimum"], lead_ids["items"]["maximum"]) == (1, 2**63 - 1)
    older = resync["older_than_seconds"]["anyOf"][0]
    assert (older["minimum"], older["maximum"]) == (0, 3_153_600_000)
    limit = resync["limit"]["anyOf"][0]
    assert (limit["minimum"], limit["maximum"]) == (1, 1_000_000)
    parameters = {
        p["name"]: p["schema"] for p in spec["paths"]["/internal/leads"]["get"]["parameters"]
    }
    assert (parameters["limit"]["minimum"], parameters["limit"]["maximum"]) == (1, 500)
    after = parameters["after"]["anyOf"][0]
    assert (after["minimum"], after["maximum"]) == (1, 2**63 - 1)


# (method, path, request kwargs, expected status): every error a route answers, on purpose.
CASES: list[tuple[str, str, dict[str, Any], int]] = [
    ("post", "/leads", {"json": {"email": "a@example.com"}}, 201),
    ("post", "/leads", {"json": {"email": "bad"}}, 422),
    ("post", "/leads", {"content": b'{"email": 1, "email": 2}', "headers": JSON}, 422),
    ("post", "/leads", {"json": {"email": "a@example.com"}, "headers": {"Idempotency-Key": ""}},
     400),
    ("post", "/leads", {"content": b"x" * 70_000, "headers": JSON}, 413),
    ("get", "/internal/leads", {"headers": INTERNAL_HEADERS}, 200),
    ("get", "/internal/leads", {}, 401),
    ("get", "/internal/leads", {"params": {"limit": "true"}, "headers": INTERNAL_HEADERS}, 422),
    ("get", "/internal/leads/1", {"headers": INTERNAL_HEADERS}, 404),
    ("get", "/internal/leads/0", {"headers": INTERNAL_HEADERS}, 422),
    ("get", "/internal/leads/1", {}, 401),
    ("post", "/internal/leads/resync-failed", {"headers": INTERNAL_HEADERS}, 200),
    ("post", "/internal/leads/resync-failed", {}, 401),
    ("post", "/internal/leads/resync-failed",
     {"json": {"older_than_seconds": 1e308}, "headers": INTERNAL_HEADERS}, 422),
    ("post", "/internal/leads/resync-failed",
     {"content": b" " * 70_000, "headers": {**INTERNAL_HEADERS, **JSON}}, 413),
    ("get", "/internal/sync/status", {"headers": INTERNAL_HEADERS}, 200),
    ("get", "/internal/sync/status", {}, 401),
    ("get", "/healthz", {}, 200),
    ("get", "/readyz", {}, 200),
    *[(m, p, {"headers": {**INTERNAL_HEADERS, "X-Big": "a" * 17_000}}, 431)
      for m, p in [("post", "/leads"), ("get", "/internal/leads"), ("get", "/internal/leads/1"),
                   ("post", "/internal/leads/resync-failed"), ("get", "/internal/sync/status"),
                   ("get", "/healthz"), ("get", "/readyz")]],
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "expected"),
    CASES,
    ids=[f"{m.upper()} {p} {s}" for m, p, _k, s in CASES],
)
async def test_each_answer_is_declared_with_its_body_shape(
    app_client: httpx.AsyncClient,
    spec: dict[str, Any],
    method: str,
    path: str,
    kwargs: dict[str, Any],
    expected: int,
) -> None:
    response = await app_client.request(method.upper(), path, **kwargs)

    assert response.status_code == expected, response.text[:300]
    template = "/internal/leads/{lead_id}" if path[-1].isdigit() else path
    declared = spec["paths"][template][method]["responses"]
    assert str(expected) in declared
    if expected >= 400:
        assert response.headers["content-type"] == "application/json"
        Draft202012Validator(error_schema(spec)).validate(response.json())


async def test_internal_routes_without_a_token_configured_answer_a_declared_503(
    client_factory: ClientFactory, settings_factory: Callable[..., Settings]
) -> None:
    async with client_factory(settings_factory(internal_token=None)) as (app, client):
        spec = app.openapi()
        for method, path in [(m, p) for (m, p) in OPERATION_IDS if p.startswith("/internal")]:
            concrete = path.replace("{lead_id}", "1").replace("{erasure_id}", "1")
            response = await client.request(method.upper(), concrete, headers=INTERNAL_HEADERS)
            assert response.status_code == 503, (method, path)
            assert "503" in spec["paths"][path][method]["responses"]
            Draft202012Validator(error_schema(spec)).validate(response.json())


async def test_an_unavailable_database_is_a_declared_503_not_a_500(
    client_factory: ClientFactory, settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-dir" / "leadsync.db"
    settings = settings_factory(database_url=f"sqlite+aiosqlite:///{missing}")
    async with client_factory(settings, migrate_on_start=False) as (app, client):
        spec = app.openapi()
        for method, path, kwargs in [
            ("post", "/leads", {"json": {"email": "a@example.com"}}),
            ("get", "/internal/leads", {"headers": INTERNAL_HEADERS}),
            ("get", "/internal/leads/{lead_id}", {"headers": INTERNAL_HEADERS}),
            ("post", "/internal/leads/resync-failed", {"headers": INTERNAL_HEADERS}),
            ("get", "/internal/sync/status", {"headers": INTERNAL_HEADERS}),
        ]:
            concrete = path.replace("{lead_id}", "1").replace("{erasure_id}", "1")
            response = await client.request(method.upper(), concrete, **kwargs)
            assert response.status_code == 503, (path, response.text)
            assert response.json() == {
                "detail": "the database is unavailable; try again later",
                "errors": [],
            }
            assert response.headers["Retry-After"] == "5"
            assert "503" in spec["paths"][path][method]["responses"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/internal/leads/resync-failed", "POST"),  # used to be a 422 about lead_id
        ("DELETE", "/internal/leads/resync-failed", "POST"),
        ("PUT", "/leads", "POST"),
        ("GET", "/leads", "POST"),
        ("DELETE", "/internal/leads/7", "GET"),
        ("POST", "/internal/sync/status", "GET"),
        ("HEAD", "/healthz", "GET"),
    ],
)
async def test_other_methods_are_405_with_allow(
    app_client: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    response = await app_client.request(method, path, headers=INTERNAL_HEADERS)

    assert response.status_code == 405
    assert response.headers["Allow"] == allow
    if method != "HEAD":  # a HEAD answer has no body
        assert response.json() == {"detail": "Method Not Allowed", "errors": []}


async def test_a_repeated_idempotency_key_is_400_saying_why(
    app_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    headers = httpx.Headers([("Idempotency-Key", "first"), ("Idempotency-Key", "second")])
    headers["Content-Type"] = "application/json"

    response = await app_client.post(
        "/leads", content=b'{"email": "a@example.com"}', headers=headers
    )

    assert response.status_code == 400
    assert response.json() == {
        "detail": "Idempotency-Key was sent 2 times; send it once",
        "errors": [],
    }
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM leads"))).scalar_one() == 0
