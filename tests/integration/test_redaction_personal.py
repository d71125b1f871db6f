"""No lead's personal data reaches a log line at INFO or above, through the whole sync and
erasure flow (issue #13).

HubSpot quotes the values it refuses: the sandbox, through injected answers, echoes each
lead's email, names, phone and message in a 400, a 500, a 207 per-input error and a 503 of
the GDPR delete. The real app with its worker syncs the leads through all of it and then
erases one address; every log line (JSON and console) is searched for every value.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from leadsync.config import Settings
from leadsync.logging import configure_logging
from leadsync.runtime import start_in_app
from tests.helpers import ClientFactory, wait_for
from tests.helpers.hubspot import SandboxHubSpot

INTERNAL = "internal-token-for-the-personal-data-test"
KEY = "erasure-key-for-the-personal-data-test"
PEOPLE = {
    "failed": {
        "email": "zoe.failed@example.com",
        "firstname": "Zoëfailed",
        "lastname": "Quintanilla",
        "phone": "+34 611 222 333",
        "message": "Call me after the siesta about desks",
    },
    "retried": {
        "email": "yann.retried@example.com",
        "firstname": "Yannick",
        "lastname": "Oberholzer",
        "phone": "+33 6 12 34 56 78",
        "message": "Twelve desks from March please",
    },
    "partial": {
        "email": "xena.partial@example.com",
        "firstname": "Xenophona",
        "lastname": "Vasquezova",
        "phone": "+49 151 2345 6789",
        "message": "Meeting room on Fridays only",
    },
}


def echo(person: dict[str, str]) -> str:
    """What HubSpot says back about a refused contact: every value of it."""
    return (
        f"Property values were not valid: email {person['email']}, "
        f"name {person['firstname']} {person['lastname']}, phone {person['phone']}, "
        f"note '{person['message']}'"
    )


def error(status: int, person: dict[str, str], category: str) -> dict[str, Any]:
    body = {
        "status": "error",
        "message": echo(person),
        "correlationId": "aeb5f871-7f07-4993-9211-075dc63e7cbf",
        "category": category,
    }
    return {"status": status, "json": body}


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("log_format", ["json", "console"])
async def test_no_personal_data_reaches_a_log_line(
    log_format: str,
    settings_factory: Callable[..., Settings],
    client_factory: ClientFactory,
    hubspot: SandboxHubSpot,
) -> None:
    settings = settings_factory(
        internal_token=INTERNAL,
        erasure_key=KEY,
        hubspot_base_url=hubspot.url,
        hubspot_token=hubspot.token,
        batch_size=1,
        max_attempts=2,
        poll_interval_seconds=0.2,
    )
    stream = io.StringIO()
    configure_logging(log_format=log_format, level="INFO", secrets=settings.secrets, stream=stream)
    auth = {"Authorization": f"Bearer {INTERNAL}"}

    async def submit(client: httpx.AsyncClient, person: dict[str, str]) -> int:
        created = await client.post("/leads", json=person)
        assert created.status_code == 201, created.text
        lead_id: int = created.json()["id"]
        return lead_id

    async def reach(client: httpx.AsyncClient, lead_id: int, status: str) -> None:
        async def reached() -> bool:
            answer = await client.get(f"/internal/leads/{lead_id}", headers=auth)
            return bool(answer.json()["hubspot_sync_status"] == status)

        await wait_for(reached, timeout=30, interval=0.1, message=f"lead {lead_id} {status}")

    async with client_factory(settings, background=start_in_app) as (_app, client):
        failed, retried, partial = PEOPLE["failed"], PEOPLE["retried"], PEOPLE["partial"]
        await hubspot.inject(**error(400, failed, "VALIDATION_ERROR"), endpoints=["batch_upsert"])
        await reach(client, await submit(client, failed), "FAILED")
        await hubspot.inject(**error(500, retried, "INTERNAL_ERROR"), endpoints=["batch_upsert"])
        await reach(client, await submit(client, retried), "SYNCED")
        await hubspot.fail_input(
            partial["email"], status="400", category="VALIDATION_ERROR", message=echo(partial)
        )
        await reach(client, await submit(client, partial), "FAILED")

        await hubspot.inject(**error(503, retried, "INTERNAL_ERROR"), endpoints=["gdpr_delete"])
        erased = await client.post(
            "/internal/erasures", json={"email": retried["email"]}, headers=auth
        )
        assert erased.status_code == 202, erased.text
        location = erased.headers["Location"]

        async def completed() -> bool:
            answer = await client.get(location, headers=auth)
            return bool(answer.json()["status"] == "COMPLETED")

        await wait_for(completed, timeout=30, interval=0.1)

    logs = stream.getvalue()
    # The faults happened and were logged (with their texts, masked).
    for event in (
        "sync.lead.failed",
        "sync.lead.retry",
        "privacy.erasure.retry",
        "privacy.erasure.completed",
    ):
        assert event in logs, event
    leaks = [
        f"{name}: {field}"
        for name, person in PEOPLE.items()
        for field, value in person.items()
        if value in logs
    ]
    assert not leaks, leaks
