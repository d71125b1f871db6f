"""Shared pieces of the end-to-end scenarios: the lead mix, posting, and reading the outcome."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from leadsync.sandbox import RunningSandbox
from leadsync.store.tables import Lead, SyncStatus

EMAIL_DOMAIN = "e2e.beworking.dev"
# The sandbox refuses these emails (INVALID_EMAIL), as HubSpot refuses some real ones.
REJECT_REGEX = r"^reject\d+@"
UNFINISHED = (SyncStatus.PENDING.value, SyncStatus.RETRYING.value, SyncStatus.IN_PROGRESS.value)


@dataclass(frozen=True, slots=True)
class LeadMix:
    """The leads a scenario submits, and which of them HubSpot must accept."""

    bodies: list[dict[str, str]]
    valid_emails: frozenset[str]  # lowercased
    rejected_emails: frozenset[str]  # lowercased


def _other_casing(email: str, rng: random.Random) -> str:
    local, _, domain = email.partition("@")
    flipped = "".join(c.upper() if rng.random() < 0.5 else c for c in local)
    # Force at least one changed letter, so the repeat never equals the original text.
    flipped = flipped[0].upper() + flipped[1:]
    return f"{flipped}@{domain.upper() if rng.random() < 0.5 else domain}"


def lead_mix(
    total: int, *, seed: int, repeat_share: float = 0.05, reject_share: float = 0.02
) -> LeadMix:
    """Build `total` lead bodies: some repeat an earlier email in other casing, some are refused."""
    rng = random.Random(seed)
    repeats = round(total * repeat_share)
    rejects = round(total * reject_share)
    uniques = total - repeats - rejects
    emails = [f"lead{i}.s{seed}@{EMAIL_DOMAIN}" for i in range(uniques)]
    rejected = [f"reject{i}@{EMAIL_DOMAIN}" for i in range(rejects)]
    repeated = [_other_casing(email, rng) for email in rng.sample(emails, repeats)]
    addresses = emails + rejected + repeated
    rng.shuffle(addresses)
    bodies = [
        {
            "email": address,
            "firstname": f"First{n}",
            "lastname": f"Last{n}",
            "company": f"Company {n % 37}",
            "phone": f"+34 600 {n:06d}",
            "message": f"e2e lead number {n}",
            "source": "e2e",
        }
        for n, address in enumerate(addresses)
    ]
    return LeadMix(bodies, frozenset(emails), frozenset(rejected))


async def post_leads(
    client: httpx.AsyncClient, bodies: list[dict[str, str]], *, concurrency: int = 16
) -> list[int]:
    """POST every lead (several at once, as a busy website would); return their ids in order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(body: dict[str, str]) -> int:
        async with gate:
            response = await client.post("/leads", json=body)
        assert response.status_code == 201, response.text
        lead_id: int = response.json()["id"]
        return lead_id

    return list(await asyncio.gather(*(one(body) for body in bodies)))


async def all_leads(sessions: async_sessionmaker[AsyncSession]) -> list[Lead]:
    """Return every lead row, in id order."""
    async with sessions() as session:
        return list((await session.execute(select(Lead).order_by(Lead.id))).scalars())


async def status_counts(sessions: async_sessionmaker[AsyncSession]) -> Counter[str]:
    """Return how many leads are in each sync status."""
    async with sessions() as session:
        rows = await session.execute(
            select(Lead.hubspot_sync_status, func.count()).group_by(Lead.hubspot_sync_status)
        )
        return Counter({str(status): int(n) for status, n in rows.all()})


Sessions = async_sessionmaker[AsyncSession]


def settled(total: int) -> Callable[[Sessions], Awaitable[Counter[str] | None]]:
    """Return a check for wait_for: `total` leads stored, none unfinished (returns the counts)."""

    async def check(sessions: Sessions) -> Counter[str] | None:
        counts = await status_counts(sessions)
        done = sum(counts.values()) == total and not any(counts[s] for s in UNFINISHED)
        return counts if done else None

    return check


async def sandbox_contacts(sandbox: RunningSandbox) -> list[dict[str, Any]]:
    """Return every contact the sandbox holds, through its control API."""
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=10) as http:
        response = await http.get("/_sandbox/contacts")
    response.raise_for_status()
    contacts: list[dict[str, Any]] = response.json()["results"]
    return contacts


async def sandbox_stats(sandbox: RunningSandbox) -> dict[str, Any]:
    """Return the sandbox's request counters, through its control API."""
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=10) as http:
        response = await http.get("/_sandbox/stats")
    response.raise_for_status()
    stats: dict[str, Any] = response.json()
    return stats


async def patch_sandbox(sandbox: RunningSandbox, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Change the sandbox's configuration at run time, through its control API."""
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=10) as http:
        response = await http.patch("/_sandbox/config", json=dict(changes))
    response.raise_for_status()
    config: dict[str, Any] = response.json()
    return config


