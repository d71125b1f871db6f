"""HubSpotClient.gdpr_delete against the sandbox: what it sends, the 204 it expects, the
errors it raises (classified as for every call), and that the email stays out of its error
texts and observer labels."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import quote

import pytest

from leadsync.hubspot import (
    AuthError,
    HubSpotClient,
    HubSpotError,
    PermanentError,
    RateLimitedError,
    RateLimitInfo,
    TransientError,
    UpsertInput,
)
from tests.helpers.hubspot import GDPR_DELETE, Observed, SandboxHubSpot, error_body

EMAIL = "ada@example.com"


async def test_sends_the_email_as_object_id_with_id_property_email(
    hubspot: SandboxHubSpot, client: HubSpotClient
) -> None:
    await client.gdpr_delete(email="  Ada@Example.COM ")

    (request,) = hubspot.sent
    assert (request.method, request.url.path) == ("POST", GDPR_DELETE)
    assert json.loads(request.content) == {"objectId": EMAIL, "idProperty": "email"}
    assert request.headers["Authorization"] == f"Bearer {hubspot.token}"
    assert request.headers["Content-Type"] == "application/json"


async def test_deletes_the_contact_and_returns_the_rate_limit_of_the_204(
    hubspot: SandboxHubSpot, client: HubSpotClient, observed: Observed
) -> None:
    await hubspot.configure(rate_limit="190/10s", daily_limit=625000)
    created = await client.create_contact(properties={"email": EMAIL, "firstname": "Ada"})

    info = await client.gdpr_delete(email=EMAIL)

    assert info == RateLimitInfo(
        max=190,
        remaining=188,
        interval_milliseconds=10000,
        daily=625000,
        daily_remaining=624998,
    )
    assert await hubspot.contacts() == []
    (applied,) = await hubspot.gdpr_deletions()
    assert applied["deleted_contact_id"] == created.id
    assert [entry["email"] for entry in await hubspot.blocklist()] == [EMAIL]
    # Only the operation name is reported, never the email.
    assert observed.statuses == [("create", 201), ("gdpr_delete", 204)]


async def test_an_unknown_email_is_done_too_and_blocklisted(
    hubspot: SandboxHubSpot, client: HubSpotClient
) -> None:
    await client.gdpr_delete(email=EMAIL)

    (applied,) = await hubspot.gdpr_deletions()
    assert (applied["deleted_contact_id"], applied["blocklisted"]) == (None, True)
    assert [entry["email"] for entry in await hubspot.blocklist()] == [EMAIL]


async def test_a_late_upsert_recreates_the_erased_contact(
    hubspot: SandboxHubSpot, client: HubSpotClient
) -> None:
    # What HubSpot documents and an erasure must guard against: its blocklist does not stop
    # an API write, so a retry that lands after the delete brings the person back.
    await client.create_contact(properties={"email": EMAIL})
    await client.gdpr_delete(email=EMAIL)

    result = await client.batch_upsert(inputs=[UpsertInput(email=EMAIL, properties={})])

    (again,) = result.results
    assert again.new is True
    (entry,) = await hubspot.blocklist()
    assert entry["recreated_contact_id"] == again.id
    assert entry["recreated_at"] is not None


async def test_a_dropped_delete_is_applied_transient_and_safe_to_repeat(
    hubspot: SandboxHubSpot, client: HubSpotClient, observed: Observed
) -> None:
    created = await client.create_contact(properties={"email": EMAIL})
    await hubspot.inject(action="drop", endpoints=["gdpr_delete"])

    with pytest.raises(TransientError) as caught:
        await client.gdpr_delete(email=EMAIL)

    assert caught.value.reason == "connection"
    assert await hubspot.contacts() == []  # applied before the connection was cut
    await client.gdpr_delete(email=EMAIL)  # the retry: a 204, nothing left to delete
    first, second = await hubspot.gdpr_deletions()
    assert (first["deleted_contact_id"], second["deleted_contact_id"]) == (created.id, None)
    assert observed.statuses[1:] == [("gdpr_delete", None), ("gdpr_delete", 204)]


async def test_the_sandboxs_own_429_is_rate_limited(
    hubspot: SandboxHubSpot, client: HubSpotClient
) -> None:
    await hubspot.configure(rate_limit="1/10s")
    await client.probe()

    with pytest.raises(RateLimitedError) as caught:
        await client.gdpr_delete(email=EMAIL)

    assert caught.value.http_status == 429
    assert caught.value.policy_name == "TEN_SECONDLY_ROLLING"
    assert caught.value.retry_after_seconds is not None
    assert caught.value.rate_limit.remaining == 0
    assert await hubspot.gdpr_deletions() == []


async def test_a_wrong_token_is_an_auth_error(
    hubspot: SandboxHubSpot, make_client: Callable[..., HubSpotClient]
) -> None:
    async with make_client(token_provider=lambda: "pat-na1-revoked") as hub:
        with pytest.raises(AuthError) as caught:
            await hub.gdpr_delete(email=EMAIL)

    assert (caught.value.http_status, caught.value.category) == (401, "INVALID_AUTHENTICATION")
    assert await hubspot.gdpr_deletions() == []


@pytest.mark.parametrize(
    ("status", "category", "error"),
    [
        (403, "MISSING_SCOPES", AuthError),
        (400, "VALIDATION_ERROR", PermanentError),
        (404, "OBJECT_NOT_FOUND", PermanentError),
        (500, "INTERNAL_ERROR", TransientError),
        (503, "INTERNAL_ERROR", TransientError),
    ],
)
async def test_error_answers_are_classified_like_every_call(
    hubspot: SandboxHubSpot,
    client: HubSpotClient,
    status: int,
    category: str,
    error: type[HubSpotError],
) -> None:
    await hubspot.inject(status=status, json=error_body("Refused", category))

    with pytest.raises(error) as caught:
        await client.gdpr_delete(email=EMAIL)

    assert type(caught.value) is error
    assert (caught.value.http_status, caught.value.category) == (status, category)
    assert await hubspot.gdpr_deletions() == []


async def test_a_hung_delete_times_out_as_transient(
    hubspot: SandboxHubSpot, make_client: Callable[..., HubSpotClient]
) -> None:
    await hubspot.inject(action="hang", endpoints=["gdpr_delete"])

    async with make_client(read_timeout=0.05) as hub:
        with pytest.raises(TransientError) as caught:
            await hub.gdpr_delete(email=EMAIL)

    assert caught.value.reason == "timeout"
    assert await hubspot.gdpr_deletions() == []  # a hang applies nothing


async def test_an_answer_other_than_204_is_not_taken_as_done(
    hubspot: SandboxHubSpot, client: HubSpotClient
) -> None:
    # A 200 is not what HubSpot answers (a wrong base URL, a proxy): retried, not trusted.
    await hubspot.inject(status=200, json={"status": "ok"})

    with pytest.raises(TransientError) as caught:
        await client.gdpr_delete(email=EMAIL)

    assert (caught.value.reason, caught.value.http_status) == ("invalid_response", 200)


async def test_the_email_is_scrubbed_from_error_texts(
    hubspot: SandboxHubSpot, client: HubSpotClient
) -> None:
    echoed = f"Cannot delete {EMAIL} ({quote(EMAIL, safe='')})"
    body = error_body(echoed, "VALIDATION_ERROR", context={"email": [EMAIL]})
    await hubspot.inject(status=400, json=body)

    with pytest.raises(PermanentError) as caught:
        await client.gdpr_delete(email="Ada@Example.com")

    texts = [str(caught.value), repr(caught.value), *caught.value.args]
    texts += [v for values in caught.value.context.values() for v in values]
    assert all("ada" not in text.lower() for text in texts), texts
    assert caught.value.message == "Cannot delete [REDACTED] ([REDACTED])"


async def test_a_blank_email_is_refused_before_anything_is_sent(
    hubspot: SandboxHubSpot, client: HubSpotClient
) -> None:
    with pytest.raises(ValueError, match="email"):
        await client.gdpr_delete(email="  ")

    assert hubspot.sent == []
