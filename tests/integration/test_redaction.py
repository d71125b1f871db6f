"""No token ever reaches a log line, a metric, a stored error or an operator's API answer.

The HubSpot sandbox, through injected answers, echoes the Authorization header, the token, the
internal token and an unknown bearer credential in every error it returns: 500 and 502
bodies, a 400, a 207 per-input error, a 409 then a failing PATCH (single mode), a 429, and
401s until the token is rotated through HUBSPOT_TOKEN_FILE. The real app with its worker
syncs leads through all of it, one lead at a time so that each fault hits its own lead; then
every log line (JSON and console), every metric sample, every stored row and every internal
API answer is searched for the secrets.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from leadsync.config import Settings
from leadsync.engine import gate as gate_module
from leadsync.hubspot.models import UpsertInput
from leadsync.logging import REDACTED, configure_logging
from leadsync.runtime import start_in_app
from tests.helpers import ClientFactory, wait_for
from tests.helpers.hubspot import SandboxHubSpot


def _secret(kind: str) -> str:
    return f"pat-na1-REDACTME-{kind}-{secrets.token_hex(12)}"


OLD_TOKEN = _secret("old")  # in HUBSPOT_TOKEN_FILE first, revoked mid-test
NEW_TOKEN = _secret("new")  # rotated in through the file
STALE_TOKEN = _secret("stale")  # known to nobody: only "anything after Bearer" can catch it
INTERNAL_TOKEN = f"internal-REDACTME-{secrets.token_hex(12)}"
SECRETS = (OLD_TOKEN, NEW_TOKEN, STALE_TOKEN, INTERNAL_TOKEN)
MAX_ATTEMPTS = 2
# The requests a lead's write makes, by write mode (docs/sandbox.md's endpoint names).
WRITES = {"batch": ["batch_upsert"], "single": ["create"]}


def find_secrets(where: str, blob: str) -> list[str]:
    """Return a line per secret (or recognisable piece of one) found in blob."""
    found = []
    for secret in SECRETS:
        if secret in blob:
            found.append(f"{where}: contains {secret[:22]}...")
        elif secret.split("-")[-1] in blob:  # the random part alone
            found.append(f"{where}: contains the random part of {secret[:22]}...")
    return found


def echo(token: str) -> str:
    """What a careless HubSpot edge says back: the caller's credentials, and more."""
    return (
        f"Received Authorization: Bearer {token} (token {token}); "
        f"proxy env LEADSYNC_INTERNAL_TOKEN={INTERNAL_TOKEN}; "
        f"cached Authorization: Bearer {STALE_TOKEN}"
    )


