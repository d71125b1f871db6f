"""Run the sandbox on a free loopback port: in a thread, as an asyncio task, or as a process."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI

from leadsync.sandbox.app import create_sandbox_app
from leadsync.sandbox.clock import Clock
from leadsync.sandbox.settings import SandboxConfig
from leadsync.sandbox.state import SandboxState, sandbox_state

_URL_RE = re.compile(r"(http://[\w.\-\[\]:]+:\d+)")


class _Server(uvicorn.Server):
    """A uvicorn server that reports when it accepts connections."""

    def __init__(self, config: uvicorn.Config, *, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self._on_ready()


@dataclass
class RunningSandbox:
    """A sandbox serving over HTTP: its base URL, its live state, and how to stop it."""

    url: str
    state: SandboxState
    app: FastAPI
    _stop: Callable[[], None] = field(repr=False)

    @property
    def token(self) -> str:
        """One accepted token (the first in sorted order)."""
        return sorted(self.state.config.tokens)[0]

    def stop(self) -> None:
        """Stop serving; held (hanging) requests are released first. Idempotent."""
        self._stop()


def bind_socket(*, host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """Bind a listening TCP socket; port 0 picks a free one, known before serving starts."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def socket_url(sock: socket.socket) -> str:
    """Return the http:// base URL of a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def uvicorn_config(app: FastAPI, *, log_level: str = "warning") -> uvicorn.Config:
    """Return the uvicorn settings the sandbox runs with: quiet and without access log."""
    # A short graceful-shutdown timeout bounds a stop even if a client keeps a request open.
    return uvicorn.Config(
        app, log_level=log_level, access_log=False, lifespan="off", timeout_graceful_shutdown=3
    )


@contextlib.contextmanager
def sandbox_in_thread(
    *,
    config: SandboxConfig | None = None,
    clock: Clock | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout: float = 10.0,
) -> Iterator[RunningSandbox]:
    """Serve a sandbox from a background thread for the duration of the block."""
    app = create_sandbox_app(config, clock=clock)
    state = sandbox_state(app)
    sock = bind_socket(host=host, port=port)
    ready = threading.Event()
    server = _Server(uvicorn_config(app), on_ready=ready.set)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)

    def stop() -> None:
        state.hangs.release_all()
        server.should_exit = True
        if thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=10)
        sock.close()

    running = RunningSandbox(socket_url(sock), state, app, stop)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not ready.wait(timeout=0.05):
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"sandbox did not start within {startup_timeout} s")
        yield running
    finally:
        running.stop()


@contextlib.asynccontextmanager
async def sandbox_in_loop(
    *,
    config: SandboxConfig | None = None,
    clock: Clock | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout: float = 10.0,
) -> AsyncIterator[RunningSandbox]:
    """Serve a sandbox as a task on the running event loop for the duration of the block."""
    app = create_sandbox_app(config, clock=clock)
    state = sandbox_state(app)
    sock = bind_socket(host=host, port=port)
    ready = asyncio.Event()
    server = _Server(uvicorn_config(app), on_ready=ready.set)
    task = asyncio.create_task(server.serve(sockets=[sock]))

    def stop() -> None:
        state.hangs.release_all()
        server.should_exit = True

    running = RunningSandbox(socket_url(sock), state, app, stop)
    try:
        waiter = asyncio.ensure_future(ready.wait())
        await asyncio.wait({waiter, task}, timeout=startup_timeout, return_when="FIRST_COMPLETED")
        if not ready.is_set():
            waiter.cancel()
            raise RuntimeError(f"sandbox did not start within {startup_timeout} s")
        yield running
    finally:
        stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=10)
        sock.close()


@dataclass
class SandboxProcess:
    """A sandbox in its own process (`python -m leadsync.sandbox`)."""

    url: str
    process: subprocess.Popen[str]

    def stop(self) -> None:
        """Terminate the process and wait for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def sandbox_in_process(
    *, args: Sequence[str] = (), host: str = "127.0.0.1", startup_timeout: float = 20.0
) -> Iterator[SandboxProcess]:
    """Start `python -m leadsync.sandbox` on a free port and yield it once it listens."""
    command = [sys.executable, "-m", "leadsync.sandbox", "--host", host, "--port", "0", *args]
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    spawned: SandboxProcess | None = None
    try:
        spawned = SandboxProcess(_await_url(lines, timeout=startup_timeout), process)
        yield spawned
    finally:
        (spawned or SandboxProcess("", process)).stop()


def _await_url(lines: queue.Queue[str], *, timeout: float) -> str:
    """Read the process's output until it prints its URL (it does so once it listens)."""
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            break
        if line == "":  # the process ended
            break
        seen.append(line)
        if "listening" in line and (match := _URL_RE.search(line)):
            return match.group(1)
    raise RuntimeError("sandbox process did not start:\n" + "".join(seen[-20:]))
