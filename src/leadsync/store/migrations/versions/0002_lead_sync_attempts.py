"""Each lead's sync history (`lead_sync_attempts`) and the workers' heartbeats (`sync_workers`).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from leadsync.store.db import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_HAS_ERROR = sa.text("error IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "lead_sync_attempts",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("lead_id", _ID, nullable=False),
        sa.Column("attempted_at", UTCDateTime(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("http_status", sa.Integer()),
        sa.Column("error", sa.Text()),
        sa.Column("duration_ms", sa.Integer()),
        sa.Column("worker_id", sa.String(64)),
        sa.Column("hubspot_id", sa.String(255)),
        sa.PrimaryKeyConstraint("id", name="pk_lead_sync_attempts"),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["leads.id"],
            name="fk_lead_sync_attempts_lead_id_leads",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_lead_sync_attempts_lead_id_id", "lead_sync_attempts", ["lead_id", "id"])
    op.create_index(
        "ix_lead_sync_attempts_attempted_at_outcome",
        "lead_sync_attempts",
        ["attempted_at", "outcome"],
    )
    op.create_index(
        "ix_lead_sync_attempts_errors",
        "lead_sync_attempts",
        ["id"],
        postgresql_where=_HAS_ERROR,
        sqlite_where=_HAS_ERROR,
    )
    op.create_table(
        "sync_workers",
        sa.Column("worker_id", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("worker_id", name="pk_sync_workers"),
    )


def downgrade() -> None:
    op.drop_table("sync_workers")
    op.drop_index("ix_lead_sync_attempts_errors", table_name="lead_sync_attempts")
    op.drop_index("ix_lead_sync_attempts_attempted_at_outcome", table_name="lead_sync_attempts")
    op.drop_index("ix_lead_sync_attempts_lead_id_id", table_name="lead_sync_attempts")
    op.drop_table("lead_sync_attempts")
