"""Token handling and failures without a usable response.

Against the sandbox where it can produce the failure; respx only for the transport-level
faults no server can make on demand, each test saying which.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from leadsync.config import Settings
from leadsync.hubspot import (
    AuthError,
    HubSpotClient,
    HubSpotError,
    PermanentError,
    TransientError,
    UpsertInput,
)
from tests.helpers.hubspot import CONTACTS, Observed, SandboxHubSpot

RESPX_URL = "https://api.hubapi.test"


def respx_client(router: respx.MockRouter, **overrides: Any) -> HubSpotClient:
    """A client whose requests go to a respx router (for faults no server can make)."""
    kwargs: dict[str, Any] = {
        "base_url": RESPX_URL,
        "token_provider": lambda: "pat-na1-respx",
        "transport": httpx.MockTransport(router.async_handler),
    }
    return HubSpotClient(**(kwargs | overrides))


@pytest.fixture
def router() -> respx.MockRouter:
    """A bare respx router, for the tests that need a fault at the transport itself."""
    return respx.MockRouter(base_url=RESPX_URL, assert_all_called=False)


# --- token handling ------------------------------------------------------------------------


async def test_token_rotation_is_picked_up_on_the_next_request(
    hubspot: SandboxHubSpot, make_client: Callable[..., HubSpotClient], tmp_path: Path
) -> None:
    await hubspot.configure(tokens=["pat-old", "pat-new"])
    token_file = tmp_path / "token"
    token_file.write_text("pat-old\n")
    settings = Settings(hubspot_token_file=token_file)

    async with make_client(token_provider=settings.read_hubspot_token) as hub:
        await hub.probe()
        token_file.write_text("pat-new\n")
        await hub.probe()

    assert [r.headers["Authorization"] for r in hubspot.sent] == [
        "Bearer pat-old",
        "Bearer pat-new",
    ]


@pytest.mark.parametrize("token", [None, ""])
async def test_missing_token_fails_without_a_request(
    hubspot: SandboxHubSpot, make_client: Callable[..., HubSpotClient], token: str | None
) -> None:
    async with make_client(token_provider=lambda: token) as hub:
        with pytest.raises(AuthError) as caught:
            await hub.probe()

    assert caught.value.category == "MISSING_TOKEN"
    assert hubspot.sent == []


async def test_token_with_illegal_characters_is_auth_error_without_the_token(
    hubspot: SandboxHubSpot, make_client: Callable[..., HubSpotClient]
) -> None:
    bad = "pat-ñ-secret\nX-Evil: 1"

    async with make_client(token_provider=lambda: bad) as hub:
        with pytest.raises(AuthError) as caught:
            await hub.probe()

    assert caught.value.category == "INVALID_TOKEN"
    assert "secret" not in repr(caught.value) + str(caught.value)
    assert hubspot.sent == []


@pytest.mark.parametrize("status", [400, 401, 500])
async def test_echoed_token_never_reaches_the_error(
    hubspot: SandboxHubSpot, make_client: Callable[..., HubSpotClient], status: int
) -> None:
    token = hubspot.token
    old_token = "pat-na1-rotated-away-0000"
    internal = "internal-s3cr3t-token"
    echo = (
        f"Bad request. Headers: {{'authorization': 'Bearer {token}', 'x-old': "
        f"'Bearer {old_token}'}} token={token} internal={internal}"
    )
    body = {"status": "error", "message": echo, "category": f"X_{token}"}
    await hubspot.inject(status=status, json=body)

    async with make_client(secrets=[internal]) as hub:
        with pytest.raises(HubSpotError) as caught:
            await hub.create_contact(properties={"email": "a@x.com"})

    exc = caught.value
    texts = [str(exc), repr(exc), exc.message, *map(str, exc.args), str(exc.category)]
    for text in texts:
        for secret in (token, old_token, internal):
            assert secret not in text
    assert "Bearer [REDACTED]" in exc.message


async def test_echoed_token_in_207_error_message_is_scrubbed(
    hubspot: SandboxHubSpot, client: HubSpotClient
) -> None:
    message = f"saw Authorization: Bearer {hubspot.token}"
    await hubspot.fail_input("a@x.com", status="400", category="VALIDATION_ERROR", message=message)

    result = await client.batch_upsert(inputs=[UpsertInput(email="a@x.com", properties={})])

    assert result.http_status == 207
    assert hubspot.token not in result.errors[0].message
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
    router: respx.MockRouter, raised: httpx.HTTPError, reason: str
) -> None:
    # respx: each exact httpx exception type on demand (no server chooses the client's error);
    # test_client_network.py makes the real ones with the sandbox and real sockets.
    router.post(CONTACTS).mock(side_effect=raised)
    observed = Observed()

    async with respx_client(router, observer=observed) as hub:
        with pytest.raises(TransientError) as caught:
            await hub.create_contact(properties={"email": "a@x.com"})

    exc = caught.value
    assert exc.reason == reason
    assert exc.http_status is None
    assert type(raised).__name__ in exc.message
    assert exc.__cause__ is None
    assert exc.__context__ is None
    assert observed.statuses == [("create", None)]


@pytest.mark.parametrize("content", ["not json", "[1, 2]"])
async def test_unreadable_2xx_is_transient(
    hubspot: SandboxHubSpot, client: HubSpotClient, content: str
) -> None:
    await hubspot.inject(status=201, content=content)

    with pytest.raises(TransientError) as caught:
        await client.create_contact(properties={"email": "a@x.com"})

    assert caught.value.http_status == 201
    assert caught.value.reason == "invalid_response"
    assert caught.value.__context__ is None


async def test_2xx_that_is_not_utf8_is_transient(router: respx.MockRouter) -> None:
    # respx: the sandbox's injected content is text, always valid UTF-8; these bytes are not.
    router.post(CONTACTS).respond(201, content=b"\xff\xfe")

    async with respx_client(router) as hub:
        with pytest.raises(TransientError) as caught:
            await hub.create_contact(properties={"email": "a@x.com"})

    assert caught.value.http_status == 201
    assert caught.value.reason == "invalid_response"
    assert caught.value.__context__ is None


async def test_2xx_with_wrong_shape_is_transient_and_quotes_no_values(
    hubspot: SandboxHubSpot, client: HubSpotClient
) -> None:
    wrong = {"properties": {"email": "pii@example.com"}, "archived": "maybe"}
    await hubspot.inject(status=201, json=wrong)

    with pytest.raises(TransientError) as caught:
        await client.create_contact(properties={"email": "a@x.com"})

    assert "id" in caught.value.message
    assert "pii@example.com" not in caught.value.message


async def test_3xx_is_not_followed_and_is_transient(router: respx.MockRouter) -> None:
    # respx: the sandbox answers 200..599 only; a redirect needs a hand-made response.
    router.post(CONTACTS).respond(302, headers={"Location": "https://evil/"})

    async with respx_client(router) as hub:
        with pytest.raises(TransientError) as caught:
            await hub.create_contact(properties={"email": "a@x.com"})

    assert caught.value.http_status == 302
    assert router.calls.call_count == 1


async def test_invalid_url_is_permanent(router: respx.MockRouter) -> None:
    # respx: httpx raises InvalidURL before any byte is sent; no server can cause it.
    router.post(CONTACTS).mock(side_effect=httpx.InvalidURL("bad url"))

    async with respx_client(router) as hub:
        with pytest.raises(PermanentError):
            await hub.create_contact(properties={"email": "a@x.com"})
