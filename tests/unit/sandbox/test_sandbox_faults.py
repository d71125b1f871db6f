"""FaultInjector: seeded, reproducible, honouring each probability."""

from __future__ import annotations

from collections import Counter

from leadsync.sandbox.faults import ERROR_STATUSES, NO_FAULT, Fault, FaultInjector


def draw(injector: FaultInjector, n: int, **probabilities: float) -> list[tuple[Fault, int]]:
    return [(d.kind, d.status) for d in (injector.decide(**probabilities) for _ in range(n))]


def test_same_seed_same_sequence_and_reseed_replays_it() -> None:
    p = {"error": 0.3, "hang": 0.1, "drop": 0.1}
    first = draw(FaultInjector(seed=7), 200, **p)
    assert draw(FaultInjector(seed=7), 200, **p) == first
    injector = FaultInjector(seed=7)
    draw(injector, 50, **p)
    injector.reseed(seed=7)
    assert draw(injector, 200, **p) == first
    assert draw(FaultInjector(seed=8), 200, **p) != first


def test_probabilities_shape_the_mix() -> None:
    kinds = Counter(
        kind for kind, _ in draw(FaultInjector(seed=1), 10_000, error=0.2, hang=0.1, drop=0.05)
    )
    assert 1_800 < kinds[Fault.ERROR] < 2_200
    assert 850 < kinds[Fault.HANG] < 1_150
    assert 400 < kinds[Fault.DROP] < 600


def test_errors_use_only_gateway_and_server_statuses() -> None:
    statuses = {status for _, status in draw(FaultInjector(seed=3), 500, error=1, hang=0, drop=0)}
    assert statuses == set(ERROR_STATUSES)


def test_no_probability_means_no_fault() -> None:
    injector = FaultInjector(seed=None)
    assert all(injector.decide(error=0, hang=0, drop=0) is NO_FAULT for _ in range(100))


def test_certain_drop_always_drops() -> None:
    kinds = {kind for kind, _ in draw(FaultInjector(seed=None), 100, error=0, hang=0, drop=1)}
    assert kinds == {Fault.DROP}
