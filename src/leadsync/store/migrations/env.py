"""Alembic environment: runs on the connection leadsync hands over (see migrations/__init__)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

import leadsync.store.tables
from leadsync.config import load_settings
from leadsync.store.db import Base

target_metadata = Base.metadata
del leadsync  # only imported for its side effect of registering the models


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_standalone() -> None:
    # Used only by the `alembic` CLI of a maintainer writing a new revision.
    url = load_settings().async_database_url
    sync_url = url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")
    with create_engine(sync_url).begin() as connection:
        _run(connection)


connection = context.config.attributes.get("connection")
if connection is None:
    _run_standalone()
else:
    _run(connection)
