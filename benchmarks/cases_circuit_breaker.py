"""Circuit breaker, closed path: the cost a healthy call pays for protection."""

from __future__ import annotations

from benchmarks._peers import optional
from benchmarks.harness import Case, Contender, Target
from integration_automation_patterns.circuit_breaker import CircuitBreaker

PEERS = ("circuitbreaker", "pybreaker", "purgatory")


def work() -> int:
    """Stand in for the protected call: as cheap as a call can be."""
    return 1


def cases(scale: float = 1.0) -> list[Case]:
    """Return the closed-path case: ours and each installed peer, decorated."""
    breaker = CircuitBreaker("bench", failure_threshold=5, recovery_timeout=60.0)
    contenders: dict[str, Contender] = {
        "bare call": work,
        "ours": breaker.call(work),
        "ours execute()": lambda: breaker.execute(work),
    }
    contenders.update(_peers())
    return [
        Case(
            "circuit breaker, closed path",
            contenders,
            baseline="bare call",
            # At most half of every peer's overhead is at most half the fastest's.
            targets=[Target(peer, 0.5) for peer in PEERS if peer in contenders],
            number=10_000,
            note=(
                "Each contender wraps the same no-op function with a five-failure,"
                " 60 s breaker, as a decorator (`ours execute()` calls"
                " `breaker.execute(fn)` through a lambda instead). Overhead is the"
                " time per call minus the bare call; the target is half the"
                " fastest peer's overhead, so half of each peer's."
            ),
        )
    ]


def _peers() -> dict[str, Contender]:
    found: dict[str, Contender] = {}

    circuitbreaker = optional("circuitbreaker")
    if circuitbreaker is not None:
        found["circuitbreaker"] = circuitbreaker.CircuitBreaker(
            failure_threshold=5, recovery_timeout=60
        )(work)

    pybreaker = optional("pybreaker")
    if pybreaker is not None:
        found["pybreaker"] = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)(
            work
        )

    purgatory = optional("purgatory")
    if purgatory is not None:
        factory = purgatory.SyncCircuitBreakerFactory(
            default_threshold=5, default_ttl=60
        )
        found["purgatory"] = factory("bench")(work)
    return found
