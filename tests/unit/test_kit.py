"""The scenario kit's own rules (`leadsync.demo.kit`): the mix, every audit check, the fleet.

The scenarios (test_demo, test_sync_*, bench/chaos.py) rely on these: an audit that cannot
see a duplicate, or a mix without repeats, would let them pass for the wrong reason.
"""

from __future__ import annotations

import datetime as dt
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from leadsync.demo.kit import (
    CHECKS,
    REJECT_REGEX,
    REJECTED_DOMAIN,
    Fleet,
    LeadDetail,
    audit,
    lead_mix,
    leadsync_env,
    settled,
    unfinished,
)
from leadsync.demo.report import DemoReport, judge
from leadsync.store.tables import LEAD_FIELDS
from tests.helpers import wait_for

CREATED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _lead(
    lead_id: int,
    email: str,
    hubspot_id: str | None,
    status: str = "SYNCED",
    *,
    error: str | None = None,
    leased: bool = False,
    **fields: str,
) -> LeadDetail:
    synced = CREATED + dt.timedelta(seconds=lead_id) if status == "SYNCED" else None
    return LeadDetail.model_validate(
        dict.fromkeys(LEAD_FIELDS)
        | fields
        | {
            "id": lead_id,
            "email": email,
            "created_at": CREATED,
            "updated_at": CREATED,
            "hubspot_sync_status": status,
            "hubspot_id": hubspot_id,
            "hubspot_synced_at": synced,
            "hubspot_error": error,
            "hubspot_sync_attempts": 1,
            "last_hubspot_attempt_at": synced,
            "hubspot_next_attempt_at": None,
            "hubspot_lease_expires_at": CREATED if leased else None,
            "hubspot_last_http_status": None,
        }
    )


def _contact(contact_id: str, email: str, **properties: str) -> dict[str, Any]:
    return {"id": contact_id, "properties": {"email": email, **properties}}


def test_a_clean_end_state_passes_every_check() -> None:
    leads = [
        _lead(1, "ana@beworking.example", "1", firstname="Ana", company="Alba SL"),
        _lead(2, "ana@beworking.example", "1", firstname="Anita"),  # a repeat: newest name
        _lead(3, "x@rejected.example", None, "FAILED", error="400 INVALID_EMAIL"),
    ]
    contacts = [_contact("1", "ana@beworking.example", firstname="Anita", company="Alba SL")]

    found = audit(
        leads,
        contacts,
        emails={"ana@beworking.example", "X@rejected.example"},
        rejected={"x@rejected.example"},
        accepted_ids={1, 2, 3},
    )

    assert found.ok, found.problems
    assert found.violations() == dict.fromkeys(CHECKS, 0)
    assert found.counts == {
        "PENDING": 0,
        "IN_PROGRESS": 0,
        "RETRYING": 0,
        "SYNCED": 2,
        "FAILED": 1,
        "ERASED": 0,
    }
    assert (found.stored, found.distinct_emails, found.contacts) == (3, 2, 1)
    assert found.median_latency == 1.5


def test_audit_finds_duplicates_lost_and_mismatched_leads() -> None:
    leads = [
        _lead(1, "ana@beworking.example", "1"),
        _lead(2, "ana@beworking.example", "9"),  # points at another contact of its email
        _lead(3, "luis@beworking.example", "2"),  # synced, yet no contact: lost
        _lead(4, "eva@beworking.example", None, status="FAILED"),
        _lead(5, "pepe@beworking.example", "1"),  # ana's contact, not pepe's
    ]
    contacts = [
        _contact("1", "ana@beworking.example"),
        _contact("9", "ANA@beworking.example"),  # the same email in another casing
        _contact("5", "nadie@beworking.example"),  # no lead has this email
        _contact("7", "pepe@beworking.example"),
    ]

    found = audit(leads, contacts)

    assert found.duplicate_contacts == 1
    # Lead 2's "9" is one of ana's two contacts: counted as the duplicate, not as a mismatch.
    assert found.mismatched_ids == 1
    assert found.missing_contacts == 1
    assert found.stray_contacts == 1
    assert found.duplicates == 2
    violations = found.violations()
    assert violations["not_synced"] == 1  # eva
    assert violations["uncovered_emails"] == 2  # eva, luis
    report = DemoReport(seed=1, submitted=5, accepted_ids={1, 2, 3, 4, 5}, final=found)
    problems = judge(report)
    assert any("not SYNCED" in p for p in problems)
    assert any("duplicate contact" in p for p in problems)
    assert any("without a contact" in p for p in problems)
    assert any("is not their email's contact" in p for p in problems)
    assert any("lead 4 <eva@beworking.example> FAILED" in p for p in problems)  # names them
    assert judge(DemoReport(seed=1)) == ["the demo did not finish"]