def echoing_error(
    token: str, status: int, message: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    """An injected HubSpot error whose body and headers carry `token` and the other secrets."""
    body = {"status": "error", "message": f"{message} {echo(token)}", "correlationId": token}
    return {
        "status": status,
        "json": body | extra,
        "headers": {"X-HubSpot-Correlation-Id": token, **(headers or {})},
    }


async def program_faults(hubspot: SandboxHubSpot, email: str, mode: str, token: str) -> None:
    """Queue what HubSpot answers to the lead of `email` (the scenario is its local part)."""
    writes = WRITES[mode]
    scenario = email.split("@")[0].rstrip("0123456789")
    if scenario == "transient":  # every attempt: 500
        fault = echoing_error(token, 500, "Internal error.", category="INTERNAL_ERROR")
        await hubspot.inject(**fault, endpoints=writes, times=MAX_ATTEMPTS)
    elif scenario == "proxy":  # every attempt: a proxy's HTML page
        page = f"<html>Bad gateway. {echo(token)}</html>"
        html = {"Content-Type": "text/html"}
        await hubspot.inject(
            status=502, content=page, headers=html, endpoints=writes, times=MAX_ATTEMPTS
        )
    elif scenario == "invalid":  # a 400 whose inner errors and context echo too
        fault = echoing_error(
            token,
            400,
            "Property values were not valid.",
            category="VALIDATION_ERROR",
            errors=[{"message": echo(token), "code": "INVALID_EMAIL"}],
            context={"ids": [echo(token)]},
        )
        await hubspot.inject(**fault, endpoints=writes)
    elif scenario == "partial" and mode == "batch":  # a 207 per-input error
        message = f"Invalid input. {echo(token)}"
        await hubspot.fail_input(email, status="400", category="VALIDATION_ERROR", message=message)
    elif scenario == "partial":  # single mode: a 409 naming the contact, then a failing PATCH
        conflict = echoing_error(
            token, 409, "Contact already exists. Existing ID: 5150.", category="CONFLICT"
        )
        patch = echoing_error(token, 500, "Internal error while updating.")
        for _ in range(MAX_ATTEMPTS):
            await hubspot.inject(**conflict, endpoints=["create"])
            await hubspot.inject(**patch, endpoints=["update"])
    elif scenario == "ratelimit":  # one 429, then the write goes through
        fault = echoing_error(
            token,
            429,
            "You have reached your ten_secondly_rolling limit.",
            headers={"Retry-After": "0.2"},
            errorType="RATE_LIMIT",
            policyName="TEN_SECONDLY_ROLLING",
        )
        await hubspot.inject(**fault, endpoints=writes)


def write_token(path: Path, token: str) -> None:
    """Replace the token file atomically, as the runbook says to."""
    tmp = path.with_suffix(".new")
    tmp.write_text(token + "\n", encoding="utf-8")
    os.replace(tmp, path)


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("mode", ["batch", "single"])
@pytest.mark.parametrize("log_format", ["json", "console"])
async def test_no_secret_reaches_logs_metrics_database_or_api(
    mode: str,
    log_format: str,
    tmp_path: Path,
    engine: AsyncEngine,
    settings_factory: Callable[..., Settings],
    client_factory: ClientFactory,
    hubspot: SandboxHubSpot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token_file = tmp_path / "hubspot-token"
    write_token(token_file, OLD_TOKEN)
    await hubspot.configure(tokens=[OLD_TOKEN])
    settings = settings_factory(
        hubspot_token=None,
        hubspot_token_file=token_file,
        internal_token=INTERNAL_TOKEN,
        hubspot_base_url=hubspot.url,
        hubspot_write_mode=mode,
        batch_size=1,
        # Slow polling: retries still come round quickly, and SQLite's one writer is not
        # kept busy by an idle loop while the test's requests wait for it.
        poll_interval_seconds=0.2,
        reconcile_interval_seconds=5.0,
        max_attempts=MAX_ATTEMPTS,
        retry_base_seconds=0.01,
        retry_cap_seconds=0.05,
    )
    # Probe a revoked token after 50 ms, not 5 s.
    monkeypatch.setattr(gate_module, "AUTH_PROBE_FIRST_SECONDS", 0.05)
    stream = io.StringIO()
    configure_logging(log_format=log_format, level="DEBUG", secrets=settings.secrets, stream=stream)
    for name in ("httpx", "httpcore"):  # their request logs go through the pipeline too
        logging.getLogger(name).setLevel(logging.DEBUG)
    internal = {"Authorization": f"Bearer {INTERNAL_TOKEN}"}
    answers: list[str] = []

    async def submit(client: httpx.AsyncClient, email: str) -> int:
        created = await client.post("/leads", json={"email": email, "firstname": "Ana"})
        assert created.status_code == 201, created.text
        lead_id: int = created.json()["id"]
        return lead_id

    async def reach(client: httpx.AsyncClient, lead_id: int, status: str) -> dict[str, Any]:
        async def reached() -> dict[str, Any] | None:
            answer = await client.get(f"/internal/leads/{lead_id}", headers=internal)
            answers.append(answer.text)
            lead: dict[str, Any] = answer.json()
            return lead if lead["hubspot_sync_status"] == status else None

        return await wait_for(reached, timeout=30, interval=0.1, message=f"{lead_id} {status}")

    async def settle(client: httpx.AsyncClient, email: str, status: str, token: str) -> Any:
        # One lead at a time: the injections queued for it are the ones its writes take.
        await program_faults(hubspot, email, mode, token)
        return await reach(client, await submit(client, email), status)

    async with client_factory(settings, background=start_in_app) as (_app, client):
        expected = {
            "transient@example.com": "FAILED",
            "proxy@example.com": "FAILED",
            "invalid@example.com": "FAILED",
            "partial@example.com": "FAILED",
            "ratelimit@example.com": "SYNCED",
            "ok@example.com": "SYNCED",
        }
        settled = [await settle(client, e, s, OLD_TOKEN) for e, s in expected.items()]
        failed = [lead for lead in settled if lead["hubspot_sync_status"] == "FAILED"]

        # The token is revoked: 401, every worker pauses, the probe fails...
        await hubspot.configure(tokens=[NEW_TOKEN])
        denied = echoing_error(
            OLD_TOKEN,
            401,
            "Authentication credentials not found.",
            category="INVALID_AUTHENTICATION",
            headers={"X-HubSpot-Auth-Failure": f"401 Unauthorized {OLD_TOKEN}"},
        )
        await hubspot.inject(**denied, endpoints=WRITES[mode])
        await hubspot.inject(**denied, endpoints=["list"])  # the credential probe
        auth_id = await submit(client, "auth@example.com")

        async def probe_rejected() -> bool:
            logged = await hubspot.requests()
            return any(r["endpoint"] == "list" and r["status"] == 401 for r in logged)

        await wait_for(probe_rejected, timeout=30)
        paused = await client.get("/internal/sync/status", headers=internal)
        answers.append(paused.text)
        assert paused.json()["gate"]["reason"] == "auth"
        # ...until the new token lands in HUBSPOT_TOKEN_FILE: no restart.
        write_token(token_file, NEW_TOKEN)
        await wait_for(lambda: "sync.auth.resumed" in stream.getvalue(), timeout=30)
        await reach(client, auth_id, "SYNCED")
        failed.append(await settle(client, "transient2@example.com", "FAILED", NEW_TOKEN))

        for path in ("/internal/leads?status=FAILED", "/internal/sync/status", "/metrics"):
            answer = await client.get(path, headers=internal)
            assert answer.status_code == 200
            answers.append(answer.text)

    async with engine.connect() as conn:
        rows = {
            table: [dict(r._mapping) for r in (await conn.execute(text(f"SELECT * FROM {table}")))]
            for table in ("leads", "hubspot_gate")
        }
    logs = stream.getvalue()

    # The faults really happened and really echoed the secrets.
    stats = await hubspot.stats()
    assert stats["injected"] >= 9, stats
    assert stats["injections_pending"] == stats["input_errors_pending"] == 0, stats
    for event in ("sync.lead.retry", "sync.lead.failed", "sync.lead.rate_limited"):
        assert event in logs, event
    for event in ("sync.lead.auth_paused", "sync.auth.probe_failed", "sync.auth.resumed"):
        assert event in logs, event
    assert REDACTED in logs
    errors = [lead["hubspot_error"] for lead in failed]
    assert all(REDACTED in (error or "") for error in errors), errors
    assert len(rows["leads"]) == 8

    problems = find_secrets("logs", logs)
    problems += find_secrets("metrics", generate_latest().decode())
    problems += [p for table, found in rows.items() for p in find_secrets(table, repr(found))]
    problems += [p for answer in answers for p in find_secrets("internal API", answer)]
    assert not problems, "\n".join(problems)

    # Whatever followed "Bearer " in a log line (known token or not) is gone.
    bearers = re.findall(r"(?i)\bbearer\s+(\S+)", logs)
    assert bearers, "the echoes should have put bearer credentials in the logs"
    assert all(b.startswith(REDACTED) for b in bearers), set(bearers)
    if log_format == "json":
        for line in logs.splitlines():
            record = json.loads(line)
            assert isinstance(record, dict)
            assert not find_secrets("decoded JSON", json.dumps(record, ensure_ascii=False))


async def test_a_207_error_category_cannot_carry_the_token_into_the_stored_error(
    hubspot: SandboxHubSpot,
) -> None:
    # sync.service stores `category: message` as the lead's hubspot_error.
    token = _secret("category")
    body = {
        "status": "COMPLETE",
        "results": [],
        "errors": [
            {
                "status": "error",
                "category": f"Authorization: {token}",
                "message": "Invalid input",
                "context": {"objectWriteTraceId": ["1"]},
            }
        ],
    }
    await hubspot.inject(status=207, json=body)
    async with hubspot.client(token_provider=lambda: token) as client:
        reply = await client.batch_upsert(inputs=[UpsertInput("a@example.com", {}, "1")])

    (error,) = reply.errors
    assert token not in f"{error.category}: {error.message}"
