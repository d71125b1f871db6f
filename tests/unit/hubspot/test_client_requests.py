"""What the client sends, and what it reports to its observer (respx only)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import respx

from leadsync import __version__
from leadsync.config import Settings
from leadsync.hubspot import (
    HubSpotClient,
    HubSpotError,
    PermanentError,
    RateLimitInfo,
    UpsertInput,
)
from tests.unit.hubspot.fake import BASE_URL, CONTACT_JSON, RATE_HEADERS, TOKEN, Observed, sent

# --- request shapes ------------------------------------------------------------------------


async def test_create_sends_properties_with_auth_and_user_agent(
    router: respx.MockRouter, new_client: Callable[..., HubSpotClient]
) -> None:
    router.post("/crm/v3/objects/contacts").respond(201, json=CONTACT_JSON)

    async with new_client() as hub:
        contact = await hub.create_contact(properties={"email": "a+b@x.com"})

    request = sent(router)
    assert json.loads(request.content) == {"properties": {"email": "a+b@x.com"}}
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["User-Agent"] == f"leadsync/{__version__}"
    assert contact.properties == {"email": "a+b@x.com", "firstname": None}


async def test_update_by_email_url_encodes_the_email(
    router: respx.MockRouter, new_client: Callable[..., HubSpotClient]
) -> None:
    router.patch(url__regex=r".*/crm/v3/objects/contacts/.*").respond(200, json=CONTACT_JSON)

    async with new_client() as hub:
        await hub.update_contact_by_email(email=" A+B@x.com", properties={"firstname": "A"})

    request = sent(router)
    assert request.url.raw_path == b"/crm/v3/objects/contacts/a%2Bb%40x.com?idProperty=email"
    assert json.loads(request.content) == {"properties": {"firstname": "A"}}


async def test_probe_parses_every_rate_limit_header(
    router: respx.MockRouter, new_client: Callable[..., HubSpotClient]
) -> None:
    router.get("/crm/v3/objects/contacts").respond(200, json={"results": []}, headers=RATE_HEADERS)

    async with new_client() as hub:
        info = await hub.probe()

    assert info == RateLimitInfo(
        max=190, remaining=187, interval_milliseconds=10000, daily=625000, daily_remaining=624321
    )
    assert sent(router).url.params["limit"] == "1"


async def test_update_by_id_uses_the_id_path(
    router: respx.MockRouter, new_client: Callable[..., HubSpotClient]
) -> None:
    router.patch("/crm/v3/objects/contacts/512").respond(200, json=CONTACT_JSON)

    async with new_client() as hub:
        contact = await hub.update_contact(contact_id="512", properties={"firstname": "A"})

    assert contact.id == "512"
    assert sent(router).method == "PATCH"


async def test_search_sends_eq_filter_on_lowercased_email(
    router: respx.MockRouter, new_client: Callable[..., HubSpotClient]
) -> None:
    router.post("/crm/v3/objects/contacts/search").respond(
        200, json={"total": 1, "results": [CONTACT_JSON], "paging": {"next": {"after": "10"}}}
    )

    async with new_client() as hub:
        found = await hub.search_contact_by_email(email="A+B@X.com")

    body = json.loads(sent(router).content)
    assert body["filterGroups"] == [
        {"filters": [{"propertyName": "email", "operator": "EQ", "value": "a+b@x.com"}]}
    ]
    assert body["limit"] == 1
    assert "email" in body["properties"]
    assert found is not None
    assert found.id == "512"


async def test_batch_upsert_sends_hubspot_inputs(
    router: respx.MockRouter, new_client: Callable[..., HubSpotClient]
) -> None:
    router.post("/crm/v3/objects/contacts/batch/upsert").respond(
        200, json={"status": "COMPLETE", "results": [], "startedAt": "x", "completedAt": "y"}
    )
    inputs = [UpsertInput(email="A@x.com", properties={"email": "a@x.com"}, trace_id="7")]

    async with new_client() as hub:
        result = await hub.batch_upsert(inputs=inputs)

    assert json.loads(sent(router).content) == {
        "inputs": [
            {
                "id": "a@x.com",
                "idProperty": "email",
                "properties": {"email": "a@x.com"},
                "objectWriteTraceId": "7",
            }
        ]
    }
    assert result.status == "COMPLETE"


async def test_207_error_with_trace_id_on_the_error_itself(
    router: respx.MockRouter, new_client: Callable[..., HubSpotClient]
) -> None:
    error = {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": "Email address broken@ is invalid",
        "objectWriteTraceId": "lead-9",
        "context": {"ids": ["broken@"]},
    }
    router.post("/crm/v3/objects/contacts/batch/upsert").respond(
        207, json={"status": "COMPLETE", "results": [], "numErrors": 1, "errors": [error]}
    )

    async with new_client() as hub:
        result = await hub.batch_upsert(inputs=[UpsertInput(email="broken@", properties={})])

    assert result.http_status == 207
    assert result.errors[0].trace_ids == ("lead-9",)
    assert result.errors[0].ids == ("broken@",)


async def test_upserted_email_is_lowercased_from_properties(
    router: respx.MockRouter, new_client: Callable[..., HubSpotClient]
) -> None:
    result_json = CONTACT_JSON | {"properties": {"email": "Ada@Example.COM"}, "new": True}
    router.post("/crm/v3/objects/contacts/batch/upsert").respond(
        200, json={"status": "COMPLETE", "results": [result_json]}
    )

    async with new_client() as hub:
        result = await hub.batch_upsert(
            inputs=[UpsertInput(email="ada@example.com", properties={})]
        )

    assert result.results[0].email == "ada@example.com"
    assert result.results[0].new is True
    assert list(result.by_email) == ["ada@example.com"]


@pytest.mark.parametrize("count", [0, 101])
async def test_batch_size_outside_1_to_100_is_refused_locally(
    router: respx.MockRouter, new_client: Callable[..., HubSpotClient], count: int
) -> None:
    inputs = [UpsertInput(email=f"u{i}@x.com", properties={}) for i in range(count)]

    async with new_client() as hub:
        with pytest.raises(ValueError, match="1 to 100"):
            await hub.batch_upsert(inputs=inputs)

    assert router.calls.call_count == 0


async def test_batch_of_100_is_allowed(
    router: respx.MockRouter, new_client: Callable[..., HubSpotClient]
) -> None:
    router.post("/crm/v3/objects/contacts/batch/upsert").respond(
        200, json={"status": "COMPLETE", "results": []}
    )
    inputs = [UpsertInput(email=f"u{i}@x.com", properties={}) for i in range(100)]

    async with new_client() as hub:
        await hub.batch_upsert(inputs=inputs)

    assert len(json.loads(sent(router).content)["inputs"]) == 100


async def test_duplicate_emails_are_refused_locally(
    router: respx.MockRouter, new_client: Callable[..., HubSpotClient]
) -> None:
    inputs = [
        UpsertInput(email="a@x.com", properties={}),
        UpsertInput(email=" A@X.com", properties={}),
    ]

    async with new_client() as hub:
        with pytest.raises(ValueError, match="duplicate"):
            await hub.batch_upsert(inputs=inputs)

    assert router.calls.call_count == 0


async def test_timeouts_come_from_settings(router: respx.MockRouter, tmp_path: Path) -> None:
    router.get("/crm/v3/objects/contacts").respond(200, json={"results": []})
    settings = Settings(
        hubspot_token="pat-settings",
        hubspot_base_url=BASE_URL + "/",
        hubspot_connect_timeout_seconds=1.5,
        hubspot_read_timeout_seconds=2.5,
    )
    transport = httpx.MockTransport(router.async_handler)

    async with HubSpotClient.from_settings(settings, transport=transport) as hub:
        await hub.probe()

    request = sent(router)
    assert request.extensions["timeout"]["connect"] == 1.5
    assert request.extensions["timeout"]["read"] == 2.5
    assert request.headers["Authorization"] == "Bearer pat-settings"
    assert request.url.params["limit"] == "1"


# --- observer --------------------------------------------------------------------------------


async def test_observer_sees_every_operation(
    router: respx.MockRouter, new_client: Callable[..., HubSpotClient], observed: Observed
) -> None:
    contacts = "/crm/v3/objects/contacts"
    router.post(contacts).respond(409, json={"message": "Existing ID: 5", "category": "CONFLICT"})
    router.patch(f"{contacts}/5").respond(200, json=CONTACT_JSON)
    router.patch(url__regex=r".*/contacts/a%40x\.com.*").respond(200, json=CONTACT_JSON)
    router.post(f"{contacts}/search").respond(200, json={"total": 0, "results": []})
    router.post(f"{contacts}/batch/upsert").respond(200, json={"status": "COMPLETE", "results": []})
    router.get(contacts).respond(200, json={"results": []})

    async with new_client() as hub:
        with pytest.raises(HubSpotError):
            await hub.create_contact(properties={"email": "a@x.com"})
        await hub.update_contact(contact_id="5", properties={})
        await hub.update_contact_by_email(email="a@x.com", properties={})
        await hub.search_contact_by_email(email="a@x.com")
        await hub.batch_upsert(inputs=[UpsertInput(email="a@x.com", properties={})])
        await hub.probe()

    assert observed.statuses == [
        ("create", 409),
        ("update", 200),
        ("update_by_email", 200),
        ("search", 200),
        ("batch_upsert", 200),
        ("probe", 200),
    ]
    assert all(seconds >= 0 for _, _, seconds in observed.events)


async def test_failing_observer_does_not_break_the_call(
    router: respx.MockRouter, new_client: Callable[..., HubSpotClient]
) -> None:
    router.get("/crm/v3/objects/contacts").respond(200, json={"results": []})

    def broken(operation: str, status: int | None, seconds: float) -> None:
        raise RuntimeError("metrics down")

    async with new_client(observer=broken) as hub:
        info = await hub.probe()

    assert info.max is None


async def test_invalid_url_is_permanent(
    router: respx.MockRouter, new_client: Callable[..., HubSpotClient]
) -> None:
    router.post("/crm/v3/objects/contacts").mock(side_effect=httpx.InvalidURL("bad url"))

    async with new_client() as hub:
        with pytest.raises(PermanentError):
            await hub.create_contact(properties={"email": "a@x.com"})
