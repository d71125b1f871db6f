"""Create the leads table (seed and queue columns) and the shared HubSpot gate.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from leadsync.store.db import UTCDateTime
from leadsync.store.tables import UNFINISHED_SQL

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The predicate the queue's statements repeat, from the one definition of the statuses.
_UNFINISHED = sa.text(UNFINISHED_SQL)


def upgrade() -> None:
    op.create_table(
        "leads",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("created_at", UTCDateTime(), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), server_default=sa.func.now(), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("firstname", sa.String(100)),
        sa.Column("lastname", sa.String(100)),
        sa.Column("phone", sa.String(32)),
        sa.Column("company", sa.String(100)),
        sa.Column("message", sa.Text()),
        sa.Column("source", sa.String(64)),
        sa.Column("idempotency_key", sa.String(255)),
        sa.Column("idempotency_fingerprint", sa.String(64)),
        sa.Column("hubspot_id", sa.String(255)),
        sa.Column("hubspot_sync_status", sa.String(32), server_default="PENDING", nullable=False),
        sa.Column("hubspot_synced_at", UTCDateTime()),
        sa.Column("hubspot_error", sa.Text()),
        sa.Column("hubspot_sync_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_hubspot_attempt_at", UTCDateTime()),
        sa.Column("hubspot_next_attempt_at", UTCDateTime()),
        sa.Column("hubspot_lease_token", sa.String(36)),
        sa.Column("hubspot_lease_expires_at", UTCDateTime()),
        sa.Column("hubspot_last_http_status", sa.Integer()),
        sa.PrimaryKeyConstraint("id", name="pk_leads"),
        sa.UniqueConstraint("idempotency_key", name="uq_leads_idempotency_key"),
    )
    op.create_index("ix_leads_email", "leads", ["email"])
    op.create_index("ix_leads_hubspot_sync_status_id", "leads", ["hubspot_sync_status", "id"])
    op.create_index(
        "ix_leads_due",
        "leads",
        ["hubspot_next_attempt_at"],
        postgresql_where=_UNFINISHED,
        sqlite_where=_UNFINISHED,
    )
    op.create_table(
        "hubspot_gate",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("next_slot_at", UTCDateTime(), server_default=sa.func.now(), nullable=False),
        sa.Column("paused_until", UTCDateTime()),
        sa.Column("pause_reason", sa.String(32)),
        sa.Column("pause_detail", sa.Text()),
        sa.Column("auth_failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("reported_max", sa.Integer()),
        sa.Column("reported_remaining", sa.Integer()),
        sa.Column("reported_interval_ms", sa.Integer()),
        sa.Column("daily_remaining", sa.Integer()),
        sa.Column("updated_at", UTCDateTime(), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_hubspot_gate"),
    )
    op.execute("INSERT INTO hubspot_gate (name) VALUES ('hubspot')")


def downgrade() -> None:
    op.drop_table("hubspot_gate")
    op.drop_index("ix_leads_due", table_name="leads")
    op.drop_index("ix_leads_hubspot_sync_status_id", table_name="leads")
    op.drop_index("ix_leads_email", table_name="leads")
    op.drop_table("leads")
