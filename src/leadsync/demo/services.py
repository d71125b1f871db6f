"""Start the demo's services in this process: the HubSpot sandbox, and leadsync's API + worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from leadsync.app import create_app
from leadsync.demo.options import DemoError, demo_settings, sandbox_config
from leadsync.engine.writer import LEAD_EVENT_PREFIX
from leadsync.logging import configure_logging
from leadsync.runtime import start_in_app
from leadsync.sandbox import RunningSandbox, sandbox_in_thread
from leadsync.sandbox.server import bind_socket, socket_url


@dataclass(frozen=True, slots=True)
class Services:
    """The running services, and a client for each."""

    workdir: Path  # the temporary directory of the SQLite database
    running: RunningSandbox
    url: str  # leadsync's API
    api: httpx.AsyncClient
    sandbox: httpx.AsyncClient
    database_url: str


class PerLeadOutcomes(logging.Filter):
    """Counts, and keeps off the screen, the worker's per-lead warnings: the bars show them."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = 0

    def filter(self, record: logging.LogRecord) -> bool:
        event = record.msg.get("event") if isinstance(record.msg, dict) else None
        if isinstance(event, str) and event.startswith(LEAD_EVENT_PREFIX):
            self.hidden += 1
            return False
        return True


class _CurrentStderr:
    """Writes to whatever sys.stderr is now: rich's live display swaps it to print above."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _ApiServer(uvicorn.Server):
    """uvicorn without its signal handlers: Ctrl-C stays with asyncio.run and the demo."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def start_services(
    stack: contextlib.AsyncExitStack,
    *,
    seed: int,
    port: int,
    internal_token: str,
    erasure_key: str,
    quiet: PerLeadOutcomes,
) -> Services:
    """Start the sandbox and leadsync on `stack`, which stops them and deletes their data."""
    workdir = Path(
        stack.enter_context(
            tempfile.TemporaryDirectory(prefix="leadsync-demo-", ignore_cleanup_errors=True)
        )
    )
    running = stack.enter_context(sandbox_in_thread(config=sandbox_config(seed=seed)))
    settings = demo_settings(
        workdir=workdir, sandbox=running, internal_token=internal_token, erasure_key=erasure_key
    )
    # After the sandbox: its uvicorn config installs handlers that this replaces.
    configure_logging(level="WARNING", secrets=settings.secrets, stream=_CurrentStderr())
    worker_log = logging.getLogger("leadsync.engine.worker")
    worker_log.addFilter(quiet)
    stack.callback(worker_log.removeFilter, quiet)
    try:
        sock = bind_socket(port=port)
    except OSError as exc:
        raise DemoError(f"cannot listen on 127.0.0.1:{port}: {exc}") from None
    stack.callback(sock.close)
    url = socket_url(sock)
    server = _ApiServer(
        uvicorn.Config(
            create_app(settings, background=start_in_app),
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=3,
        )
    )
    task = asyncio.create_task(server.serve(sockets=[sock]), name="leadsync-demo-api")

    async def stop() -> None:
        server.should_exit = True
        await task

    stack.push_async_callback(stop)
    while not server.started:
        if task.done():
            raise DemoError("the leadsync API did not start (see the log above)")
        await asyncio.sleep(0.02)
    api = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=10))
    sandbox = await stack.enter_async_context(httpx.AsyncClient(base_url=running.url, timeout=5))
    return Services(
        workdir=workdir,
        running=running,
        url=url,
        api=api,
        sandbox=sandbox,
        database_url=settings.database_url,
    )
