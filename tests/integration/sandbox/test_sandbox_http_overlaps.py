"""Overlapping writes over real HTTP: two writes of one email in progress at once are counted
in GET /_sandbox/stats; writes of different emails, or one after the other, are not."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from tests.helpers import wait_for

from leadsync.sandbox import RunningSandbox

C = "/crm/v3/objects/contacts"
UPSERT = C + "/batch/upsert"


def upsert(*emails: str) -> dict[str, Any]:
    return {"inputs": [{"id": e, "idProperty": "email", "properties": {}} for e in emails]}


def write_in_progress(control: httpx.Client) -> bool:
    requests = control.get("/requests").json()["requests"]
    return any(e["done_at"] is None for e in requests)


def overlaps(control: httpx.Client) -> tuple[int, list[str]]:
    stats = control.get("/stats").json()
    return stats["write_overlaps"], stats["overlapping_emails"]


@pytest.mark.parametrize(
    ("second_email", "expected"),
    [("Same@x.com", (1, ["same@x.com"])), ("other@x.com", (0, []))],
    ids=["same-email", "different-emails"],
)
async def test_a_write_during_a_delayed_write_overlaps_only_for_the_same_email(
    sandbox: RunningSandbox,
    client_for: Callable[..., httpx.Client],
    control: httpx.Client,
    second_email: str,
    expected: tuple[int, list[str]],
) -> None:
    control.post(
        "/inject", json={"action": "delay", "delay_ms": 800, "endpoints": ["batch_upsert"]}
    )
    slow, fast = client_for(sandbox.token, timeout=10), client_for(sandbox.token, timeout=10)

    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(slow.post, UPSERT, json=upsert("same@x.com", "third@x.com"))
        await wait_for(lambda: write_in_progress(control))
        second = fast.post(C, json={"properties": {"email": second_email}})
        assert write_in_progress(control)  # the second really came during the first
        assert first.result().status_code == 200
    assert second.status_code == 201

    assert overlaps(control) == expected
    # One after the other is no overlap; reset clears the figures.
    fast.post(UPSERT, json=upsert("same@x.com"))
    assert overlaps(control) == expected
    control.post("/reset")
    assert overlaps(control) == (0, [])


async def test_a_hung_write_stays_in_progress_until_its_client_leaves(
    sandbox: RunningSandbox,
    client_for: Callable[..., httpx.Client],
    control: httpx.Client,
) -> None:
    control.post("/inject", json={"action": "hang", "endpoints": ["create"]})
    hung, other = client_for(sandbox.token, timeout=1.0), client_for(sandbox.token, timeout=10)

    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(hung.post, C, json={"properties": {"email": "h@x.com"}})
        await wait_for(lambda: write_in_progress(control))
        during = other.post(UPSERT, json=upsert("h@x.com"))
        with pytest.raises(httpx.ReadTimeout):
            first.result()
    await wait_for(lambda: not write_in_progress(control))
    after = other.post(UPSERT, json=upsert("h@x.com"))

    assert (during.status_code, after.status_code) == (200, 200)
    assert overlaps(control) == (1, ["h@x.com"])
