"""Scenarios of HubSpot's documented behaviour (docs/hubspot.md), played by the sandbox.

Every test talks to the sandbox (`hubspot`) through `client`: the sandbox's own answers, or
one it was told to give (`hubspot.inject(...)`, docs/sandbox.md).
"""

from __future__ import annotations

import pytest

from leadsync.hubspot import (
    ConflictError,
    HubSpotClient,
    PermanentError,
    UpsertInput,
)
from tests.helpers.hubspot import SandboxHubSpot, error_body

PEOPLE = {"email": "ada@example.com", "firstname": "Ada", "lastname": "Lovelace"}


# --- 201 / 200 ---------------------------------------------------------------------------


async def test_create_returns_contact_with_rate_limit(client: HubSpotClient) -> None:
    contact = await client.create_contact(properties=PEOPLE)

    assert contact.id.isdigit()
    assert contact.properties["email"] == "ada@example.com"
    assert contact.properties["firstname"] == "Ada"
    assert contact.created_at is not None
    assert contact.created_at.tzinfo is not None
    assert contact.archived is False
    assert contact.rate_limit.max is not None
    assert contact.rate_limit.interval_seconds == 10.0


async def test_update_by_id_and_by_email_change_the_same_contact(client: HubSpotClient) -> None:
    created = await client.create_contact(properties=PEOPLE)

    by_id = await client.update_contact(contact_id=created.id, properties={"phone": "+3491"})
    by_email = await client.update_contact_by_email(
        email="ADA@example.com ", properties={"company": "Analytical Engines"}
    )

    assert by_id.id == by_email.id == created.id
    assert by_email.properties["phone"] == "+3491"
    assert by_email.properties["company"] == "Analytical Engines"


async def test_update_by_plus_addressed_email(client: HubSpotClient) -> None:
    # The email travels URL-encoded in the path (a%2Bcrm%40example.com).
    created = await client.create_contact(properties={"email": "ada+crm@example.com"})

    updated = await client.update_contact_by_email(
        email="Ada+CRM@example.com", properties={"phone": "+3491"}
    )

    assert updated.id == created.id
    assert updated.properties["phone"] == "+3491"


async def test_default_properties_are_writable(client: HubSpotClient) -> None:
    defaults = {"message": "Call me", "lifecyclestage": "lead", "hs_lead_status": "NEW"}

    contact = await client.create_contact(properties=PEOPLE | defaults)

    assert {name: contact.properties[name] for name in defaults} == defaults


async def test_contact_without_email_is_not_found_by_email(client: HubSpotClient) -> None:
    # A name alone makes a contact; lookups by email must skip it, not trip over it.
    await client.create_contact(properties={"firstname": "Ada"})

    found = await client.search_contact_by_email(email="ada@example.com")
    with pytest.raises(PermanentError) as caught:
        await client.update_contact_by_email(email="ada@example.com", properties={"phone": "1"})
    upserted = await client.batch_upsert(
        inputs=[UpsertInput(email="ada@example.com", properties={"firstname": "Ada"})]
    )

    assert found is None
    assert (caught.value.http_status, caught.value.category) == (404, "OBJECT_NOT_FOUND")
    assert upserted.results[0].new is True


async def test_search_finds_contact_case_insensitively(client: HubSpotClient) -> None:
    created = await client.create_contact(properties=PEOPLE)

    found = await client.search_contact_by_email(email="Ada@Example.com")
    missing = await client.search_contact_by_email(email="nobody@example.com")

    assert found is not None
    assert found.id == created.id
    assert missing is None


async def test_probe_returns_rate_limit_headers(client: HubSpotClient) -> None:
    info = await client.probe()

    assert info.max is not None
    assert info.remaining is not None
    assert 0 <= info.remaining <= info.max
    assert info.interval_milliseconds == 10000


# --- batch upsert: 200 / 207 / 400 ------------------------------------------------------


async def test_batch_upsert_creates_then_updates(client: HubSpotClient) -> None:
    inputs = [
        UpsertInput(email="Ada@Example.com", properties={"firstname": "Ada"}, trace_id="lead-1"),
        UpsertInput(email="alan@example.com", properties={"firstname": "Alan"}, trace_id="lead-2"),
    ]
    first = await client.batch_upsert(inputs=inputs)
    second = await client.batch_upsert(inputs=inputs[:1])

    assert first.http_status == 200
    assert first.errors == []
    assert sorted(r.email for r in first.results if r.email) == [
        "ada@example.com",
        "alan@example.com",
    ]
    assert all(r.new for r in first.results)
    assert second.results[0].new is False
    assert second.results[0].id == first.by_email["ada@example.com"].id
    assert first.rate_limit.remaining is not None


