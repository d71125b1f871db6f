"""The lead API on SQLite and PostgreSQL: intake, limits, idempotency, internal reads, probes."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from leadsync.config import Settings
from leadsync.store import migrations
from leadsync.store.db import create_sessionmaker
from leadsync.store.tables import Lead
from tests.helpers import INTERNAL_HEADERS, ClientFactory, wait_for

LEAD = {
    "email": "  Ana.Garcia@Example.COM ",
    "firstname": "Ana",
    "lastname": "García",
    "phone": "+34 600 123 456",
    "company": "Acme Coworking SL",
    "message": "We are 6 people\nlooking for desks.",
    "source": "website-contact-form",
}
LIMIT = 64 * 1024
JSON = {"Content-Type": "application/json"}


async def post_lead(client: httpx.AsyncClient, body: Any = None, **headers: str) -> httpx.Response:
    return await client.post("/leads", json=LEAD if body is None else body, headers=headers)


async def lead_row(engine: AsyncEngine, lead_id: int) -> dict[str, Any]:
    async with engine.connect() as conn:
        result = await conn.execute(text("SELECT * FROM leads WHERE id = :id"), {"id": lead_id})
        return dict(result.mappings().one())


async def count_leads(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM leads"))).scalar_one())


def utc(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value)
    assert parsed.utcoffset() == dt.timedelta(0), f"{value} is not UTC"
    return parsed


# --- POST /leads ----------------------------------------------------------------------------


async def test_create_lead_stores_every_column_with_its_default(
    app_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    started = dt.datetime.now(dt.UTC)
    response = await post_lead(app_client)

    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["Location"] == f"/internal/leads/{body['id']}"
    assert body["email"] == "ana.garcia@example.com"
    assert body["hubspot_sync_status"] == "PENDING"
    assert started - dt.timedelta(seconds=1) <= utc(body["created_at"])

    row = await lead_row(engine, body["id"])
    assert {k: row[k] for k in LEAD} == {**LEAD, "email": "ana.garcia@example.com"}
    assert row["hubspot_id"] is None
    assert row["hubspot_sync_status"] == "PENDING"
    assert row["hubspot_synced_at"] is None
    assert row["hubspot_error"] is None
    assert row["hubspot_sync_attempts"] == 0
    assert row["last_hubspot_attempt_at"] is None
    assert row["hubspot_next_attempt_at"] is not None  # due at once
    assert row["hubspot_lease_token"] is None
    assert row["hubspot_lease_expires_at"] is None
    assert row["hubspot_last_http_status"] is None
    assert row["idempotency_key"] is None
    assert row["idempotency_fingerprint"] is None
    assert row["created_at"] is not None
    assert row["updated_at"] is not None


async def test_minimal_lead_needs_only_an_email(
    app_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    response = await post_lead(app_client, {"email": "solo@example.com"})

    assert response.status_code == 201
    row = await lead_row(engine, response.json()["id"])
    assert row["email"] == "solo@example.com"
    assert [row[k] for k in ("firstname", "lastname", "phone", "company", "message")] == [None] * 5


async def test_ids_increase_and_each_lead_is_its_own_row(
    app_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    ids = [(await post_lead(app_client)).json()["id"] for _ in range(3)]

    assert ids == sorted(ids)
    assert len(set(ids)) == 3
    assert await count_leads(engine) == 3  # no idempotency key: a resubmission is a new lead


async def test_the_worker_is_woken_after_commit(
    client_factory: ClientFactory, engine: AsyncEngine
) -> None:
    seen: list[int] = []
    wakes: list[int] = []

    async def background(ctx: Any, _stack: Any) -> Callable[[], None]:
        async def count() -> None:
            seen.append(await count_leads(engine))

        tasks: set[asyncio.Task[None]] = set()

        def wake() -> None:
            wakes.append(1)
            task = asyncio.get_running_loop().create_task(count())
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        return wake

    async with client_factory(background=background) as (_app, client):
        assert (await post_lead(client)).status_code == 201
        await wait_for(lambda: len(seen) == 1, timeout=5, message="first wake-up")
        assert (await post_lead(client, **{"Idempotency-Key": "k1"})).status_code == 201
        await wait_for(lambda: len(seen) == 2, timeout=5, message="second wake-up")
        assert (await post_lead(client, **{"Idempotency-Key": "k1"})).status_code == 200
        assert (await post_lead(client, {"email": "bad"})).status_code == 422

    # Woken once per created lead (not for the replay nor the rejected one), and another
    # connection already saw the row: the wake-up comes after the commit.
    assert len(wakes) == 2
    assert seen == [1, 2]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ["email"]),
        ({"email": "not-an-email"}, ["email"]),
        ({"email": "a@example.com", "firstname": "x" * 101}, ["firstname"]),
        ({"email": "a@example.com", "phone": "call me"}, ["phone"]),
        ({"email": "a@example.com", "message": "m" * 5001}, ["message"]),
        ({"email": "a@example.com", "utm_source": "ads"}, ["utm_source"]),
        ({"email": "bad", "lastname": "l\nl", "source": "s" * 65}, ["email", "lastname", "source"]),
    ],
)
async def test_invalid_lead_is_422_naming_each_field(
    app_client: httpx.AsyncClient, engine: AsyncEngine, body: dict[str, Any], fields: list[str]
) -> None:
    response = await post_lead(app_client, body)

    assert response.status_code == 422
    payload = response.json()
    assert sorted({e["field"] for e in payload["errors"]}) == fields
    assert payload["detail"] == f"invalid request: {', '.join(fields)}"
    assert all(e["message"] for e in payload["errors"])
    assert await count_leads(engine) == 0


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("user@xn--bcher-kva.de", "user@xn--bcher-kva.de"),  # used to become user@bücher.de
        ("User@Bücher.DE", "user@xn--bcher-kva.de"),
        (" ANA@EXAMPLE.COM\u00a0", "ana@example.com"),
    ],
)
async def test_email_is_stored_in_its_canonical_form(
    app_client: httpx.AsyncClient, engine: AsyncEngine, sent: str, stored: str
) -> None:
    response = await post_lead(app_client, {"email": sent})

    assert response.status_code == 201, response.text
    assert response.json()["email"] == stored
    assert (await lead_row(engine, response.json()["id"]))["email"] == stored


async def test_unicode_and_punycode_spellings_are_one_submission(
    app_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    first = await post_lead(app_client, {"email": "ana@bücher.de"}, **{"Idempotency-Key": "idn"})
    again = await post_lead(
        app_client, {"email": "Ana@xn--bcher-kva.de"}, **{"Idempotency-Key": "idn"}
    )

    assert (first.status_code, again.status_code) == (201, 200)
    assert await count_leads(engine) == 1


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"email": "İstanbul@example.com"}, "email", "must use only ASCII before the @"),
        ({"email": "a" * 65 + "@example.com"}, "email", "at most 64 are allowed"),
        ({"email": "ana@example.com\t"}, "email", "control characters"),
        ({"email": "a@example.com", "firstname": "Ana\x1f"}, "firstname", "control characters"),
        ({"email": "a@example.com", "company": "\x1cAcme"}, "company", "control characters"),
        ({"email": "a@example.com", "message": "hi\x1e"}, "message", "control characters"),
    ],
)
async def test_what_cannot_be_stored_as_sent_is_422_not_bent(
    app_client: httpx.AsyncClient,
    engine: AsyncEngine,
    body: dict[str, Any],
    field: str,
    says: str,
) -> None:
    response = await post_lead(app_client, body)

    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == [field]
    assert says in errors[0]["message"]
    assert await count_leads(engine) == 0


async def test_unknown_field_message_says_so(app_client: httpx.AsyncClient) -> None:
    response = await post_lead(app_client, {"email": "a@example.com", "utm_source": "ads"})

    assert response.json()["errors"] == [{"field": "utm_source", "message": "is not a known field"}]


@pytest.mark.parametrize(
    "raw",
    [b'{"email": ', b"not json", b'{"email": "a@example.com",}', b"\xff\xfe{}", b""],
)
async def test_invalid_json_is_422(app_client: httpx.AsyncClient, raw: bytes) -> None:
    response = await app_client.post("/leads", content=raw, headers=JSON)

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"email": "a@example.com", "email": "b@example.com"}',
         "the body is ambiguous: the key 'email' appears more than once"),
        (b'{"email": "a@example.com", "firstname": "Ana", "firstname": "Ana"}',
         "the body is ambiguous: the key 'firstname' appears more than once"),
        (b'{"email": "a@example.com", "x": NaN}',
         "the body is not valid JSON: NaN is not a JSON number"),
        (b'{"email": "a@example.com", "x": ' + b"9" * 400 + b'.5}',
         "the body holds a number too large for a float: " + "9" * 40),
        (b'{"email": "a@example.com", "firstname": "Ana\\udc00"}',
         "the body holds a string that is not Unicode text (an unpaired surrogate escape such "
         "as \\ud800)"),
        (b'{"email": "a@example.com", "x": ' + b"9" * 4301 + b"}",
         "the body holds an integer with more than 4,300 digits"),
        (b'{"email": "a@example.com", "x": ' + b"[" * 1000 + b"]" * 1000 + b"}",
         "the body is nested too deeply"),
        (b'{"email": "a@example.com\xff"}', "the body is not valid JSON: invalid UTF-8 at byte 24"),
        ('{"email": "a@example.com"}'.encode("utf-16"),
         "the body is not valid JSON: invalid UTF-8 at byte 0"),
    ],
)  # fmt: skip
async def test_ambiguous_or_non_standard_json_is_422_saying_why(
    app_client: httpx.AsyncClient, engine: AsyncEngine, raw: bytes, message: str
) -> None:
    response = await app_client.post("/leads", content=raw, headers=JSON)

    assert response.status_code == 422, response.text
    assert response.json() == {
        "detail": "invalid request: body",
        "errors": [{"field": "body", "message": message}],
    }
    assert await count_leads(engine) == 0


@pytest.mark.parametrize("raw", [b"[]", b'["a@example.com"]', b'"a@example.com"', b"42", b"null"])
async def test_json_that_is_not_an_object_is_422(app_client: httpx.AsyncClient, raw: bytes) -> None:
    response = await app_client.post("/leads", content=raw, headers=JSON)

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "body", "message": "the body must be a JSON object"}
    ]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"email": "a\\u0000@example.com"}', "email"),
        (b'{"email": "a@example.com", "firstname": "A\\u0000"}', "firstname"),
        (b'{"email": "a@example.com", "message": "hi\\u0000there"}', "message"),
        (b'{"email": "a@example.com", "company": "\\u0000"}', "company"),
        (b'{"email": "a@example.com", "x\\u0000": "y"}', "x\x00"),
        (b'{"email": "a@example.com\x00"}', "body"),  # a raw NUL byte is not JSON at all
    ],
)
async def test_nul_characters_are_422_not_500(
    app_client: httpx.AsyncClient, engine: AsyncEngine, raw: bytes, field: str
) -> None:
    response = await app_client.post("/leads", content=raw, headers=JSON)

    assert response.status_code == 422, response.text
    assert field in {e["field"] for e in response.json()["errors"]}
    assert await count_leads(engine) == 0


async def test_body_at_the_limit_is_accepted(app_client: httpx.AsyncClient) -> None:
    raw = json.dumps({"email": "big@example.com"}).encode()
    raw = raw[:-1] + b" " * (LIMIT - len(raw)) + b"}"  # JSON whitespace up to exactly 64 KiB
    assert len(raw) == LIMIT

    response = await app_client.post("/leads", content=raw, headers=JSON)

    assert response.status_code == 201, response.text


async def test_body_over_the_limit_with_content_length_is_413(
    app_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    raw = json.dumps({"email": "big@example.com", "message": "x" * LIMIT}).encode()

    response = await app_client.post("/leads", content=raw, headers=JSON)

    assert response.status_code == 413
    assert response.json()["detail"] == f"request body larger than {LIMIT} bytes"
    assert await count_leads(engine) == 0


async def test_chunked_body_over_the_limit_is_413(
    app_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    sent: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"email": "big@example.com", "message": "'
        for _ in range(200):  # 200 KiB in all, without a Content-Length
            sent.append(1)
            yield b"x" * 1024
        yield b'"}'

    response = await app_client.post("/leads", content=chunks(), headers=JSON)

    assert response.status_code == 413, response.text
    assert response.json()["detail"] == f"request body larger than {LIMIT} bytes"
    assert len(sent) < 200  # reading stopped at the limit, not at the end of the stream
    assert await count_leads(engine) == 0


async def test_small_chunked_body_is_accepted(app_client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"email": '
        yield b'"chunked@example.com"}'

    response = await app_client.post("/leads", content=chunks(), headers=JSON)

    assert response.status_code == 201, response.text


async def test_limit_follows_the_setting(
    client_factory: ClientFactory, settings_factory: Callable[..., Settings]
) -> None:
    async with client_factory(settings_factory(max_body_bytes=100)) as (_app, client):
        small = await post_lead(client, {"email": "a@example.com"})
        large = await post_lead(client, {"email": "a@example.com", "message": "x" * 100})

    assert small.status_code == 201
    assert large.status_code == 413


# --- Idempotency-Key ----------------------------------------------------------------------


async def test_same_key_same_body_replays_the_first_lead(
    app_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    first = await post_lead(app_client, **{"Idempotency-Key": "form-1"})
    # The same lead typed differently (case, spaces) is the same submission.
    again = await post_lead(
        app_client, {**LEAD, "email": "ana.garcia@example.com"}, **{"Idempotency-Key": "form-1"}
    )

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Location"] == first.headers["Location"]
    assert await count_leads(engine) == 1


async def test_same_key_different_body_is_409(
    app_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await post_lead(app_client, **{"Idempotency-Key": "form-2"})

    response = await post_lead(
        app_client, {**LEAD, "message": "changed my mind"}, **{"Idempotency-Key": "form-2"}
    )

    assert response.status_code == 409
    assert "Idempotency-Key" in response.json()["detail"]
    assert await count_leads(engine) == 1


async def test_different_keys_make_different_leads(
    app_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    a = await post_lead(app_client, **{"Idempotency-Key": "a"})
    b = await post_lead(app_client, **{"Idempotency-Key": "b"})

    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json()["id"] != b.json()["id"]
    assert await count_leads(engine) == 2


async def test_concurrent_submissions_with_one_key_make_one_lead(
    app_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    responses = await asyncio.gather(
        *(post_lead(app_client, **{"Idempotency-Key": "double-click"}) for _ in range(10))
    )

    assert sorted(r.status_code for r in responses) == [200] * 9 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert await count_leads(engine) == 1


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "tab\there"])
async def test_invalid_idempotency_key_is_400(
    app_client: httpx.AsyncClient, engine: AsyncEngine, key: str
) -> None:
    response = await post_lead(app_client, **{"Idempotency-Key": key})

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["detail"]
    assert await count_leads(engine) == 0


# --- /internal authentication -------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-wrong-token"},
        {"Authorization": "Bearer test-internal-toke"},
        {"Authorization": "Bearer test-internal-token-and-more"},
        {"Authorization": "Basic test-internal-token"},
        {"Authorization": "test-internal-token"},
        {"Authorization": "Bearer"},
    ],
)
@pytest.mark.parametrize("path", ["/internal/leads", "/internal/leads/1"])
async def test_internal_routes_need_the_bearer_token(
    app_client: httpx.AsyncClient, headers: dict[str, str], path: str
) -> None:
    response = await app_client.get(path, headers=headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "test-internal-token" not in response.text


async def test_bearer_scheme_is_case_insensitive(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get(
        "/internal/leads", headers={"Authorization": "bearer test-internal-token"}
    )

    assert response.status_code == 200


async def test_internal_routes_are_503_until_a_token_is_configured(
    client_factory: ClientFactory, settings_factory: Callable[..., Settings]
) -> None:
    async with client_factory(settings_factory(internal_token=None)) as (_app, client):
        response = await client.get("/internal/leads", headers=INTERNAL_HEADERS)
        public = await post_lead(client)

    assert response.status_code == 503
    assert "set LEADSYNC_INTERNAL_TOKEN" in response.json()["detail"]
    assert public.status_code == 201  # the public intake does not depend on it


# --- GET /internal/leads ----------------------------------------------------------------------


async def _make_leads(client: httpx.AsyncClient, count: int) -> list[int]:
    return [
        (await post_lead(client, {"email": f"lead{i}@example.com"})).json()["id"]
        for i in range(count)
    ]


async def _set_status(engine: AsyncEngine, ids: list[int], status: str) -> None:
    async with engine.begin() as conn:
        for lead_id in ids:
            await conn.execute(
                text("UPDATE leads SET hubspot_sync_status = :s WHERE id = :id"),
                {"s": status, "id": lead_id},
            )


async def test_list_is_newest_first_with_keyset_pages(app_client: httpx.AsyncClient) -> None:
    ids = await _make_leads(app_client, 5)

    pages: list[list[int]] = []
    after: int | None = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"after": after} if after else {})
        page = await app_client.get("/internal/leads", params=params, headers=INTERNAL_HEADERS)
        assert page.status_code == 200
        body = page.json()
        pages.append([item["id"] for item in body["items"]])
        after = body["next_after"]
        if after is None:
            break
        assert after == pages[-1][-1]

    newest_first = sorted(ids, reverse=True)
    assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:]]


async def test_a_page_not_full_has_no_next(app_client: httpx.AsyncClient) -> None:
    await _make_leads(app_client, 3)

    body = (await app_client.get("/internal/leads", headers=INTERNAL_HEADERS)).json()

    assert len(body["items"]) == 3
    assert body["next_after"] is None


async def test_list_filters_by_status(app_client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    ids = await _make_leads(app_client, 6)
    await _set_status(engine, ids[1::2], "SYNCED")
    await _set_status(engine, [ids[0]], "FAILED")

    async def listed(status: str, **params: Any) -> dict[str, Any]:
        response = await app_client.get(
            "/internal/leads", params={"status": status, **params}, headers=INTERNAL_HEADERS
        )
        assert response.status_code == 200
        result: dict[str, Any] = response.json()
        return result

    synced = await listed("SYNCED")
    assert [i["id"] for i in synced["items"]] == sorted(ids[1::2], reverse=True)
    assert {i["hubspot_sync_status"] for i in synced["items"]} == {"SYNCED"}
    assert [i["id"] for i in (await listed("FAILED"))["items"]] == [ids[0]]
    assert [i["id"] for i in (await listed("PENDING"))["items"]] == [ids[4], ids[2]]
    assert (await listed("RETRYING"))["items"] == []

    first = await listed("SYNCED", limit=2)
    assert first["next_after"] == ids[3]
    second = await listed("SYNCED", limit=2, after=first["next_after"])
    assert [i["id"] for i in second["items"]] == [ids[1]]
    assert second["next_after"] is None


@pytest.mark.parametrize(
    "params",
    [{"status": "DONE"}, {"limit": 0}, {"limit": 501}, {"after": 0}, {"after": "x"},
     {"after": 2**63}, {"limit": "1.0"}, {"limit": "+5"}, {"limit": " 5"}, {"limit": "1_0"},
     {"limit": "true"}, {"after": "\u0661"}, {"limit": ""}],
)  # fmt: skip
async def test_list_rejects_bad_parameters(
    app_client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    response = await app_client.get("/internal/leads", params=params, headers=INTERNAL_HEADERS)

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == next(iter(params))


# --- GET /internal/leads/{id} -------------------------------------------------------------

SYNC_COLUMNS = {
    "hubspot_id",
    "hubspot_sync_status",
    "hubspot_synced_at",
    "hubspot_error",
    "hubspot_sync_attempts",
    "last_hubspot_attempt_at",
    "hubspot_next_attempt_at",
    "hubspot_lease_expires_at",
    "hubspot_last_http_status",
}


async def test_get_lead_shows_every_sync_column(
    app_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    lead_id = (await post_lead(app_client)).json()["id"]
    synced_at = dt.datetime(2026, 11, 28, 9, 30, tzinfo=dt.UTC)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE leads SET hubspot_id = '1234', hubspot_sync_status = 'SYNCED', "
                "hubspot_sync_attempts = 2, hubspot_last_http_status = 200, "
                "hubspot_error = 'earlier: 502' WHERE id = :id"
            ),
            {"id": lead_id},
        )
    # Through the ORM type, so SQLite gets its naive-UTC text form.
    async with create_sessionmaker(engine)() as session, session.begin():
        lead = await session.get(Lead, lead_id)
        assert lead is not None
        lead.hubspot_synced_at = synced_at
        lead.last_hubspot_attempt_at = synced_at

    response = await app_client.get(f"/internal/leads/{lead_id}", headers=INTERNAL_HEADERS)

    assert response.status_code == 200
    body = response.json()
    assert set(body) >= SYNC_COLUMNS
    assert body["id"] == lead_id
    assert body["email"] == "ana.garcia@example.com"
    assert body["hubspot_id"] == "1234"
    assert body["hubspot_sync_status"] == "SYNCED"
    assert body["hubspot_sync_attempts"] == 2
    assert body["hubspot_last_http_status"] == 200
    assert body["hubspot_error"] == "earlier: 502"
    assert utc(body["hubspot_synced_at"]) == synced_at
    assert utc(body["last_hubspot_attempt_at"]) == synced_at
    assert body["hubspot_lease_expires_at"] is None
    for key in ("created_at", "updated_at", "hubspot_next_attempt_at"):
        utc(body[key])
    assert "idempotency_fingerprint" not in body


async def test_get_unknown_lead_is_404(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/internal/leads/999999", headers=INTERNAL_HEADERS)

    assert response.status_code == 404
    assert response.json()["detail"] == "no lead with id 999999"


@pytest.mark.parametrize("lead_id", ["0", str(2**63)])
async def test_get_lead_with_an_id_out_of_range_is_422(
    app_client: httpx.AsyncClient, lead_id: str
) -> None:
    response = await app_client.get(f"/internal/leads/{lead_id}", headers=INTERNAL_HEADERS)

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "lead_id"


@pytest.mark.parametrize("lead_id", ["-1", "abc", "1.0", "+1"])
async def test_a_path_that_is_not_a_lead_id_is_404(
    app_client: httpx.AsyncClient, lead_id: str
) -> None:
    # Only digits name a lead, so that /internal/leads/resync-failed is not a lead id.
    response = await app_client.get(f"/internal/leads/{lead_id}", headers=INTERNAL_HEADERS)

    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found", "errors": []}


async def test_timestamps_of_rows_written_by_sql_are_utc(
    app_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    # A row inserted by hand (an operator, a restore) gets the database's own now().
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO leads (email) VALUES ('manual@example.com')"))
        lead_id = (await conn.execute(text("SELECT max(id) FROM leads"))).scalar_one()

    body = (await app_client.get(f"/internal/leads/{lead_id}", headers=INTERNAL_HEADERS)).json()

    created = utc(body["created_at"])
    assert abs(created - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
    assert body["hubspot_sync_status"] == "PENDING"
    assert body["hubspot_sync_attempts"] == 0


# --- health --------------------------------------------------------------------------------


async def test_healthz(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_at_head(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


async def test_readyz_is_503_with_the_reason_when_schema_is_behind(
    app: FastAPI, app_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await migrations.downgrade(engine, revision="base")

    response = await app_client.get("/readyz")

    assert response.status_code == 503
    head = migrations.head_revision()
    assert response.json()["detail"] == (
        f"database schema at nothing, expected {head}: run `leadsync migrate`"
    )

    await migrations.upgrade(engine)
    assert (await app_client.get("/readyz")).status_code == 200


async def test_readyz_is_503_when_the_database_is_unreachable(
    client_factory: ClientFactory, settings_factory: Callable[..., Settings], tmp_path: Any
) -> None:
    missing = tmp_path / "no-such-dir" / "leadsync.db"
    settings = settings_factory(database_url=f"sqlite+aiosqlite:///{missing}")
    async with client_factory(settings, migrate_on_start=False) as (_app, client):
        response = await client.get("/readyz")
        alive = await client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["detail"] == "database unreachable"
    assert alive.status_code == 200


async def test_app_migrates_on_start(client_factory: ClientFactory, engine: AsyncEngine) -> None:
    await migrations.downgrade(engine, revision="base")

    async with client_factory() as (_app, client):
        assert (await client.get("/readyz")).status_code == 200
        assert (await post_lead(client)).status_code == 201


async def test_openapi_documents_the_routes(app_client: httpx.AsyncClient) -> None:
    schema = (await app_client.get("/openapi.json")).json()

    assert {"/leads", "/internal/leads", "/internal/leads/{lead_id}", "/healthz", "/readyz"} <= set(
        schema["paths"]
    )
    responses = schema["paths"]["/leads"]["post"]["responses"]
    assert {"200", "201", "409", "413", "422"} <= set(responses)