def test_audit_finds_lost_unknown_refused_leased_and_stale() -> None:
    leads = [
        _lead(1, "ana@beworking.example", "1", firstname="Ana"),
        _lead(2, "ana@beworking.example", "1", firstname="Anita", phone="+34 600"),
        _lead(3, "x@rejected.example", None, "SYNCED"),  # HubSpot refuses it: must FAIL
        _lead(4, "eva@beworking.example", None, "IN_PROGRESS", leased=True),
        _lead(5, "luis@beworking.example", "5", error="left over"),  # SYNCED with an error
    ]
    contacts = [
        _contact("1", "ana@beworking.example", firstname="Ana", phone="+34 600"),  # old name
        _contact("3", "x@rejected.example"),  # a contact for a refused email
        _contact("5", "luis@beworking.example"),
    ]

    found = audit(
        leads,
        contacts,
        emails={"ana@beworking.example", "x@rejected.example", "eva@beworking.example"},
        rejected={"x@rejected.example"},
        accepted_ids={1, 2, 3, 4, 5, 6},
    )

    assert {name: count for name, count in found.violations().items() if count} == {
        "lost_leads": 1,  # 6
        "unknown_leads": 1,  # luis was never sent
        "not_synced": 1,  # eva
        "rejected_not_failed": 1,
        "leased": 1,
        "incomplete_synced": 1,
        "stray_contacts": 1,  # the refused email's
        "uncovered_emails": 1,  # eva
        "stale_contacts": 1,  # ana's contact still holds the older firstname
    }
    assert any("contact 1 <ana@beworking.example>: firstname" in p for p in found.problems)


def test_settled_means_leads_and_none_unfinished() -> None:
    assert not settled({})
    assert not settled({"SYNCED": 3, "RETRYING": 1})
    assert settled({"SYNCED": 3, "FAILED": 1, "PENDING": 0})
    assert not settled({"SYNCED": 3}, total=4)
    assert unfinished({"PENDING": 1, "IN_PROGRESS": 2, "RETRYING": 3, "SYNCED": 9}) == 6


def test_lead_mix_repeats_in_other_casing_and_refuses_a_share() -> None:
    mix = lead_mix(400, seed=3)

    assert mix == lead_mix(400, seed=3)
    assert len(mix.bodies) == 400
    assert mix.repeats == 20  # 5%
    assert len(mix.rejected_emails) == 8  # 2%
    assert all(email.endswith("@" + REJECTED_DOMAIN) for email in mix.rejected_emails)
    assert mix.valid_emails == mix.distinct_emails - mix.rejected_emails
    assert len(mix.distinct_emails) == 400 - mix.repeats
    spellings: dict[str, list[str]] = {}
    for body in mix.bodies:
        spellings.setdefault(body["email"].lower(), []).append(body["email"])
    repeated = [texts for texts in spellings.values() if len(texts) > 1]
    assert repeated
    assert all(len(set(texts)) > 1 for texts in repeated)  # typed in another casing
    unique = lead_mix(50, seed=3, repeat_share=0, reject_share=0)
    assert (unique.repeats, unique.rejected_emails, len(unique.distinct_emails)) == (0, set(), 50)
    assert REJECT_REGEX.endswith(r"rejected\.example$")
    with pytest.raises(ValueError, match="need at least"):
        lead_mix(4, seed=1, at_least=2)


def test_leadsync_env_names_the_variables_and_refuses_unknown_settings() -> None:
    env = leadsync_env(database_url="sqlite:///x.db", hubspot_rate_limit="100/10s", batch_size=2)

    assert env == {
        "DATABASE_URL": "sqlite:///x.db",
        "HUBSPOT_RATE_LIMIT": "100/10s",
        "LEADSYNC_BATCH_SIZE": "2",
    }
    with pytest.raises(ValueError, match="batch_sise"):
        leadsync_env(batch_sise=2)


async def test_fleet_restarts_a_process_under_its_name_with_a_new_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in for the console script: prints its environment's marker, then waits.
    script = tmp_path / "leadsync"
    script.write_text(
        f"#!{sys.executable}\nimport os, sys, time\n"
        "print(sys.argv[1:], os.environ.get('LEADSYNC_LOG_FORMAT'), "
        "os.environ.get('HUBSPOT_TOKEN'), flush=True)\ntime.sleep(60)\n"
    )
    script.chmod(0o755)
    monkeypatch.setattr("leadsync.demo.kit.fleet.leadsync_executable", lambda: str(script))
    monkeypatch.setenv("HUBSPOT_TOKEN", "the parent's")

    with Fleet(tmp_path) as fleet:
        first = fleet.start("worker0", {"DATABASE_URL": "sqlite:///x.db"})
        again = fleet.restart("worker0")
        fleet.start("serve", {}, "serve", "--port", "0")
        await wait_for(
            lambda: again.log_text().endswith("\n"), timeout=30, message="the new one printed"
        )

        assert first.process.returncode == -signal.SIGKILL
        assert again.running
        assert fleet.kills == 1
        assert fleet.names(prefix="worker") == ["worker0"]
        assert [path.name for path in fleet.log_paths()] == [
            "worker0.log",
            "worker0.2.log",
            "serve.log",
        ]
    assert not any(process.running for process in fleet.started)
    # Each ran with JSON logs and none of the parent's leadsync settings.
    assert again.log_text().strip() == "['worker'] json None"
