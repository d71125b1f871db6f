"""The ingest benchmark's baseline: the same stack inserting a bare row, no sync bookkeeping.

FastAPI + pydantic + SQLAlchemy async + the same engine settings as leadsync, one transaction
per request, but no email validation, no idempotency, no NOTIFY, no queue columns, no index.
Run with `python bench/baseline_app.py DATABASE_URL PORT [PROCESSES]`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import text

from leadsync.config import async_database_url
from leadsync.store.db import create_engine, create_sessionmaker, transaction


class Bare(BaseModel):
    """Just an email."""

    email: str


def build(url: str) -> FastAPI:
    """Return the baseline app for a database URL."""
    engine = create_engine(async_database_url(url))
    sessions = create_sessionmaker(engine)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                ddl = "CREATE TABLE IF NOT EXISTS bare_leads (id INTEGER PRIMARY KEY, email TEXT)"
            else:
                ddl = "CREATE TABLE IF NOT EXISTS bare_leads (id BIGSERIAL PRIMARY KEY, email TEXT)"
            await conn.execute(text(ddl))
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.post("/baseline", status_code=201)
    async def baseline(body: Bare) -> dict[str, int]:
        async with transaction(sessions) as session:
            new_id = (
                await session.execute(
                    text("INSERT INTO bare_leads (email) VALUES (:email) RETURNING id"),
                    {"email": body.email},
                )
            ).scalar_one()
        return {"id": int(new_id)}

    return app


def app_from_env() -> FastAPI:
    """Build the app from BASELINE_DATABASE_URL (the factory of each process)."""
    return build(os.environ["BASELINE_DATABASE_URL"])


if __name__ == "__main__":
    # python bench/baseline_app.py DATABASE_URL PORT [PROCESSES]
    os.environ["BASELINE_DATABASE_URL"] = sys.argv[1]
    uvicorn.run(
        "baseline_app:app_from_env",
        factory=True,
        app_dir=os.path.dirname(os.path.abspath(__file__)),
        workers=int(sys.argv[3]) if len(sys.argv) > 3 else 1,
        host="127.0.0.1",
        port=int(sys.argv[2]),
        log_level="warning",
    )
