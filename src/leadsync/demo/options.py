"""What the demo runs with: its pace, the sandbox's misbehaviour and leadsync's settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from leadsync.config import RateLimit, Settings
from leadsync.demo.command import DEFAULT_LEADS
from leadsync.demo.kit import REJECT_REGEX, LeadMix, lead_mix
from leadsync.sandbox import RunningSandbox, SandboxConfig

SUBMIT_RATE = 40.0  # leads per second at most: a busy website, slow enough to watch
# Few forms in flight at once: SQLite has one writer, and a crowd of them only queues.
SUBMIT_CONCURRENCY = 4
# The mix: ~6% repeat an earlier email in another casing, ~2% are refused; at least 2 of
# each, so that even a short run shows both.
REPEAT_SHARE, REJECT_SHARE, AT_LEAST = 0.06, 0.02, 2
POLL_SECONDS = 0.25
SETTLE_TIMEOUT = 45.0
RESYNC_TIMEOUT = 20.0
# The account allows 20 requests/s; leadsync is told 24/s on purpose: the rate-limit headers
# of HubSpot's answers correct the budget, and a burst from another integration forces 429s.
SANDBOX_LIMIT = "20/1s"
DEMO_BUDGET = "24/1s"
FAULT_5XX, FAULT_DROP, FAULT_TIMEOUT = 0.06, 0.03, 0.01
CHAOS_MAX_SECONDS = 15.0  # a forced 429 or drop waits at most this long for leadsync to call


class DemoError(Exception):
    """The demo could not run (as opposed to running and finding a lost or duplicated lead)."""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """The command's options."""

    leads: int = DEFAULT_LEADS
    seed: int | None = None
    keep_running: bool = False
    port: int = 0


class DemoSettings(Settings):
    """Settings that read nothing from the environment: the demo runs on embedded values."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def demo_leads(count: int, *, seed: int) -> LeadMix:
    """Return the leads the demo submits."""
    return lead_mix(
        count, seed=seed, repeat_share=REPEAT_SHARE, reject_share=REJECT_SHARE, at_least=AT_LEAST
    )


def sandbox_config(*, seed: int) -> SandboxConfig:
    """Return the sandbox's misbehaviour for the demo."""
    return SandboxConfig(
        rate_limit=RateLimit.parse(SANDBOX_LIMIT),
        latency_ms=25,
        fault_5xx=FAULT_5XX,
        fault_drop=FAULT_DROP,
        fault_timeout=FAULT_TIMEOUT,
        hang_seconds=5,
        reject_emails=REJECT_REGEX,
        seed=seed,
    )


def demo_settings(
    *, workdir: Path, sandbox: RunningSandbox, internal_token: str, erasure_key: str
) -> Settings:
    """Return leadsync's settings: production defaults, with short timeouts and backoff."""
    return DemoSettings(
        database_url=f"sqlite:///{workdir / 'leadsync-demo.db'}",
        hubspot_token=SecretStr(sandbox.token),
        hubspot_base_url=sandbox.url,
        hubspot_rate_limit=DEMO_BUDGET,
        hubspot_connect_timeout_seconds=1.0,
        hubspot_read_timeout_seconds=2.0,
        hubspot_total_timeout_seconds=4.0,
        internal_token=SecretStr(internal_token),
        erasure_key=SecretStr(erasure_key),
        # Past the 4 s a write may last: a second delete then catches a write that landed late.
        erasure_confirm_seconds=5.0,
        log_level="WARNING",
        poll_interval_seconds=0.2,
        lease_seconds=10.0,
        retry_base_seconds=0.2,
        retry_cap_seconds=2.0,
        max_attempts=8,
        reconcile_interval_seconds=5.0,
    )
