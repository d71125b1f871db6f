"""What the client sends, and what it reports to its observer, against the sandbox.

`hubspot.sent` holds the requests as httpx sent them (a RecordingTransport under the client).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from leadsync import __version__
from leadsync.config import Settings
from leadsync.hubspot import (
    ConflictError,
    HubSpotClient,
    RateLimitInfo,
    UpsertInput,
)
from tests.helpers.hubspot import Observed, SandboxHubSpot

# --- request shapes ------------------------------------------------------------------------


async def test_create_sends_properties_with_auth_and_user_agent(
    hubspot: SandboxHubSpot, client: HubSpotClient
) -> None:
    contact = await client.create_contact(properties={"email": "a+b@x.com"})

    (request,) = hubspot.sent
    assert request.method == "POST"
    assert request.url.path == "/crm/v3/objects/contacts"
    assert json.loads(request.content) == {"properties": {"email": "a+b@x.com"}}
    assert request.headers["Authorization"] == f"Bearer {hubspot.token}"
    assert request.headers["User-Agent"] == f"leadsync/{__version__}"
    assert contact.properties["email"] == "a+b@x.com"
    assert contact.id == contact.properties["hs_object_id"]


async def test_a_property_hubspot_returns_as_null_is_none(
    hubspot: SandboxHubSpot, client: HubSpotClient
) -> None:
    # HubSpot sends null for a requested property the contact has no value for.
    contact_json = {
        "id": "512",
        "properties": {"email": "a+b@x.com", "firstname": None},
        "createdAt": "2019-10-30T03:30:17.883Z",
        "updatedAt": "2019-12-07T16:50:06.678Z",
        "archived": False,
    }
    await hubspot.inject(status=201, json=contact_json)

    contact = await client.create_contact(properties={"email": "a+b@x.com"})

    assert contact.properties == {"email": "a+b@x.com", "firstname": None}


async def test_update_by_email_url_encodes_the_email(
    hubspot: SandboxHubSpot, client: HubSpotClient
) -> None:
    created = await client.create_contact(properties={"email": "a+b@x.com"})

    updated = await client.update_contact_by_email(
        email=" A+B@x.com", properties={"firstname": "A"}
    )

    request = hubspot.sent[-1]
    assert request.method == "PATCH"
    assert request.url.raw_path == b"/crm/v3/objects/contacts/a%2Bb%40x.com?idProperty=email"
    assert json.loads(request.content) == {"properties": {"firstname": "A"}}
    assert updated.id == created.id


async def test_probe_parses_every_rate_limit_header(
    hubspot: SandboxHubSpot, client: HubSpotClient
) -> None:
    await hubspot.configure(rate_limit="190/10s", daily_limit=625000)

    info = await client.probe()

    assert info == RateLimitInfo(
        max=190, remaining=189, interval_milliseconds=10000, daily=625000, daily_remaining=624999
    )
    (request,) = hubspot.sent
    assert (request.method, request.url.path) == ("GET", "/crm/v3/objects/contacts")
    assert request.url.params["limit"] == "1"


async def test_update_by_id_uses_the_id_path(
    hubspot: SandboxHubSpot, client: HubSpotClient
) -> None:
    created = await client.create_contact(properties={"email": "a@x.com"})

    contact = await client.update_contact(contact_id=created.id, properties={"firstname": "A"})

    assert contact.id == created.id
    assert contact.properties["firstname"] == "A"
    request = hubspot.sent[-1]
    assert (request.method, request.url.path) == ("PATCH", f"/crm/v3/objects/contacts/{created.id}")


async def test_search_sends_eq_filter_on_lowercased_email(
    hubspot: SandboxHubSpot, client: HubSpotClient
) -> None:
    created = await client.create_contact(properties={"email": "a+b@x.com"})

    found = await client.search_contact_by_email(email="A+B@X.com")

    body = json.loads(hubspot.sent[-1].content)
    assert body["filterGroups"] == [
        {"filters": [{"propertyName": "email", "operator": "EQ", "value": "a+b@x.com"}]}
    ]
    assert body["limit"] == 1
    assert "email" in body["properties"]
    assert found is not None
    assert found.id == created.id


async def test_batch_upsert_sends_hubspot_inputs(
    hubspot: SandboxHubSpot, client: HubSpotClient
) -> None:
    inputs = [UpsertInput(email="A@x.com", properties={"email": "a@x.com"}, trace_id="7")]

    result = await client.batch_upsert(inputs=inputs)

    assert json.loads(hubspot.sent[-1].content) == {
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
    assert result.results[0].trace_id == "7"


async def test_207_error_with_trace_id_on_the_error_itself(
    hubspot: SandboxHubSpot, client: HubSpotClient
) -> None:
    # A variant of HubSpot's StandardError: the trace id on the error, not in its context.
    error = {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": "Email address broken@ is invalid",
        "objectWriteTraceId": "lead-9",
        "context": {"ids": ["broken@"]},
    }
    body = {"status": "COMPLETE", "results": [], "numErrors": 1, "errors": [error]}
    await hubspot.inject(status=207, json=body)

    result = await client.batch_upsert(inputs=[UpsertInput(email="broken@", properties={})])

    assert result.http_status == 207
    assert result.errors[0].trace_ids == ("lead-9",)
    assert result.errors[0].ids == ("broken@",)


async def test_upserted_email_is_lowercased_from_properties(
    hubspot: SandboxHubSpot, client: HubSpotClient
) -> None:
    # The sandbox stores emails lowercased; HubSpot may echo the case it was sent.
    contact = {
        "id": "512",
        "properties": {"email": "Ada@Example.COM"},
        "createdAt": "2019-10-30T03:30:17.883Z",
        "updatedAt": "2019-12-07T16:50:06.678Z",
        "archived": False,
        "new": True,
    }
    await hubspot.inject(status=200, json={"status": "COMPLETE", "results": [contact]})

    result = await client.batch_upsert(inputs=[UpsertInput(email="ada@example.com", properties={})])

    assert result.results[0].email == "ada@example.com"
    assert result.results[0].new is True
    assert list(result.by_email) == ["ada@example.com"]


@pytest.mark.parametrize("count", [0, 101])
async def test_batch_size_outside_1_to_100_is_refused_locally(
    hubspot: SandboxHubSpot, client: HubSpotClient, count: int
) -> None:
    inputs = [UpsertInput(email=f"u{i}@x.com", properties={}) for i in range(count)]

    with pytest.raises(ValueError, match="1 to 100"):
        await client.batch_upsert(inputs=inputs)

    assert hubspot.sent == []


async def test_batch_of_100_is_allowed(hubspot: SandboxHubSpot, client: HubSpotClient) -> None:
    inputs = [UpsertInput(email=f"u{i}@x.com", properties={}) for i in range(100)]

    result = await client.batch_upsert(inputs=inputs)

    assert len(json.loads(hubspot.sent[-1].content)["inputs"]) == 100
    assert len(result.results) == 100


async def test_duplicate_emails_are_refused_locally(
    hubspot: SandboxHubSpot, client: HubSpotClient
) -> None:
    inputs = [
        UpsertInput(email="a@x.com", properties={}),
        UpsertInput(email=" A@X.com", properties={}),
    ]

    with pytest.raises(ValueError, match="duplicate"):
        await client.batch_upsert(inputs=inputs)

    assert hubspot.sent == []


async def test_timeouts_come_from_settings(hubspot: SandboxHubSpot) -> None:
    await hubspot.configure(tokens=["pat-settings"])
    settings = Settings(
        hubspot_token="pat-settings",
        hubspot_base_url=hubspot.url + "/",
        hubspot_connect_timeout_seconds=1.5,
        hubspot_read_timeout_seconds=2.5,
    )

    async with HubSpotClient.from_settings(settings, transport=hubspot.transport()) as hub:
        await hub.probe()

    (request,) = hubspot.sent
    assert request.extensions["timeout"]["connect"] == 1.5
    assert request.extensions["timeout"]["read"] == 2.5
    assert request.headers["Authorization"] == "Bearer pat-settings"
    assert request.url.params["limit"] == "1"


# --- observer --------------------------------------------------------------------------------


async def test_observer_sees_every_operation(client: HubSpotClient, observed: Observed) -> None:
    existing = await client.create_contact(properties={"email": "a@x.com"})

    with pytest.raises(ConflictError):
        await client.create_contact(properties={"email": "a@x.com"})
    await client.update_contact(contact_id=existing.id, properties={})
    await client.update_contact_by_email(email="a@x.com", properties={})
    await client.search_contact_by_email(email="a@x.com")
    await client.batch_upsert(inputs=[UpsertInput(email="a@x.com", properties={})])
    await client.probe()

    assert observed.statuses == [
        ("create", 201),
        ("create", 409),
        ("update", 200),
        ("update_by_email", 200),
        ("search", 200),
        ("batch_upsert", 200),
        ("probe", 200),
    ]
    assert all(seconds >= 0 for _, _, seconds in observed.events)


async def test_failing_observer_does_not_break_the_call(
    make_client: Callable[..., HubSpotClient],
) -> None:
    def broken(operation: str, status: int | None, seconds: float) -> None:
        raise RuntimeError("metrics down")

    async with make_client(observer=broken) as hub:
        info = await hub.probe()

    assert info.max == 190
