"""Privacy: erasure requests, the ERASED lead, scrubbed personal fields, retention's index.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from leadsync.store.db import UTCDateTime
from leadsync.store.tables import DUE_ERASURE_SQL, OPEN_ERASURE_SQL, RETAINED_SQL

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_HASHED = sa.text("email_hash IS NOT NULL")


def upgrade() -> None:
    # A scrubbed lead keeps no email. SQLite cannot alter a column in place: batch mode
    # copies the table (once, at migration time).
    with op.batch_alter_table("leads") as batch:
        batch.alter_column("email", existing_type=sa.String(254), nullable=True)
        batch.add_column(sa.Column("scrubbed_at", UTCDateTime()))
        batch.add_column(sa.Column("email_hash", sa.String(64)))
    op.create_index(
        "ix_leads_email_hash",
        "leads",
        ["email_hash"],
        postgresql_where=_HASHED,
        sqlite_where=_HASHED,
    )
    op.create_index(
        "ix_leads_retention",
        "leads",
        ["created_at"],
        postgresql_where=sa.text(RETAINED_SQL),
        sqlite_where=sa.text(RETAINED_SQL),
    )
    op.create_table(
        "erasures",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("email_hash", sa.String(64), nullable=False),
        sa.Column("email", sa.String(254)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("requested_by", sa.String(32), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("completed_at", UTCDateTime()),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UTCDateTime()),
        sa.Column("lease_token", sa.String(36)),
        sa.Column("lease_expires_at", UTCDateTime()),
        sa.Column("http_status", sa.Integer()),
        sa.Column("error", sa.Text()),
        sa.Column("deleted_at", UTCDateTime()),
        sa.Column("confirm_after", UTCDateTime()),
        sa.Column("leads_cancelled", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("leads_scrubbed", sa.Integer()),
        sa.Column("returned_at", UTCDateTime()),
        sa.Column("returned_lead_id", _ID),
        sa.PrimaryKeyConstraint("id", name="pk_erasures"),
    )
    op.create_index("ix_erasures_email_hash", "erasures", ["email_hash"])
    op.create_index(
        "ix_erasures_due",
        "erasures",
        ["next_attempt_at"],
        postgresql_where=sa.text(DUE_ERASURE_SQL),
        sqlite_where=sa.text(DUE_ERASURE_SQL),
    )
    op.create_index(
        "ix_erasures_open_email",
        "erasures",
        ["email"],
        postgresql_where=sa.text(OPEN_ERASURE_SQL),
        sqlite_where=sa.text(OPEN_ERASURE_SQL),
    )


def downgrade() -> None:
    op.drop_index("ix_erasures_open_email", table_name="erasures")
    op.drop_index("ix_erasures_due", table_name="erasures")
    op.drop_index("ix_erasures_email_hash", table_name="erasures")
    op.drop_table("erasures")
    op.drop_index("ix_leads_retention", table_name="leads")
    op.drop_index("ix_leads_email_hash", table_name="leads")
    # Scrubbed leads have no email any more: they cannot go back under NOT NULL.
    op.execute("DELETE FROM leads WHERE email IS NULL")
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("email_hash")
        batch.drop_column("scrubbed_at")
        batch.alter_column("email", existing_type=sa.String(254), nullable=False)
