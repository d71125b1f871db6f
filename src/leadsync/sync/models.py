"""The `hubspot_gate` table: the one HubSpot request budget and pause shared by all workers."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from leadsync.db import Base, UTCDateTime, utcnow

GATE_NAME = "hubspot"


class HubSpotGate(Base):
    """One row per HubSpot account: next free request slot, pause state, last reported limits."""

    __tablename__ = "hubspot_gate"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    # Earliest time the next request may be sent (GCRA "theoretical arrival time").
    next_slot_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )
    paused_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    pause_reason: Mapped[str | None] = mapped_column(String(32))
    pause_detail: Mapped[str | None] = mapped_column(Text)
    auth_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    reported_max: Mapped[int | None] = mapped_column(Integer)
    reported_remaining: Mapped[int | None] = mapped_column(Integer)
    reported_interval_ms: Mapped[int | None] = mapped_column(Integer)
    daily_remaining: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, server_default=func.now()
    )