def contacts_by_email(contacts: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Group sandbox contact ids by lowercased email (more than one id means a duplicate)."""
    found: dict[str, list[str]] = {}
    for contact in contacts:
        email = contact["properties"].get("email", "").lower()
        found.setdefault(email, []).append(contact["id"])
    return found


async def assert_synced_exactly_once(
    sessions: async_sessionmaker[AsyncSession],
    sandbox: RunningSandbox,
    *,
    valid_emails: frozenset[str],
    rejected_emails: frozenset[str] = frozenset(),
) -> list[Lead]:
    """Check the end state every scenario shares; return the leads for further checks.

    Every valid lead is SYNCED with the id of the one sandbox contact of its email, the
    sandbox holds exactly one contact per valid email, refused leads are FAILED with an
    error, and nothing is left IN_PROGRESS or due.
    """
    leads = await all_leads(sessions)
    by_email = contacts_by_email(await sandbox_contacts(sandbox))
    duplicates = {email: ids for email, ids in by_email.items() if len(ids) > 1}
    assert not duplicates, f"duplicate contacts in the sandbox: {duplicates}"
    assert set(by_email) == set(valid_emails), (
        f"contacts missing: {sorted(set(valid_emails) - set(by_email))[:5]}, "
        f"unexpected: {sorted(set(by_email) - set(valid_emails))[:5]}"
    )
    problems: list[str] = []
    for lead in leads:
        shown = f"lead {lead.id} <{lead.email}> {lead.hubspot_sync_status}"
        if lead.email in rejected_emails:
            if lead.hubspot_sync_status != SyncStatus.FAILED or not lead.hubspot_error:
                problems.append(f"{shown}: a refused lead must be FAILED with its error")
            continue
        assert lead.email in valid_emails, f"{shown}: an email the scenario never sent"
        expected = by_email[lead.email][0]
        if lead.hubspot_sync_status != SyncStatus.SYNCED:
            problems.append(f"{shown}: not SYNCED (error {lead.hubspot_error!r})")
        elif lead.hubspot_id != expected:
            problems.append(f"{shown}: hubspot_id {lead.hubspot_id} but the contact is {expected}")
        elif lead.hubspot_error is not None or lead.hubspot_synced_at is None:
            problems.append(f"{shown}: a synced lead keeps no error and has its synced_at")
        if lead.hubspot_lease_token is not None:
            problems.append(f"{shown}: still holds a lease")
    assert not problems, f"{len(problems)} lead(s) wrong, first ones:\n" + "\n".join(problems[:10])
    return leads


# --- worker processes ---------------------------------------------------------------------


def leadsync_executable() -> str:
    """Return the `leadsync` console script of this virtualenv."""
    beside = Path(sys.executable).parent / "leadsync"
    if beside.exists():
        return str(beside)
    found = shutil.which("leadsync")
    assert found is not None, "the leadsync console script is not installed"
    return found


@dataclass
class WorkerProcess:
    """One `leadsync worker` process and the file its JSON log goes to."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    _log_file: Any = field(repr=False, default=None)

    def log_text(self) -> str:
        """Return everything the worker has logged so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def logged(self, event: str) -> int:
        """Return how many log lines carry this event name."""
        needle = f'"event": "{event}"'
        return sum(needle in line for line in self.log_text().splitlines())

    def signal(self, sig: int) -> None:
        """Send a signal to the process if it is still running."""
        if self.process.poll() is None:
            self.process.send_signal(sig)

    def reap(self, *, timeout: float = 15.0) -> None:
        """Wait for the process to exit (SIGKILL after `timeout`) and close its log."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def kill(self) -> None:
        """SIGKILL the process, as a crash or an OOM killer would, and reap it."""
        self.signal(signal.SIGKILL)
        self.reap()


def spawn_worker(*, name: str, env: Mapping[str, str], log_dir: Path) -> WorkerProcess:
    """Start `leadsync worker` with exactly the given leadsync settings in its environment."""
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_URL", "HUBSPOT_", "LEADSYNC_"))
    }
    log_path = log_dir / f"{name}.log"
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [leadsync_executable(), "worker"],
        env={**base, "LEADSYNC_LOG_FORMAT": "json", **env},
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    return WorkerProcess(name, process, log_path, log_file)


def worker_env(*, database_url: str, sandbox: RunningSandbox, **settings: object) -> dict[str, str]:
    """Return a worker's environment: the database, the sandbox, and LEADSYNC_* knobs."""
    env = {
        "DATABASE_URL": database_url,
        "HUBSPOT_BASE_URL": sandbox.url,
        "HUBSPOT_TOKEN": sandbox.token,
        "LEADSYNC_LOG_LEVEL": "INFO",
    }
    for name, value in settings.items():
        key = name.upper()
        env[key if key.startswith("HUBSPOT_") else f"LEADSYNC_{key}"] = str(value)
    return env


class UpsertRecorder:
    """Counts what the sandbox's store applies, per email, with the time of each write.

    Installed on the running sandbox's store (it runs in a thread of this process), so it
    sees exactly the writes that landed, whatever the HTTP layer answered.
    """

    def __init__(self, sandbox: RunningSandbox) -> None:
        self.writes: list[tuple[float, str]] = []
        store = sandbox.state.store
        upsert = store.upsert_by_email
        create = store.create

        inside_upsert = False

        def recording_upsert(email: str, properties: dict[str, str], *, now: float) -> Any:
            nonlocal inside_upsert
            self.writes.append((time.monotonic(), email.lower()))
            inside_upsert = True  # an upsert of a new email creates: count it once
            try:
                return upsert(email, properties, now=now)
            finally:
                inside_upsert = False

        def recording_create(properties: dict[str, str], *, now: float) -> Any:
            if not inside_upsert:
                self.writes.append((time.monotonic(), properties.get("email", "").lower()))
            return create(properties, now=now)

        store.upsert_by_email = recording_upsert  # type: ignore[method-assign]
        store.create = recording_create  # type: ignore[method-assign]

    def per_email(self) -> Counter[str]:
        """Return how many writes each email received."""
        return Counter(email for _at, email in self.writes)
