"""Fixtures of the privacy route tests: a clean erasures table and settings with a key.

The shared PostgreSQL reset truncates `leads` only, and no foreign key ties `erasures` to it:
an erasure left open by one test would hold back the leads of its email in the next. The
table is emptied before and after each test here (SQLite starts from a new file anyway).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from leadsync.config import Settings

ERASURE_KEY = "test-erasure-key-0123456789"


async def _forget_erasures(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM erasures"))


@pytest.fixture(autouse=True)
async def _no_erasures(engine: AsyncEngine) -> AsyncIterator[None]:
    await _forget_erasures(engine)
    yield
    await _forget_erasures(engine)


@pytest.fixture
def keyed_settings(settings_factory: Callable[..., Settings]) -> Callable[..., Settings]:
    """settings_factory with LEADSYNC_ERASURE_KEY set (erasure requests need one)."""

    def make(**overrides: Any) -> Settings:
        return settings_factory(**{"erasure_key": ERASURE_KEY, **overrides})

    return make
