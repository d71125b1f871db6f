"""Token handling and failures without a usable response (respx only)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import respx

from leadsync.config import Settings
from leadsync.hubspot import (
    AuthError,
    HubSpotClient,
    HubSpotError,
    TransientError,
    UpsertInput,
)
from tests.unit.hubspot.fake import TOKEN, Observed, sent

# --- token handling ------------------------------------------------------------------------


async def test_token_rotation_is_picked_up_on_the_next_request(
    router: respx.MockRouter, new_client: Callable[..., HubSpotClient], tmp_path: Path
) -> None:
    router.get("/crm/v3/objects/contacts").respond(200, json={"results": []})
    token_file = tmp_path / "token"
    token_file.write_text("pat-old\n")
    settings = Settings(hubspot_token_file=token_file)

    async with new_client(token_provider=settings.read_hubspot_token) as hub:
        await hub.probe()
        token_file.write_text("pat-new\n")
        await hub.probe()

    assert sent(router, 0).headers["Authorization"] == "Bearer pat-old"
    assert sent(router, 1).headers["Authorization"] == "Bearer pat-new"


@pytest.mark.parametrize("token", [None, ""])
async def test_missing_token_fails_without_a_request(
    router: respx.MockRouter, new_client: Callable[..., HubSpotClient], token: str | None
) -> None:
    async with new_client(token_provider=lambda: token) as hub:
        with pytest.raises(AuthError) as caught:
            await hub.probe()

    assert caught.value.category == "MISSING_TOKEN"
    assert router.calls.call_count == 0


async def test_token_with_illegal_characters_is_auth_error_without_the_token(
    router: respx.MockRouter, new_client: Callable[..., HubSpotClient]
) -> None:
    bad = "pat-ñ-secret\nX-Evil: 1"

    async with new_client(token_provider=lambda: bad) as hub:
        with pytest.raises(AuthError) as caught:
            await hub.probe()

    assert caught.value.category == "INVALID_TOKEN"
    assert "secret" not in repr(caught.value) + str(caught.value)
    assert router.calls.call_count == 0


@pytest.mark.parametrize("status", [400, 401, 500])
async def test_echoed_token_never_reaches_the_error(
    router: respx.MockRouter, new_client: Callable[..., HubSpotClient], status: int
) -> None:
    old_token = "pat-na1-rotated-away-0000"
    internal = "internal-s3cr3t-token"
    echo = (
        f"Bad request. Headers: {{'authorization': 'Bearer {TOKEN}', 'x-old': "
        f"'Bearer {old_token}'}} token={TOKEN} internal={internal}"
    )
    router.post("/crm/v3/objects/contacts").respond(
        status, json={"status": "error", "message": echo, "category": f"X_{TOKEN}"}
    )

    async with new_client(secrets=[internal]) as hub:
        with pytest.raises(HubSpotError) as caught:
            await hub.create_contact(properties={"email": "a@x.com"})

    exc = caught.value
    texts = [str(exc), repr(exc), exc.message, *map(str, exc.args), str(exc.category)]
    for text in texts:
        for secret in (TOKEN, old_token, internal):
            assert secret not in text
    assert "Bearer [REDACTED]" in exc.message


async def test_echoed_token_in_207_error_message_is_scrubbed(
    router: respx.MockRouter, new_client: Callable[..., HubSpotClient]
) -> None:
    error = {"status": "error", "category": "X", "message": f"saw Authorization: Bearer {TOKEN}"}
    router.post("/crm/v3/objects/contacts/batch/upsert").respond(
        207, json={"status": "COMPLETE", "results": [], "errors": [error]}
    )

    async with new_client() as hub:
        result = await hub.batch_upsert(inputs=[UpsertInput(email="a@x.com", properties={})])

    assert TOKEN not in result.errors[0].message
    assert "[REDACTED]" in result.errors[0].message


# --- no response: timeouts, connection failures, unreadable 2xx --------------------------------


@pytest.mark.parametrize(
    ("raised", "reason"),
    [
        (httpx.ReadTimeout("timed out"), "timeout"),
        (httpx.ConnectTimeout("timed out"), "timeout"),
        (httpx.ConnectError("[Errno 111] Connection refused"), "connection"),
        (
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
            "connection",
        ),
        (httpx.ReadError("[Errno 104] Connection reset by peer"), "connection"),
    ],
)
async def test_transport_failures_are_transient_and_hide_httpx(
    router: respx.MockRouter,
    new_client: Callable[..., HubSpotClient],
    observed: Observed,
    raised: httpx.HTTPError,
    reason: str,
) -> None:
    router.post("/crm/v3/objects/contacts").mock(side_effect=raised)

    async with new_client() as hub:
        with pytest.raises(TransientError) as caught:
            await hub.create_contact(properties={"email": "a@x.com"})

    exc = caught.value
    assert exc.reason == reason
    assert exc.http_status is None
    assert type(raised).__name__ in exc.message
    assert exc.__cause__ is None
    assert exc.__context__ is None
    assert observed.statuses == [("create", None)]


async def test_total_timeout_bounds_a_hanging_request(
    router: respx.MockRouter, new_client: Callable[..., HubSpotClient]
) -> None:
    never = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        await never.wait()
        return httpx.Response(200)

    router.post("/crm/v3/objects/contacts").mock(side_effect=hang)

    async with new_client(total_timeout=0.05) as hub:
        with pytest.raises(TransientError) as caught:
            await hub.create_contact(properties={"email": "a@x.com"})

    assert caught.value.reason == "total_timeout"
    assert caught.value.__context__ is None


@pytest.mark.parametrize("content", [b"not json", b"[1, 2]", b"\xff\xfe"])
async def test_unreadable_2xx_is_transient(
    router: respx.MockRouter, new_client: Callable[..., HubSpotClient], content: bytes
) -> None:
    router.post("/crm/v3/objects/contacts").respond(201, content=content)

    async with new_client() as hub:
        with pytest.raises(TransientError) as caught:
            await hub.create_contact(properties={"email": "a@x.com"})

    assert caught.value.http_status == 201
    assert caught.value.reason == "invalid_response"
    assert caught.value.__context__ is None


async def test_2xx_with_wrong_shape_is_transient_and_quotes_no_values(
    router: respx.MockRouter, new_client: Callable[..., HubSpotClient]
) -> None:
    router.post("/crm/v3/objects/contacts").respond(
        201, json={"properties": {"email": "pii@example.com"}, "archived": "maybe"}
    )

    async with new_client() as hub:
        with pytest.raises(TransientError) as caught:
            await hub.create_contact(properties={"email": "a@x.com"})

    assert "id" in caught.value.message
    assert "pii@example.com" not in caught.value.message


async def test_3xx_is_not_followed_and_is_transient(
    router: respx.MockRouter, new_client: Callable[..., HubSpotClient]
) -> None:
    router.post("/crm/v3/objects/contacts").respond(302, headers={"Location": "https://evil/"})

    async with new_client() as hub:
        with pytest.raises(TransientError) as caught:
            await hub.create_contact(properties={"email": "a@x.com"})

    assert caught.value.http_status == 302
    assert router.calls.call_count == 1
