"""`leadsync resync-failed` and `leadsync status --json`, run as the operator runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadsync.cli import app
from tests.helpers.cli import leadsync
from tests.helpers.leads import failed_row, fetch_all, insert_leads, lead_row


async def test_cli_resync_failed_one_lead_then_status(db_url: str, sessions) -> None:
    ids = await insert_leads(sessions, [failed_row(0), failed_row(1), lead_row(2)])

    code, out, err = await leadsync(db_url, "resync-failed", "--lead-id", str(ids[1]))
    assert code == 0, err
    assert out.strip() == "requeued 1 FAILED lead(s)"
    leads = await fetch_all(sessions)
    assert [leads[i].hubspot_sync_status for i in ids] == ["FAILED", "PENDING", "PENDING"]
    assert leads[ids[1]].hubspot_sync_attempts == 0

    code, out, err = await leadsync(db_url, "status", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["counts"] == {
        "PENDING": 2,
        "IN_PROGRESS": 0,
        "RETRYING": 0,
        "SYNCED": 0,
        "FAILED": 1,
        "ERASED": 0,
    }
    assert report["oldest_due_seconds"] >= 0
    assert report["gate"]["paused"] is False
    assert report["budget"]["limit"] == "90/10s"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--lead-id", "0"], "--lead-id"),
        (["--lead-id", str(2**63)], "--lead-id"),
        (["--lead-id", "true"], "--lead-id"),
        (["--older-than", "-1"], "--older-than"),
        (["--older-than", "nan"], "--older-than"),
        (["--older-than", "inf"], "--older-than"),
        (["--older-than", "64000000000"], "--older-than"),
        (["--limit", "0"], "--limit"),
        (["--limit", "1000001"], "--limit"),
        ([arg for i in range(1, 1002) for arg in ("--lead-id", str(i))], "at most 1,000"),
    ],
    ids=lambda v: " ".join(v)[:40] if isinstance(v, list) else v,
)
def test_cli_resync_failed_refuses_numbers_out_of_range(
    tmp_path: Path, args: list[str], says: str
) -> None:
    database = tmp_path / "never-created.db"

    result = CliRunner().invoke(
        app, ["resync-failed", *args], env={"DATABASE_URL": f"sqlite:///{database}"}
    )

    assert result.exit_code == 2, result.output
    assert says in result.output
    assert "Traceback" not in result.output
    assert not database.exists()  # refused before touching any database
