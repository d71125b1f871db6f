"""End-to-end fixtures: a HubSpot sandbox over real HTTP and `leadsync worker` processes.

``sandbox_factory(**config)``
    Starts ``leadsync.sandbox.sandbox_in_thread`` (a real uvicorn server on a free loopback port,
    in a thread of the test process) with a ``SandboxConfig`` built from the keywords, and
    stops it after the test.  Tests read and steer it through its control API (/_sandbox/).
``worker_factory(name, env)``
    Starts a ``leadsync worker`` subprocess with exactly the given leadsync environment
    (JSON logs to a file in ``tmp_path``), in a ``leadsync.demo.kit.Fleet``; after the test
    the fleet is stopped (SIGTERM to all, SIGKILL to laggards), and the logs of the test's
    workers are printed when the test failed.

Their types (``SandboxFactory``, ``WorkerFactory``) are in ``tests/e2e/support.py``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from leadsync.demo.kit import Fleet, LeadsyncProcess
from leadsync.sandbox import RunningSandbox, SandboxConfig, sandbox_in_thread
from tests.e2e.support import SandboxFactory, WorkerFactory


@pytest.fixture
def sandbox_factory() -> Iterator[SandboxFactory]:
    """Return a starter of sandboxes; each one is stopped after the test."""
    with contextlib.ExitStack() as stack:

        def start(**config: Any) -> RunningSandbox:
            return stack.enter_context(sandbox_in_thread(config=SandboxConfig(**config)))

        yield start


@pytest.fixture
def worker_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WorkerFactory]:
    """Return a starter of `leadsync worker` processes; all are stopped after the test."""
    fleet = Fleet(tmp_path)

    def start(name: str, env: Mapping[str, str]) -> LeadsyncProcess:
        return fleet.start(name, env, "worker")

    yield start
    fleet.stop()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for worker in fleet.started:
            lines = worker.log_text().splitlines()
            # Problems first (they carry the cause), then the last few lines for context.
            problems = [line for line in lines if '"level": "info"' not in line]
            tail = "\n".join([*problems[-30:], "...", *lines[-5:]])
            print(f"--- {worker.name} (exit {worker.process.returncode}) ---\n{tail}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test item, so fixtures can tell that a test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
