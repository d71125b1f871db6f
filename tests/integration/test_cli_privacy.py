"""`leadsync erase`, `erasures`, `erasure`, `erasure-retry` and `subject`, run as the operator
runs them (a process of its own) on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.helpers.cli import leadsync
from tests.helpers.leads import failed_row, fetch, insert_leads, lead_row

Sessions = async_sessionmaker[AsyncSession]
KEY = {"LEADSYNC_ERASURE_KEY": "cli-test-erasure-key-0123"}


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


async def test_erase_cancels_the_leads_and_says_what_it_did(
    db_url: str, sessions: Sessions
) -> None:
    ids = await insert_leads(
        sessions,
        [
            lead_row(0, email="ana@example.com"),
            failed_row(1, email="ana@example.com"),
            lead_row(2, email="bob@example.com"),
        ],
    )

    code, out, err = await leadsync(db_url, "erase", "Ana@Example.COM", "--yes", env=KEY)
    assert code == 0, err
    erasure_id = int(out.split()[1])
    assert out.strip() == (
        f"erasure {erasure_id} REQUESTED (new): 2 lead(s) cancelled; a worker sends HubSpot's "
        f"GDPR delete next (`leadsync erasure {erasure_id}` shows its progress)"
    )
    assert "ana@example.com" not in out.lower()
    statuses = [(await fetch(sessions, i)).hubspot_sync_status for i in ids]
    assert statuses == ["ERASED", "ERASED", "PENDING"]

    code, out, err = await leadsync(db_url, "erase", "ana@example.com", "-y", "--json", env=KEY)
    assert code == 0, err
    again = json.loads(out)
    assert (again["id"], again["created"], again["requested_by"]) == (erasure_id, False, "cli")
    assert again["leads_cancelled"] == 2


async def test_erase_without_a_key_is_one_line_naming_it(db_url: str, sessions: Sessions) -> None:
    (lead_id,) = await insert_leads(sessions, [lead_row(0, email="ana@example.com")])

    code, out, err = await leadsync(db_url, "erase", "ana@example.com", "--yes")

    assert code == 1
    assert out == ""
    line = one_line(err)
    assert line.startswith("leadsync: erasure requests need a secret key")
    assert "LEADSYNC_ERASURE_KEY" in line
    assert (await fetch(sessions, lead_id)).hubspot_sync_status == "PENDING"


async def test_erase_asks_first_and_changes_nothing_without_a_yes(
    db_url: str, sessions: Sessions
) -> None:
    (lead_id,) = await insert_leads(sessions, [lead_row(0, email="ana@example.com")])

    code, out, err = await leadsync(db_url, "erase", "ana@example.com", env=KEY)

    assert code == 1
    assert "This cannot be undone" in out
    assert "Aborted" in err
    assert (await fetch(sessions, lead_id)).hubspot_sync_status == "PENDING"


@pytest.mark.parametrize(
    ("command", "email", "says"),
    [
        ("erase", "not-an-address", "has no @"),
        ("erase", "ana@example.test", "is not a valid email address"),
        ("subject", "José@example.com", "must use only ASCII before the @"),
        ("subject", "", "must not be empty"),
        ("subject", "a" * 250 + "@example.com", "must be at most 254 characters"),
    ],
)
async def test_an_invalid_email_is_one_line_and_exit_2(
    db_url: str, sessions: Sessions, command: str, email: str, says: str
) -> None:
    (lead_id,) = await insert_leads(sessions, [lead_row(0, email="ana@example.com")])
    extra = ["--yes"] if command == "erase" else []

    code, out, err = await leadsync(db_url, command, email, *extra, env=KEY)

    assert code == 2, (out, err)
    assert out == ""
    line = one_line(err)
    assert line.startswith("leadsync: EMAIL ")
    assert says in line
    assert (await fetch(sessions, lead_id)).hubspot_sync_status == "PENDING"


async def test_list_show_and_retry(db_url: str, engine: AsyncEngine) -> None:
    ids = []
    for i in range(3):
        code, out, err = await leadsync(
            db_url, "erase", f"person{i}@example.com", "-y", "--json", env=KEY
        )
        assert code == 0, err
        ids.append(json.loads(out)["id"])
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE erasures SET status = 'FAILED', attempts = 3, http_status = 400, "
                "error = 'HTTP 400: refused by HubSpot', next_attempt_at = NULL WHERE id = :id"
            ),
            {"id": ids[0]},
        )

    code, out, err = await leadsync(db_url, "erasures", "--limit", "2", "--json")
    assert code == 0, err
    page = json.loads(out)
    assert [e["id"] for e in page["items"]] == [ids[2], ids[1]]
    code, out, err = await leadsync(
        db_url, "erasures", "--limit", "2", "--after", str(page["next_after"]), "--json"
    )
    assert [e["id"] for e in json.loads(out)["items"]] == [ids[0]]

    code, out, err = await leadsync(db_url, "erasures", "--status", "failed")
    assert code == 0, err
    assert "FAILED" in out
    assert "REQUESTED" not in out
    assert f"erasure {ids[0]}: HubSpot's error: HTTP 400: refused by HubSpot" in out
    code, out, err = await leadsync(db_url, "erasures", "--status", "COMPLETED")
    assert (code, out.strip()) == (0, "no erasure is COMPLETED")
    code, out, err = await leadsync(db_url, "erasures")
    assert code == 0, err
    assert all(str(i) in out for i in ids)
    assert "person" not in out  # addresses are never listed

    code, out, err = await leadsync(db_url, "erasure", str(ids[0]), "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert (shown["status"], shown["error"], shown["attempts"]) == (
        "FAILED",
        "HTTP 400: refused by HubSpot",
        3,
    )
    code, out, err = await leadsync(db_url, "erasure", str(ids[0]))
    assert code == 0, err
    assert "HTTP 400: refused by HubSpot" in out

    code, out, err = await leadsync(db_url, "erasure-retry", str(ids[0]))
    assert code == 0, err
    assert out.strip() == f"erasure {ids[0]} is REQUESTED again: a worker retries it"
    code, out, err = await leadsync(db_url, "erasure", str(ids[0]), "--json")
    assert (json.loads(out)["status"], json.loads(out)["attempts"]) == ("REQUESTED", 0)

    code, out, err = await leadsync(db_url, "erasure-retry", str(ids[1]))
    assert code == 1
    assert one_line(err) == (
        f"leadsync: erasure {ids[1]} is REQUESTED, not FAILED: only a FAILED erasure can be retried"
    )


@pytest.mark.parametrize("command", ["erasure", "erasure-retry"])
async def test_an_unknown_erasure_is_one_line(
    db_url: str, engine: AsyncEngine, command: str
) -> None:
    code, out, err = await leadsync(db_url, command, "424242")

    assert code == 1
    assert out == ""
    assert one_line(err) == "leadsync: no erasure with id 424242"


@pytest.mark.parametrize(
    "args",
    [
        ["erasure", "0"],
        ["erasure", str(2**63)],
        ["erasure-retry", "abc"],
        ["erasures", "--limit", "0"],
        ["erasures", "--limit", "501"],
        ["erasures", "--after", "0"],
        ["erasures", "--status", "ERASED"],
    ],
    ids=" ".join,
)
async def test_out_of_range_arguments_are_usage_errors(
    db_url: str, engine: AsyncEngine, args: list[str]
) -> None:
    code, out, err = await leadsync(db_url, *args)

    assert code == 2, (out, err)
    assert "Traceback" not in err


async def test_subject_prints_or_writes_that_emails_data(
    db_url: str, sessions: Sessions, tmp_path: Path
) -> None:
    ana, _bob = await insert_leads(
        sessions,
        [
            lead_row(0, email="ana@example.com", phone="+34 600"),
            lead_row(1, email="bob@example.com"),
        ],
    )

    code, out, err = await leadsync(db_url, "subject", "ANA@example.com", env=KEY)
    assert code == 0, err
    subject = json.loads(out)
    assert subject["email"] == "ana@example.com"
    assert [(lead["id"], lead["phone"]) for lead in subject["leads"]] == [(ana, "+34 600")]
    assert subject["matched_by_hash"] is True

    code, out, err = await leadsync(db_url, "subject", "ana@example.com")  # no key: still works
    assert code == 0, err
    assert json.loads(out)["matched_by_hash"] is False

    target = tmp_path / "ana.json"
    target.write_text("old, world-readable")
    target.chmod(0o644)
    code, out, err = await leadsync(
        db_url, "subject", "ana@example.com", "--output", str(target), env=KEY
    )
    assert code == 0, err
    assert out.strip() == f"wrote 1 lead(s) and 0 erasure(s) to {target} (mode 0600)"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert json.loads(target.read_text()) == subject

    code, out, err = await leadsync(
        db_url, "subject", "ana@example.com", "--output", str(tmp_path / "no" / "x.json")
    )
    assert code == 1
    assert one_line(err).startswith(f"leadsync: cannot write {tmp_path / 'no' / 'x.json'}: ")
