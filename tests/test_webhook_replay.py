"""MemoryReplayGuard remembers delivery ids for a bounded time and count."""

from __future__ import annotations

import threading

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from integration_automation_patterns._types import ConfigurationError, ManualClock
from integration_automation_patterns.webhook_handler import (
    MemoryReplayGuard,
    ReplayGuard,
    StripeVerifier,
)


def test_first_sighting_is_new_and_second_is_seen(clock: ManualClock) -> None:
    """seen() is False the first time and True while the id is remembered."""
    guard = MemoryReplayGuard(ttl_seconds=10, clock=clock)

    assert guard.seen("a") is False
    assert guard.seen("a") is True
    assert guard.seen("b") is False


def test_ids_expire_after_the_ttl(clock: ManualClock) -> None:
    """After ttl_seconds an id is forgotten and accepted again."""
    guard = MemoryReplayGuard(ttl_seconds=10, clock=clock)
    guard.seen("a")

    clock.advance(9.9)
    assert guard.seen("a") is True
    clock.advance(0.1)
    assert guard.seen("a") is False


def test_oldest_ids_are_evicted_beyond_max_entries(clock: ManualClock) -> None:
    """The guard holds at most max_entries ids, dropping the oldest."""
    guard = MemoryReplayGuard(ttl_seconds=100, max_entries=2, clock=clock)
    for delivery in ("a", "b", "c"):
        guard.seen(delivery)

    assert len(guard) == 2
    assert guard.seen("a") is False
    assert guard.seen("c") is True


def test_discard_lets_a_redelivery_through(clock: ManualClock) -> None:
    """discard() forgets an id so a retry after a failed handler is accepted."""
    guard = MemoryReplayGuard(clock=clock)
    guard.seen("a")

    guard.discard("a")
    guard.discard("never-seen")

    assert guard.seen("a") is False


@pytest.mark.parametrize(
    ("ttl", "entries"), [(0, 1), (-1, 1), (1, 0)], ids=["zero-ttl", "neg", "no-room"]
)
def test_invalid_limits_are_refused(ttl: float, entries: int) -> None:
    """A non-positive TTL or capacity is refused with a ConfigurationError."""
    with pytest.raises(ConfigurationError, match="must be"):
        MemoryReplayGuard(ttl_seconds=ttl, max_entries=entries)


def test_guard_satisfies_the_protocol() -> None:
    """MemoryReplayGuard is a ReplayGuard to the type checker and at runtime."""
    guard: ReplayGuard = MemoryReplayGuard()

    assert guard.seen("x") is False


def test_concurrent_sightings_admit_exactly_one(clock: ManualClock) -> None:
    """Many threads racing on one id: exactly one sees it as new."""
    guard = MemoryReplayGuard(clock=clock)
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def race() -> None:
        barrier.wait()
        results.append(guard.seen("same"))

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False] + [True] * 7


class GuardMachine(RuleBasedStateMachine):
    """Compare the guard with a plain model of expiring, bounded memory."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(start=1_000.0)
        self.guard = MemoryReplayGuard(ttl_seconds=5, max_entries=4, clock=self.clock)
        self.model: dict[str, float] = {}

    def _expire(self) -> None:
        now = self.clock.time()
        self.model = {k: v for k, v in self.model.items() if v > now}

    @rule(delivery=st.sampled_from("abcdef"))
    def see(self, delivery: str) -> None:
        """A sighting agrees with the model, which then records it."""
        self._expire()
        expected = delivery in self.model

        assert self.guard.seen(delivery) is expected
        if not expected:
            self.model[delivery] = self.clock.time() + 5
            while len(self.model) > 4:
                del self.model[min(self.model, key=self.model.__getitem__)]

    @rule(seconds=st.sampled_from([0.0, 1.0, 2.5, 5.0]))
    def wait(self, seconds: float) -> None:
        """Time passes."""
        self.clock.advance(seconds)

    @rule(delivery=st.sampled_from("abcdef"))
    def discard(self, delivery: str) -> None:
        """Discarding forgets the id in both."""
        self.guard.discard(delivery)
        self.model.pop(delivery, None)

    @invariant()
    def sizes_agree(self) -> None:
        """The guard holds exactly the unexpired ids the model holds."""
        self._expire()
        assert len(self.guard) == len(self.model)


GuardMachine.TestCase.settings = settings(max_examples=60, deadline=None)
test_guard_matches_its_model = GuardMachine.TestCase


def test_discarding_the_provider_key_admits_a_retry(clock: ManualClock) -> None:
    """Discarding "<provider>:<event_id>" lets the provider's retry parse again."""
    guard = MemoryReplayGuard(clock=clock)
    verifier = StripeVerifier("whsec_x", clock=clock, replay_guard=guard)
    body = b'{"id": "evt_7", "type": "t"}'
    headers = verifier.sign(body)
    event = verifier.parse(body, headers)

    guard.discard(f"{verifier.provider}:{event.event_id}")

    assert verifier.parse(body, headers).event_id == "evt_7"
