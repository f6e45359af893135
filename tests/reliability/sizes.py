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


def examples(full: int = 20_000, reduced: int = 200) -> int:
    """Return the Hypothesis example count for one bad-input target."""
    return scaled(full, reduced)
