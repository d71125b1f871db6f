"""Fault scenarios (401/403/423/429/5xx): the sandbox (`hubspot`) refuses a wrong token on
its own; every other fault is an answer it is told to give (`hubspot.inject`)."""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from leadsync.hubspot import (
    AuthError,
    HubSpotClient,
    HubSpotError,
    RateLimitedError,
    TransientError,
    UpsertInput,
)
from tests.helpers.hubspot import SandboxHubSpot, error_body, rate_limit_body

PEOPLE = {"email": "ada@example.com", "firstname": "Ada", "lastname": "Lovelace"}
RATE_10S = {
    "X-HubSpot-RateLimit-Max": "190",
    "X-HubSpot-RateLimit-Remaining": "0",
    "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
}
LIMIT_BODY = rate_limit_body("TEN_SECONDLY_ROLLING")
DAILY_BODY = rate_limit_body("DAILY")


# --- 401 / 403 ---------------------------------------------------------------------------


async def test_wrong_token_is_auth_error(make_client: Callable[..., HubSpotClient]) -> None:
    async with make_client(token_provider=lambda: "pat-na1-revoked") as hub:
        with pytest.raises(AuthError) as caught:
            await hub.probe()

    assert caught.value.http_status == 401
    assert caught.value.category == "INVALID_AUTHENTICATION"


@pytest.mark.parametrize(
    ("status", "category", "message"),
    [
        (401, "EXPIRED_AUTHENTICATION", "The OAuth token used to make this call expired."),
        (403, "MISSING_SCOPES", "This app hasn't been granted all required scopes."),
    ],
)
async def test_credential_failures_are_auth_errors(
    hubspot: SandboxHubSpot, client: HubSpotClient, status: int, category: str, message: str
) -> None:
    await hubspot.inject(status=status, json=error_body(message, category))

    with pytest.raises(AuthError) as caught:
        await client.create_contact(properties=PEOPLE)

    assert (caught.value.http_status, caught.value.category) == (status, category)


# --- 423 / 429 ---------------------------------------------------------------------------


async def test_423_is_transient_with_two_second_minimum(
    hubspot: SandboxHubSpot, client: HubSpotClient
) -> None:
    await hubspot.inject(status=423, json=error_body("Locked", "LOCKED"))

    with pytest.raises(TransientError) as caught:
        await client.create_contact(properties=PEOPLE)

    assert caught.value.http_status == 423
    assert caught.value.min_wait_seconds == 2.0


async def test_429_ten_secondly_with_retry_after_seconds(
    hubspot: SandboxHubSpot, client: HubSpotClient
) -> None:
    await hubspot.inject(status=429, json=LIMIT_BODY, headers=RATE_10S | {"Retry-After": "7"})

    with pytest.raises(RateLimitedError) as caught:
        await client.batch_upsert(inputs=[UpsertInput(email="a@example.com", properties={})])

    error = caught.value
    assert error.policy_name == "TEN_SECONDLY_ROLLING"
    assert error.retry_after_seconds == 7.0
    assert error.interval_seconds == 10.0
    assert error.is_daily is False
    assert error.rate_limit.remaining == 0
    assert error.category == "RATE_LIMIT"


async def test_429_with_http_date_retry_after(
    hubspot: SandboxHubSpot, client: HubSpotClient
) -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)
    retry_after = email.utils.format_datetime(when, usegmt=True)
    await hubspot.inject(status=429, json=LIMIT_BODY, headers={"Retry-After": retry_after})

    with pytest.raises(RateLimitedError) as caught:
        await client.create_contact(properties=PEOPLE)

    assert caught.value.retry_after_seconds is not None
    assert 100 <= caught.value.retry_after_seconds <= 120


async def test_429_without_retry_after_falls_back_to_window(
    hubspot: SandboxHubSpot, client: HubSpotClient
) -> None:
    await hubspot.inject(status=429, json=LIMIT_BODY, headers=RATE_10S)

    with pytest.raises(RateLimitedError) as caught:
        await client.create_contact(properties=PEOPLE)

    assert caught.value.retry_after_seconds is None
    assert caught.value.interval_seconds == 10.0


async def test_429_daily_is_daily(hubspot: SandboxHubSpot, client: HubSpotClient) -> None:
    await hubspot.inject(status=429, json=DAILY_BODY)

    with pytest.raises(RateLimitedError) as caught:
        await client.create_contact(properties=PEOPLE)

    assert caught.value.policy_name == "DAILY"
    assert caught.value.is_daily is True


# --- 5xx -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_is_transient(
    hubspot: SandboxHubSpot, client: HubSpotClient, status: int
) -> None:
    await hubspot.inject(status=status, json=error_body("internal error", "INTERNAL_ERROR"))

    with pytest.raises(TransientError) as caught:
        await client.create_contact(properties=PEOPLE)

    assert caught.value.http_status == status
    assert caught.value.reason == "server"
    assert caught.value.min_wait_seconds is None


async def test_502_html_from_proxy_is_transient(
    hubspot: SandboxHubSpot, client: HubSpotClient
) -> None:
    await hubspot.inject(status=502, content="<html><body>Bad Gateway</body></html>")

    with pytest.raises(TransientError) as caught:
        await client.create_contact(properties=PEOPLE)

    assert "Bad Gateway" in caught.value.message


async def test_503_with_retry_after(hubspot: SandboxHubSpot, client: HubSpotClient) -> None:
    await hubspot.inject(status=503, content="", headers={"Retry-After": "30"})

    with pytest.raises(TransientError) as caught:
        await client.create_contact(properties=PEOPLE)

    assert caught.value.retry_after_seconds == 30.0


async def test_client_recovers_after_a_failure(
    hubspot: SandboxHubSpot, client: HubSpotClient
) -> None:
    await hubspot.inject(status=500, json=error_body("oops", "INTERNAL_ERROR"))
    with pytest.raises(HubSpotError):
        await client.create_contact(properties=PEOPLE)

    contact = await client.create_contact(properties=PEOPLE)

    assert contact.properties["email"] == "ada@example.com"