async def test_batch_upsert_207_maps_error_to_trace_id(
    hubspot: SandboxHubSpot, client: HubSpotClient
) -> None:
    await hubspot.configure(invalid_batch="per-input")
    inputs = [
        UpsertInput(email="ok@example.com", properties={"firstname": "Ok"}, trace_id="lead-1"),
        UpsertInput(email="broken@", properties={"firstname": "Bad"}, trace_id="lead-2"),
    ]

    result = await client.batch_upsert(inputs=inputs)

    assert result.http_status == 207
    assert [r.email for r in result.results] == ["ok@example.com"]
    assert len(result.errors) == 1
    error = result.errors[0]
    assert error.trace_ids == ("lead-2",)
    assert error.category == "VALIDATION_ERROR"
    assert "INVALID_EMAIL" in error.message


async def test_batch_upsert_invalid_input_400_fails_whole_batch(
    hubspot: SandboxHubSpot, client: HubSpotClient
) -> None:
    await hubspot.configure(invalid_batch="whole")
    inputs = [
        UpsertInput(email="ok@example.com", properties={"firstname": "Ok"}, trace_id="lead-1"),
        UpsertInput(email="x@example.com", properties={"shoe_size": "44"}, trace_id="lead-2"),
    ]

    with pytest.raises(PermanentError) as caught:
        await client.batch_upsert(inputs=inputs)

    assert caught.value.http_status == 400
    assert caught.value.category == "VALIDATION_ERROR"
    assert caught.value.error_codes == ("PROPERTY_DOESNT_EXIST",)


async def test_batch_duplicate_ids_400_is_parsed(
    hubspot: SandboxHubSpot, client: HubSpotClient
) -> None:
    # The client refuses duplicates itself, so HubSpot's answer to them is injected.
    message = "Duplicate IDs found in batch input: [ada@example.com]. IDs must be unique"
    body = error_body(message, "VALIDATION_ERROR") | {"context": {"ids": ["ada@example.com"]}}
    await hubspot.inject(status=400, json=body)

    with pytest.raises(PermanentError) as caught:
        await client.batch_upsert(inputs=[UpsertInput(email="ada@example.com", properties={})])

    assert caught.value.duplicate_ids == ("ada@example.com",)
    assert caught.value.context["ids"] == ("ada@example.com",)


# --- 400 / 404 / 409 --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("properties", "code"),
    [
        ({"email": "not-an-email"}, "INVALID_EMAIL"),
        ({"email": "grace@example.com", "favorite_color": "red"}, "PROPERTY_DOESNT_EXIST"),
    ],
)
async def test_create_invalid_properties_is_permanent(
    client: HubSpotClient, properties: dict[str, str], code: str
) -> None:
    with pytest.raises(PermanentError) as caught:
        await client.create_contact(properties=properties)

    assert caught.value.http_status == 400
    assert caught.value.category == "VALIDATION_ERROR"
    assert caught.value.error_codes == (code,)
    assert caught.value.message.startswith("Property values were not valid")


async def test_create_without_email_or_name_is_400(client: HubSpotClient) -> None:
    with pytest.raises(PermanentError) as caught:
        await client.create_contact(properties={"phone": "+3491", "company": "Engines"})

    assert caught.value.http_status == 400
    assert caught.value.category == "VALIDATION_ERROR"


async def test_update_unknown_id_is_404_permanent(client: HubSpotClient) -> None:
    with pytest.raises(PermanentError) as caught:
        await client.update_contact(contact_id="999", properties={"firstname": "X"})

    assert caught.value.http_status == 404
    assert caught.value.category == "OBJECT_NOT_FOUND"


async def test_404_without_body_is_still_permanent(
    hubspot: SandboxHubSpot, client: HubSpotClient
) -> None:
    await hubspot.inject(status=404, content="")

    with pytest.raises(PermanentError) as caught:
        await client.update_contact(contact_id="1", properties={"firstname": "X"})

    assert caught.value.http_status == 404
    assert caught.value.message == "HTTP 404 without a body"


async def test_create_existing_email_is_conflict_with_existing_id(client: HubSpotClient) -> None:
    created = await client.create_contact(properties=PEOPLE)

    with pytest.raises(ConflictError) as caught:
        await client.create_contact(properties={"email": "ADA@example.com"})

    assert caught.value.http_status == 409
    assert caught.value.category == "CONFLICT"
    assert caught.value.existing_id == created.id
    assert caught.value.correlation_id


async def test_update_to_a_taken_email_is_conflict(client: HubSpotClient) -> None:
    ada = await client.create_contact(properties=PEOPLE)
    alan = await client.create_contact(properties={"email": "alan@example.com"})

    with pytest.raises(ConflictError) as caught:
        await client.update_contact(contact_id=alan.id, properties={"email": "ADA@example.com"})

    assert caught.value.http_status == 409
    assert caught.value.existing_id == ada.id


async def test_conflict_without_parseable_id(
    hubspot: SandboxHubSpot, client: HubSpotClient
) -> None:
    await hubspot.inject(status=409, json=error_body("Contact already exists.", "CONFLICT"))

    with pytest.raises(ConflictError) as caught:
        await client.create_contact(properties=PEOPLE)

    assert caught.value.existing_id is None
