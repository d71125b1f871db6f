"""Rate limits over real HTTP: the rolling window and its headers, Retry-After, DAILY, peaks."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from leadsync.sandbox import ManualClock, RunningSandbox, SandboxConfig

C = "/crm/v3/objects/contacts"


def test_window_headers_count_down_then_429(
    client: httpx.Client, configure: Callable[..., SandboxConfig]
) -> None:
    configure(rate_limit="4/10s", daily_limit=1000)
    answers = [client.get(C) for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
    assert [a.headers["x-hubspot-ratelimit-remaining"] for a in answers] == [
        "3",
        "2",
        "1",
        "0",
        "0",
    ]
    first = answers[0].headers
    assert first["x-hubspot-ratelimit-max"] == "4"
    assert first["x-hubspot-ratelimit-interval-milliseconds"] == "10000"
    assert first["x-hubspot-ratelimit-daily"] == "1000"
    assert first["x-hubspot-ratelimit-daily-remaining"] == "999"
    refused = answers[-1]
    assert refused.json()["message"] == "You have reached your ten_secondly_rolling limit."
    assert refused.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert refused.json()["errorType"] == "RATE_LIMIT"
    assert refused.headers["retry-after"] == "10"


def test_rejected_requests_do_not_extend_the_window(
    client: httpx.Client, clock: ManualClock, configure: Callable[..., SandboxConfig]
) -> None:
    configure(rate_limit="2/10s")
    assert [client.get(C).status_code for _ in range(2)] == [200, 200]
    clock.advance(5)
    assert [client.get(C).status_code for _ in range(10)] == [429] * 10
    clock.advance(5)
    assert [client.get(C).status_code for _ in range(3)] == [200, 200, 429]


def test_retry_after_can_be_switched_off(
    client: httpx.Client, configure: Callable[..., SandboxConfig]
) -> None:
    configure(rate_limit="1/10s", retry_after=False)
    client.get(C)
    refused = client.get(C)
    assert refused.status_code == 429
    assert "retry-after" not in refused.headers
    assert refused.headers["x-hubspot-ratelimit-interval-milliseconds"] == "10000"


def test_daily_limit_gives_daily_429_until_midnight(
    client: httpx.Client, clock: ManualClock, configure: Callable[..., SandboxConfig]
) -> None:
    configure(daily_limit=2)
    clock.set(1_767_225_600.0 + 86_400 * 10 + 86_000)  # 400 s before a UTC midnight
    assert [client.get(C).status_code for _ in range(2)] == [200, 200]
    refused = client.get(C)
    assert refused.status_code == 429
    assert refused.json()["policyName"] == "DAILY"
    assert refused.headers["x-hubspot-ratelimit-daily-remaining"] == "0"
    assert refused.headers["retry-after"] == "400"
    clock.advance(400)
    assert client.get(C).status_code == 200


def test_stats_report_429s_and_the_busiest_ten_seconds_per_token(
    client: httpx.Client,
    clock: ManualClock,
    control: httpx.Client,
    configure: Callable[..., SandboxConfig],
) -> None:
    configure(rate_limit="5/10s")
    for _ in range(3):
        client.get(C)
        clock.advance(4)
    # At t=12 the requests of t=4 and t=8 are still in the window: 3 more fit, 3 are refused.
    for _ in range(6):
        client.get(C)
    stats = control.get("/stats").json()
    assert stats["max_requests_in_10s"] == {"sandbox-token": 5}
    assert stats["rate_limited"] == 3
    assert stats["rate_limited_by_policy"] == {"TEN_SECONDLY_ROLLING": 3}
    assert stats["requests"]["list"] == {"200": 6, "429": 3}


def test_unthrottled_sandbox_sends_no_window_headers(
    client: httpx.Client, sandbox: RunningSandbox, configure: Callable[..., SandboxConfig]
) -> None:
    configure(rate_limit="none", daily_limit=None)
    answers = [client.get(C) for _ in range(300)]
    assert {a.status_code for a in answers} == {200}
    assert "x-hubspot-ratelimit-max" not in answers[0].headers
    assert sandbox.state.stats.peaks.peaks["sandbox-token"] == 300
