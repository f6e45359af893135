"""Collect the reliability suite's figures and, on request, publish them.

Each check records one row through the ``ledger`` fixture: what it targeted,
what it tried, what held, and its figures (inputs, kills, lost, duplicates and
their bound, order violations, seconds, throughput). With
``IAP_RELIABILITY_REPORT`` naming a file (``make reliability`` sets it to
docs/reliability.md) the rows are written there as tables when the session ends.

Under pytest-xdist every worker is its own process with its own ledger, so each
worker also appends its rows as JSON lines to a directory of this run under
``build/reliability-rows/``; the controller creates it empty when the session
starts and merges the files when it ends. A plain run keeps its rows in memory.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

from tests.reliability.sizes import FULL

ROWS_DIRECTORY = Path("build") / "reliability-rows"
ROWS_VARIABLE = "IAP_RELIABILITY_ROWS"
COMMAND = (
    "IAP_RELIABILITY=full IAP_RELIABILITY_REPORT=docs/reliability.md"
    " pytest -q -n 2 --timeout=1800 tests/reliability"
)
AREAS = ("bad input", "crash", "concurrency", "load", "planted fault")
FIGURES = {
    "counts_toward": "counts toward",
    "examples": "inputs",
    "kills": "kills",
    "records": "records",
    "lost": "lost",
    "duplicates": "duplicates on the wire",
    "bound": "duplicate bound",
    "redeliveries": "redeliveries",
    "duplicate_effects": "duplicate effects",
    "order_violations": "order violations",
    "seconds": "seconds",
    "throughput": "records/s",
}
"""Figure keys in the order and with the column titles the report uses."""
NOT_ADDED = {"throughput"}
"""Figures a summary must not add up across rows."""


@dataclass
class Row:
    """One reliability check's figures."""

    area: str
    target: str
    tried: str
    outcome: str
    held: bool
    figures: dict[str, object] = field(default_factory=dict)


class Ledger:
    """Rows recorded by the checks of one test process."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.spool: Path | None = None

    def record(
        self,
        area: str,
        target: str,
        *,
        tried: str,
        outcome: str,
        held: bool,
        **figures: object,
    ) -> None:
        """Add one row; ``held`` says whether the invariant survived."""
        row = Row(area, target, tried, outcome, held, dict(figures))
        self.rows.append(row)
        if self.spool is not None:
            with self.spool.open("a", encoding="utf-8") as spool:
                spool.write(json.dumps(asdict(row)) + "\n")


_LEDGER = Ledger()
_STARTED = time.monotonic()


def rows_directory(config: pytest.Config) -> Path:
    """Return where this run's xdist workers leave their rows for the controller.

    Each run gets its own directory (named by the controller's pid, passed to
    the workers it spawns through the environment) so two runs in one checkout
    never merge or clear each other's rows.
    """
    run = os.environ.get(ROWS_VARIABLE) or f"run-{os.getpid()}"
    return config.rootpath / ROWS_DIRECTORY / run


def is_worker(config: pytest.Config) -> bool:
    """Say whether this process is a pytest-xdist worker."""
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    """Start this run's rows directory empty; make a worker spool its rows there."""
    if is_worker(config):
        worker = config.workerinput["workerid"]  # type: ignore[attr-defined]
        _LEDGER.spool = rows_directory(config) / f"{worker}.jsonl"
        return
    os.environ[ROWS_VARIABLE] = f"run-{os.getpid()}"
    directory = rows_directory(config)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="session")
def ledger() -> Ledger:
    """The process's ledger of reliability figures."""
    return _LEDGER


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Merge every process's rows and write the report IAP_RELIABILITY_REPORT names."""
    if is_worker(session.config):
        return
    directory = rows_directory(session.config)
    rows = [*_LEDGER.rows, *spooled_rows(directory)]
    shutil.rmtree(directory, ignore_errors=True)
    target = os.environ.get("IAP_RELIABILITY_REPORT")
    if target and rows:
        Path(target).write_text(render(rows, exitstatus), encoding="utf-8")


