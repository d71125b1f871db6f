"""leadsync's own counters of its HubSpot calls, read from this process's Prometheus metrics."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass

from prometheus_client import Counter as PromCounter
from prometheus_client.samples import Sample

from leadsync import metrics


@dataclass(frozen=True, slots=True)
class Traffic:
    """leadsync's own counters of its HubSpot calls (Prometheus metrics, as deltas)."""

    requests: float = 0
    rate_limited: float = 0
    server_errors: float = 0
    no_answer: float = 0
    retries: float = 0
    held_by_429: float = 0

    @classmethod
    def now(cls) -> Traffic:
        """Read the counters of this process (only these collectors, not the whole registry)."""
        calls: Counter[str] = Counter()
        for sample in _samples(metrics.HUBSPOT_REQUESTS):
            calls[sample.labels["status_class"]] += int(sample.value)
        outcomes = {s.labels["outcome"]: s.value for s in _samples(metrics.SYNC_ATTEMPTS)}
        return cls(
            requests=sum(calls.values()),
            rate_limited=calls["429"],
            server_errors=calls["5xx"],
            no_answer=calls["network"],
            retries=sum(s.value for s in _samples(metrics.RETRIES)),
            held_by_429=outcomes.get("rate_limited", 0.0),
        )

    def __sub__(self, other: Traffic) -> Traffic:
        return Traffic(
            *(
                a - b
                for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other), strict=True)
            )
        )


def _samples(collector: PromCounter) -> list[Sample]:
    return [
        sample
        for family in collector.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    ]
