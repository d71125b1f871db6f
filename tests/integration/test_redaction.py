"""No token ever reaches a log line, a metric, a stored error or an operator's API answer.

A faulty HubSpot (respx) echoes the Authorization header, the token, the internal token and
an unknown bearer credential in every error it returns: 500 and 502 bodies, a 400, a 207
per-input error, a 409 (single mode), a 429, and 401s until the token is rotated through
HUBSPOT_TOKEN_FILE. The real app with its worker syncs leads through all of it; then every
log line (JSON and console), every metric sample, every stored row and every internal API
answer is searched for the secrets.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from prometheus_client import generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from leadsync.config import Settings
from leadsync.engine import gate as gate_module
from leadsync.hubspot.client import HubSpotClient
from leadsync.hubspot.models import UpsertInput
from leadsync.logging import REDACTED, configure_logging
from leadsync.runtime import start_in_app
from tests.helpers import ClientFactory, wait_for

BASE_URL = "https://hubspot.test"
CONTACTS = "/crm/v3/objects/contacts"


def _secret(kind: str) -> str:
    return f"pat-na1-REDACTME-{kind}-{secrets.token_hex(12)}"


OLD_TOKEN = _secret("old")  # in HUBSPOT_TOKEN_FILE first, revoked mid-test
NEW_TOKEN = _secret("new")  # rotated in through the file
STALE_TOKEN = _secret("stale")  # known to nobody: only "anything after Bearer" can catch it
INTERNAL_TOKEN = f"internal-REDACTME-{secrets.token_hex(12)}"
SECRETS = (OLD_TOKEN, NEW_TOKEN, STALE_TOKEN, INTERNAL_TOKEN)
RATE_HEADERS = {
    "X-HubSpot-RateLimit-Max": "190",
    "X-HubSpot-RateLimit-Remaining": "180",
    "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
    "X-HubSpot-RateLimit-Daily": "250000",
    "X-HubSpot-RateLimit-Daily-Remaining": "249000",
}


def find_secrets(where: str, blob: str) -> list[str]:
    """Return a line per secret (or recognisable piece of one) found in blob."""
    found = []
    for secret in SECRETS:
        if secret in blob:
            found.append(f"{where}: contains {secret[:22]}...")
        elif secret.split("-")[-1] in blob:  # the random part alone
            found.append(f"{where}: contains the random part of {secret[:22]}...")
    return found


@dataclass
class FaultyHubSpot:
    """A HubSpot that fails by email and echoes every credential it sees in its errors."""

    accepted: set[str]
    mode: str
    calls: list[str] = field(default_factory=list)
    rejected_probes: int = 0
    rate_limited: set[str] = field(default_factory=set)
    next_id: int = 9000

    def echo(self, request: httpx.Request) -> str:
        auth = request.headers.get("authorization", "")
        return (
            f"Received Authorization: {auth} (token {auth.removeprefix('Bearer ')}); "
            f"proxy env LEADSYNC_INTERNAL_TOKEN={INTERNAL_TOKEN}; "
            f"cached Authorization: Bearer {STALE_TOKEN}"
        )

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        self.calls.append(f"{method} {path}")
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.accepted:
            if method == "GET":
                self.rejected_probes += 1
            return self.error(
                request,
                401,
                "Authentication credentials not found.",
                category="INVALID_AUTHENTICATION",
                headers={"X-HubSpot-Auth-Failure": f"401 Unauthorized {token}"},
            )
        if method == "GET" and path == CONTACTS:  # the credential probe
            return httpx.Response(200, json={"results": []}, headers=RATE_HEADERS)
        if method == "PATCH":  # single mode, after a 409
            return self.error(request, 500, "Internal error while updating.")
        body = json.loads(request.content)
        if path.endswith("/batch/upsert"):
            first = body["inputs"][0]
            return self.answer(request, first["id"], trace=first.get("objectWriteTraceId"))
        return self.answer(request, body["properties"]["email"], trace=None)

    def answer(self, request: httpx.Request, email: str, *, trace: str | None) -> httpx.Response:
        scenario = email.split("@")[0].rstrip("0123456789")
        if scenario == "transient":
            return self.error(request, 500, "Internal error.", category="INTERNAL_ERROR")
        if scenario == "proxy":
            return httpx.Response(
                502,
                text=f"<html>Bad gateway. {self.echo(request)}</html>",
                headers={"Content-Type": "text/html"},
            )
        if scenario == "invalid":
            return self.error(
                request,
                400,
                "Property values were not valid.",
                category="VALIDATION_ERROR",
                errors=[{"message": self.echo(request), "code": "INVALID_EMAIL"}],
                context={"ids": [self.echo(request)]},
            )
        if scenario == "partial" and self.mode == "batch":
            return httpx.Response(
                207,
                json={
                    "status": "COMPLETE",
                    "results": [],
                    "numErrors": 1,
                    "errors": [
                        {
                            "status": "error",
                            "category": "VALIDATION_ERROR",
                            "message": f"Invalid input. {self.echo(request)}",
                            "context": {"objectWriteTraceId": [trace], "ids": [email]},
                        }
                    ],
                    "startedAt": "2024-01-01T00:00:00Z",
                    "completedAt": "2024-01-01T00:00:01Z",
                },
                headers=RATE_HEADERS,
            )
        if scenario == "partial":  # single mode: a 409 naming the contact, then a failing PATCH
            return self.error(
                request, 409, "Contact already exists. Existing ID: 5150.", category="CONFLICT"
            )
        if scenario == "ratelimit" and email not in self.rate_limited:
            self.rate_limited.add(email)
            return self.error(
                request,
                429,
                "You have reached your ten_secondly_rolling limit.",
                errorType="RATE_LIMIT",
                policyName="TEN_SECONDLY_ROLLING",
                headers={"Retry-After": "0.2"},
            )
        return self.success(email, trace=trace)

    def error(
        self,
        request: httpx.Request,
        status: int,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> httpx.Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        body = {
            "status": "error",
            "message": f"{message} {self.echo(request)}",
            "correlationId": token,
            **extra,
        }
        headers = {"X-HubSpot-Correlation-Id": token, **(headers or {})}
        return httpx.Response(status, json=body, headers=headers)

    def success(self, email: str, *, trace: str | None) -> httpx.Response:
        self.next_id += 1
        contact = {
            "id": str(self.next_id),
            "properties": {"email": email},
            "createdAt": "2024-01-01T00:00:00Z",
            "updatedAt": "2024-01-01T00:00:00Z",
            "archived": False,
        }
        if self.mode == "single":
            return httpx.Response(201, json=contact, headers=RATE_HEADERS)
        result = {**contact, "new": True, "objectWriteTraceId": trace}
        body = {
            "status": "COMPLETE",
            "results": [result],
            "startedAt": "2024-01-01T00:00:00Z",
            "completedAt": "2024-01-01T00:00:01Z",
        }
        return httpx.Response(200, json=body, headers=RATE_HEADERS)


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
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token_file = tmp_path / "hubspot-token"
    write_token(token_file, OLD_TOKEN)
    settings = settings_factory(
        hubspot_token=None,
        hubspot_token_file=token_file,
        internal_token=INTERNAL_TOKEN,
        hubspot_base_url=BASE_URL,
        hubspot_write_mode=mode,
        batch_size=1,
        # Slow polling: retries still come round quickly, and SQLite's one writer is not
        # kept busy by an idle loop while the test's requests wait for it.
        poll_interval_seconds=0.2,
        reconcile_interval_seconds=5.0,
        max_attempts=2,
        retry_base_seconds=0.01,
        retry_cap_seconds=0.05,
    )
    # Probe a revoked token after 50 ms, not 5 s.
    monkeypatch.setattr(gate_module, "AUTH_PROBE_FIRST_SECONDS", 0.05)
    stream = io.StringIO()
    configure_logging(log_format=log_format, level="DEBUG", secrets=settings.secrets, stream=stream)
    for name in ("httpx", "httpcore"):  # their request logs go through the pipeline too
        logging.getLogger(name).setLevel(logging.DEBUG)
    hubspot = FaultyHubSpot(accepted={OLD_TOKEN}, mode=mode)
    internal = {"Authorization": f"Bearer {INTERNAL_TOKEN}"}
    answers: list[str] = []

    async def settle(client: httpx.AsyncClient, expected: dict[str, str]) -> list[dict[str, Any]]:
        ids = {}
        for email in expected:
            created = await client.post("/leads", json={"email": email, "firstname": "Ana"})
            assert created.status_code == 201, created.text
            ids[email] = created.json()["id"]

        async def reached() -> list[dict[str, Any]]:
            leads = []
            for email, lead_id in ids.items():
                answer = await client.get(f"/internal/leads/{lead_id}", headers=internal)
                answers.append(answer.text)
                leads.append(answer.json())
                if leads[-1]["hubspot_sync_status"] != expected[email]:
                    return []  # not yet
            return leads

        return await wait_for(reached, timeout=30, interval=0.1, message=f"{expected}")

    with respx.mock(base_url=BASE_URL, assert_all_called=False) as router:
        router.route().mock(side_effect=hubspot)
        async with client_factory(settings, background=start_in_app) as (_app, client):
            # One lead per batch, so each fault hits one lead and they all run at once.
            settled = await settle(
                client,
                {
                    "transient@example.com": "FAILED",
                    "proxy@example.com": "FAILED",
                    "invalid@example.com": "FAILED",
                    "partial@example.com": "FAILED",
                    "ratelimit@example.com": "SYNCED",
                    "ok@example.com": "SYNCED",
                },
            )
            failed = [lead for lead in settled if lead["hubspot_sync_status"] == "FAILED"]

            # The token is revoked: 401, every worker pauses, the probe fails...
            hubspot.accepted = {NEW_TOKEN}
            await client.post("/leads", json={"email": "auth@example.com"})
            await wait_for(lambda: hubspot.rejected_probes >= 1, timeout=30)
            paused = await client.get("/internal/sync/status", headers=internal)
            answers.append(paused.text)
            assert paused.json()["gate"]["reason"] == "auth"
            # ...until the new token lands in HUBSPOT_TOKEN_FILE: no restart.
            write_token(token_file, NEW_TOKEN)
            await wait_for(lambda: "sync.auth.resumed" in stream.getvalue(), timeout=30)
            failed += await settle(client, {"transient2@example.com": "FAILED"})

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
    assert any(call.startswith("GET ") for call in hubspot.calls)
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


async def test_a_207_error_category_cannot_carry_the_token_into_the_stored_error() -> None:
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
    with respx.mock(base_url=BASE_URL) as router:
        router.post(f"{CONTACTS}/batch/upsert").respond(207, json=body)
        async with HubSpotClient(base_url=BASE_URL, token_provider=lambda: token) as client:
            reply = await client.batch_upsert(inputs=[UpsertInput("a@example.com", {}, "1")])

    (error,) = reply.errors
    assert token not in f"{error.category}: {error.message}"
