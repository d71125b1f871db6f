"""Fixtures of the privacy route tests: settings with an erasure key.

The shared PostgreSQL reset (tests/helpers/postgres.py) empties `erasures` with `leads`, so an
erasure left open by one test cannot hold back the leads of its email in the next.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from leadsync.config import Settings

ERASURE_KEY = "test-erasure-key-0123456789"


@pytest.fixture
def keyed_settings(settings_factory: Callable[..., Settings]) -> Callable[..., Settings]:
    """settings_factory with LEADSYNC_ERASURE_KEY set (erasure requests need one)."""

    def make(**overrides: Any) -> Settings:
        return settings_factory(**{"erasure_key": ERASURE_KEY, **overrides})

    return make
