"""Retry, success path: what a call that succeeds first time pays for retries."""

from __future__ import annotations

from benchmarks._peers import optional
from benchmarks.harness import Case, Contender, Target
from integration_automation_patterns.retry import RetryPolicy, retry


def work() -> int:
    """Stand in for the retried call: it succeeds at once."""
    return 1


def cases(scale: float = 1.0) -> list[Case]:
    """Return the success-path case: three attempts, exponential backoff, all."""
    contenders: dict[str, Contender] = {
        "bare call": work,
        "ours": retry(RetryPolicy(max_attempts=3, backoff_seconds=1.0))(work),
    }
    contenders.update(_peers())
    targets = [
        Target(peer, ratio)
        for peer, ratio in (("tenacity", 0.1), ("stamina", 0.1), ("backoff", 0.5))
        if peer in contenders
    ]
    return [
        Case(
            "retry, success path",
            contenders,
            baseline="bare call",
            targets=targets,
            number=10_000,
            note=(
                "Each contender decorates the same no-op function: three attempts,"
                " exponential backoff, retry on any Exception (stamina with its"
                " default instrumentation). Overhead is the time per call minus"
                " the bare call."
            ),
        )
    ]


def _peers() -> dict[str, Contender]:
    found: dict[str, Contender] = {}

    tenacity = optional("tenacity")
    if tenacity is not None:
        found["tenacity"] = tenacity.retry(
            stop=tenacity.stop_after_attempt(3),
            wait=tenacity.wait_exponential(multiplier=1.0),
        )(work)

    stamina = optional("stamina")
    if stamina is not None:
        found["stamina"] = stamina.retry(on=Exception, attempts=3, wait_initial=1.0)(
            work
        )

    backoff = optional("backoff")
    if backoff is not None:
        found["backoff"] = backoff.on_exception(backoff.expo, Exception, max_tries=3)(
            work
        )
    return found
