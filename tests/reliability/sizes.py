"""How hard the reliability suite pushes: reduced in `make test`, full on demand.

`make reliability` sets IAP_RELIABILITY=full; everything else runs reduced sizes
so the ordinary test run stays quick.
"""

from __future__ import annotations

import os

FULL = os.environ.get("IAP_RELIABILITY") == "full"


def scaled(full: int, reduced: int) -> int:
    """Return ``full`` under the full suite, ``reduced`` otherwise."""
    return full if FULL else reduced


PRIMARY = 20_000
"""Inputs every parser and verifier gets at full size, summed over its tests."""


def examples(full: int = PRIMARY, reduced: int = 200) -> int:
    """Return the Hypothesis example count for one bad-input test."""
    return scaled(full, reduced)


def auxiliary(full: int = 3_000, reduced: int = 100) -> int:
    """Return the example count for a test beyond a target's main ones."""
    return scaled(full, reduced)
