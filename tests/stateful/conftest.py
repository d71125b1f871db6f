"""Hypothesis profiles of the stateful sync test, and its HubSpot sandbox.

Profiles (chosen with STATEFUL_PROFILE, default ``stateful-ci``):

``stateful-ci``
    What ``make test`` runs: a fixed seed (derandomize), STATEFUL_EXAMPLES examples (6) of
    at most STATEFUL_STEPS steps (10) per variant, no shrinking (a failing example is
    printed as found), about 30 s per variant (db x write mode) on a 2-core machine.
``stateful-fuzz``
    What ``make fuzz`` runs: FUZZ_EXAMPLES examples (200) of at most FUZZ_STEPS steps (25),
    a random seed passed as ``--hypothesis-seed`` (the Makefile prints it), shrinking on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
import structlog
from hypothesis import HealthCheck, Phase, settings

from leadsync.sandbox import RunningSandbox, SandboxConfig, sandbox_in_thread
from tests.stateful.specs import REFUSED_PATTERN

PROFILE_ENV = "STATEFUL_PROFILE"

_COMMON = {
    "deadline": None,
    "database": None,  # replay by seed (make fuzz SEED=n), not from a local example store
    "suppress_health_check": list(HealthCheck),
    "report_multiple_bugs": False,
}
settings.register_profile(
    "stateful-ci",
    max_examples=int(os.environ.get("STATEFUL_EXAMPLES", "6")),
    stateful_step_count=int(os.environ.get("STATEFUL_STEPS", "10")),
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    **_COMMON,  # type: ignore[arg-type]
)
settings.register_profile(
    "stateful-fuzz",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "200")),
    stateful_step_count=int(os.environ.get("FUZZ_STEPS", "25")),
    derandomize=False,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    **_COMMON,  # type: ignore[arg-type]
)


@pytest.fixture
def stateful_profile() -> settings:
    """The Hypothesis settings the state machine runs with."""
    name = os.environ.get(PROFILE_ENV, "").strip() or "stateful-ci"
    if not name.startswith("stateful-"):
        name = f"stateful-{name}"
    return settings.get_profile(name)


@pytest.fixture
def stateful_sandbox() -> Iterator[RunningSandbox]:
    """A HubSpot sandbox over real HTTP (its own thread and loop), for one test case."""
    config = SandboxConfig(seed=1, reject_emails=REFUSED_PATTERN)
    with sandbox_in_thread(config=config) as sandbox:
        yield sandbox


@pytest.fixture(autouse=True)
def _engine_warnings_only() -> Iterator[None]:
    """Keep the engine's logs to warnings: thousands of INFO lines would bury the report."""
    before = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    yield
    structlog.configure(**before)
