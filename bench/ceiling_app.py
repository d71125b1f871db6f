"""The ingest benchmark's ceiling: the least an intake endpoint can do and still do the job.

FastAPI + one pydantic model of the lead (plain strings with leadsync's maximum lengths) +
asyncpg straight, no SQLAlchemy, no middleware. Each `POST /leads` runs one transaction on a
pooled connection: the same INSERT .. RETURNING id into leadsync's own `leads` table, filling
the columns leadsync fills (PENDING, 0 attempts, due now, created/updated now), and the same
wake-up (`pg_notify('leadsync_leads', '')`), so the database does the same work as for
leadsync; it answers 201 with the same body (the stored lead) and Location header.

What the ceiling leaves out is what leadsync spends on top of it: strict JSON parsing, the
text rules and canonical emails, the Idempotency-Key check, SQLAlchemy's session and engine,
the size-limit middleware, metrics. The schema must exist (run `leadsync migrate` first).

Round trips per request: BEGIN, INSERT, pg_notify, COMMIT, and asyncpg's reset of the
connection when the pool takes it back: 5. leadsync makes 7 (seen with log_statement=all):
its engine's pre-ping (BEGIN, an empty query, ROLLBACK), then BEGIN, INSERT, NOTIFY, COMMIT.

    python bench/ceiling_app.py DATABASE_URL PORT [PROCESSES]

runs uvicorn with uvloop, httptools, no access log and PROCESSES workers (default 1). The pool
is sized as leadsync's engine (10 connections, up to 20) in each process.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import uvicorn
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, Field

INSERT = (
    "INSERT INTO leads (email, firstname, lastname, phone, company, message, source, "
    "created_at, updated_at, hubspot_sync_status, hubspot_sync_attempts, "
    "hubspot_next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, 'PENDING', 0, $8) "
    "RETURNING id"
)
NOTIFY = "SELECT pg_notify('leadsync_leads', '')"


class LeadIn(BaseModel):
    """The website's form, with the column lengths of `leads`."""

    email: str = Field(min_length=3, max_length=254)
    firstname: str | None = Field(default=None, max_length=100)
    lastname: str | None = Field(default=None, max_length=100)
    phone: str | None = Field(default=None, max_length=32)
    company: str | None = Field(default=None, max_length=100)
    message: str | None = Field(default=None, max_length=5000)
    source: str | None = Field(default=None, max_length=64)


class LeadOut(BaseModel):
    """The stored lead, as leadsync answers it (same fields, same order)."""

    id: int
    email: str
    firstname: str | None
    lastname: str | None
    phone: str | None
    company: str | None
    message: str | None
    source: str | None
    created_at: dt.datetime
    hubspot_sync_status: str


def build(url: str) -> FastAPI:
    """Return the ceiling app for a PostgreSQL URL (postgresql://...)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(url, min_size=10, max_size=20)
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/leads", status_code=201)
    async def create_lead(lead: LeadIn, request: Request, response: Response) -> LeadOut:
        now = dt.datetime.now(dt.UTC)
        pool: asyncpg.Pool = request.app.state.pool
        async with pool.acquire() as conn, conn.transaction():
            lead_id = await conn.fetchval(
                INSERT,
                lead.email,
                lead.firstname,
                lead.lastname,
                lead.phone,
                lead.company,
                lead.message,
                lead.source,
                now,
            )
            await conn.execute(NOTIFY)
        response.headers["Location"] = f"/internal/leads/{lead_id}"
        return LeadOut(
            **lead.model_dump(), id=lead_id, created_at=now, hubspot_sync_status="PENDING"
        )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def app_from_env() -> FastAPI:
    """Build the app from CEILING_DATABASE_URL (the factory of each process)."""
    return build(os.environ["CEILING_DATABASE_URL"])


if __name__ == "__main__":
    # python bench/ceiling_app.py DATABASE_URL PORT [PROCESSES]
    os.environ["CEILING_DATABASE_URL"] = sys.argv[1]
    uvicorn.run(
        "ceiling_app:app_from_env",
        factory=True,
        app_dir=os.path.dirname(os.path.abspath(__file__)),
        workers=int(sys.argv[3]) if len(sys.argv) > 3 else 1,
        host="127.0.0.1",
        port=int(sys.argv[2]),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )
