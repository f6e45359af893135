"""The benchmark runner: every case runs for ours and each installed peer."""

from __future__ import annotations

import importlib.util

import pytest
from benchmarks import __main__ as runner
from benchmarks.harness import Case, RateTarget, Result, Target, measure


@pytest.fixture(scope="module")
def results() -> list[Result]:
    """Run every case once at the tiny size, without writing the report."""
    return runner.run(["--quick"])


def test_every_case_module_contributes(results: list[Result]) -> None:
    """Each case module yields at least one case that ran."""
    names = " ".join(r.case.name for r in results)
    for word in ("circuit breaker", "retry", "webhook", "CloudEvents", "Debezium"):
        assert word in names
    for word in ("murmur2", "outbox enqueue", "outbox relay", "saga"):
        assert word in names


def test_no_contender_failed(results: list[Result]) -> None:
    """No contender, ours or a peer, raised while it was timed."""
    failures = {r.case.name: r.errors for r in results if r.errors}
    assert failures == {}


def test_ours_and_every_contender_were_timed(results: list[Result]) -> None:
    """Every contender of every case has a median, ours included."""
    for result in results:
        assert result.case.ours in result.medians, result.case.name
        assert set(result.medians) == set(result.case.contenders), result.case.name


@pytest.mark.parametrize(
    ("package", "contender"),
    [
        ("circuitbreaker", "circuitbreaker"),
        ("pybreaker", "pybreaker"),
        ("purgatory", "purgatory"),
        ("tenacity", "tenacity"),
        ("stamina", "stamina"),
        ("backoff", "backoff"),
        ("stripe", "stripe SDK"),
        ("standardwebhooks", "standardwebhooks SDK"),
        ("cloudevents", "cloudevents SDK"),
        ("kafka", "kafka-python"),
    ],
)
def test_installed_peer_is_timed(
    results: list[Result], package: str, contender: str
) -> None:
    """A peer that is installed takes part in at least one case."""
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed")
    timed = [r.case.name for r in results if contender in r.medians]
    assert timed, f"{contender} took part in no case"


def test_every_target_names_a_contender(results: list[Result]) -> None:
    """Targets refer to contenders of their case, so a verdict is never n/a."""
    for result in results:
        for target in result.case.targets:
            name = target.peer if isinstance(target, Target) else target.contender
            assert name in result.case.contenders, (result.case.name, name)
        assert all(v.met is not None for v in result.verdicts())


def test_report_renders_every_case(results: list[Result]) -> None:
    """The report names the machine, every case and closes with the ratios."""
    report = runner.render_report(results, repeats=2)

    assert "## Machine" in report
    for result in results:
        assert f"### {result.case.name}" in report
    assert "## Closing note" in report


def test_overhead_subtracts_the_baseline() -> None:
    """Cost is time minus the bare call, and the ratio compares costs."""
    case = Case("c", {"bare": lambda: None, "ours": lambda: None, "peer": lambda: 1})
    case.baseline = "bare"
    result = Result(case, {"bare": 1.0, "ours": 2.0, "peer": 5.0}, {})

    assert result.cost("ours") == pytest.approx(1.0)
    assert result.ratio("peer") == pytest.approx(0.25)


def test_rate_target_compares_items_per_second() -> None:
    """A rate target is met when the contender handles enough items per second."""
    case = Case(
        "c",
        {"ours": lambda: None},
        items=100,
        targets=[RateTarget("ours", 1_000), RateTarget("ours", 1_000_000)],
    )
    verdicts = Result(case, {"ours": 0.01}, {}).verdicts()

    assert [v.met for v in verdicts] == [True, False]


def test_setup_runs_outside_the_timer_before_every_call() -> None:
    """A case's setup runs before each timed call and teardown once at the end."""
    events: list[str] = []
    case = Case(
        "c",
        {"ours": lambda: events.append("call")},
        number=2,
        setup=lambda: events.append("setup"),
        teardown=lambda: events.append("teardown"),
        warmup=False,
    )
    measure(case, repeats=2)

    assert events == ["setup", "call"] * 4 + ["teardown"]
