"""The running helpers: thread, asyncio task and separate process."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from tests.helpers import wait_for

from leadsync.sandbox import SandboxConfig, sandbox_in_loop, sandbox_in_process, sandbox_in_thread

C = "/crm/v3/objects/contacts"


async def test_serve_sandbox_runs_as_a_task_on_the_current_loop() -> None:
    async with sandbox_in_loop(config=SandboxConfig(tokens=frozenset({"t"}))) as sandbox:
        async with httpx.AsyncClient(base_url=sandbox.url) as http:
            response = await http.post(
                C, json={"properties": {"email": "a@x.com"}}, headers={"Authorization": "Bearer t"}
            )
        assert response.status_code == 201
        assert sandbox.state.store.get_by_email("a@x.com") is not None
        url = sandbox.url
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/_sandbox/stats")


async def test_stop_releases_a_hanging_request_promptly() -> None:
    with sandbox_in_thread(config=SandboxConfig(fault_timeout=1.0, hang_seconds=60)) as sandbox:
        outcome: list[object] = []

        def call() -> None:
            try:
                outcome.append(
                    httpx.get(
                        sandbox.url + C,
                        headers={"Authorization": f"Bearer {sandbox.token}"},
                        timeout=30,
                    )
                )
            except httpx.HTTPError as exc:
                outcome.append(exc)

        caller = threading.Thread(target=call)
        caller.start()
        await wait_for(lambda: sandbox.state.hangs.active > 0, timeout=5)
        started = time.monotonic()
        sandbox.stop()
        caller.join(timeout=10)
        assert time.monotonic() - started < 5
        sandbox.stop()  # idempotent
    assert outcome
    assert not caller.is_alive()


def test_spawned_process_serves_with_its_cli_options() -> None:
    args = ["--token", "one", "--token", "two", "--rate-limit", "none", "--seed", "1"]
    with sandbox_in_process(args=args) as process:
        for token in ("one", "two"):
            response = httpx.get(process.url + C, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200
            assert "x-hubspot-ratelimit-max" not in response.headers
        config = httpx.get(process.url + "/_sandbox/config").json()
        assert (config["tokens"], config["seed"]) == (["one", "two"], 1)
    assert process.process.poll() is not None