def spooled_rows(directory: Path) -> list[Row]:
    """Read the rows the xdist workers wrote to ``directory``."""
    rows: list[Row] = []
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rows.append(Row(**json.loads(line)))
    return rows


def render(rows: list[Row], exitstatus: int) -> str:
    """Return the Markdown report for ``rows``."""
    minutes = (time.monotonic() - _STARTED) / 60
    sizes = "full" if FULL else "reduced"
    machine = f"{platform.platform()}, {os.cpu_count()} cores"
    held = sum(row.held for row in rows)
    lines = [
        "# Reliability",
        "",
        "Generated by `make reliability`; do not edit by hand. It runs",
        f"`{COMMAND}`;",
        "`make test` runs the same checks at reduced sizes.",
        "",
        f"- Sizes: {sizes}; suite exit status {exitstatus}; {minutes:.1f} minutes.",
        f"- Python {platform.python_version()} on {machine}.",
        f"- {held} of {len(rows)} checks held.",
        "",
        "## Summary",
        "",
        *summary(rows),
    ]
    for area in ordered_areas(rows):
        lines += ["", f"## {area.capitalize()}", ""]
        lines += area_table(sorted_rows(r for r in rows if r.area == area))
    return "\n".join(lines) + "\n"


def ordered_areas(rows: list[Row]) -> list[str]:
    """Return the areas present in ``rows``, the known ones first."""
    present = {row.area for row in rows}
    return [a for a in AREAS if a in present] + sorted(present - set(AREAS))


def sorted_rows(rows: Iterable[Row]) -> list[Row]:
    """Return ``rows`` in a stable order: by target, then by what was tried."""
    return sorted(rows, key=lambda row: (row.target, row.tried))


def summary_group(row: Row) -> str:
    """Name the group a row is added up under in the summary."""
    if row.area == "bad input":
        return str(row.figures.get("counts_toward", row.target.split(":")[0]))
    return "all checks"


def summary(rows: list[Row]) -> list[str]:
    """Return the per-area summary table: checks held and summed figures."""
    groups: dict[tuple[str, str], list[Row]] = {}
    for area in ordered_areas(rows):
        for row in sorted_rows(r for r in rows if r.area == area):
            groups.setdefault((area, summary_group(row)), []).append(row)
    lines = [
        "| area | target | checks held | totals |",
        "| --- | --- | --- | --- |",
    ]
    for (area, group), members in groups.items():
        held = sum(row.held for row in members)
        mark = "" if held == len(members) else " **(failed)**"
        totals = "; ".join(
            f"{FIGURES[key]} {number(total)}"
            for key in FIGURES
            if key not in NOT_ADDED and (total := added(members, key)) is not None
        )
        lines.append(
            f"| {area} | {group} | {held} of {len(members)}{mark} | {totals or '-'} |"
        )
    return lines


def added(rows: list[Row], key: str) -> float | None:
    """Return the sum of figure ``key`` over the ``rows`` that carry it."""
    values = [row.figures[key] for row in rows if key in row.figures]
    numbers = [v for v in values if isinstance(v, (int, float))]
    return sum(numbers) if numbers else None


def area_table(rows: list[Row]) -> list[str]:
    """Return one area's table with a column per figure its rows carry."""
    keys = [key for key in FIGURES if any(key in row.figures for row in rows)]
    # A column every row fills alike (how bad input was tried) says nothing.
    tried = len({row.tried for row in rows}) > 1
    header = [
        "target",
        *(["tried"] if tried else []),
        *(FIGURES[key] for key in keys),
        "outcome",
        "held",
    ]
    lines = [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
    ]
    for row in rows:
        cells = [
            row.target,
            *([row.tried] if tried else []),
            *(number(row.figures.get(key)) for key in keys),
            row.outcome,
            "yes" if row.held else "**no**",
        ]
        lines.append(
            "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"
        )
    return lines


def number(value: object) -> str:
    """Format a figure: thousands separated, one decimal for fractions."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"
