"""Import the peer packages if they are installed, quietly."""

from __future__ import annotations

import importlib
import warnings
from types import ModuleType


def optional(name: str) -> ModuleType | None:
    """Return module ``name``, or None when its package is not installed.

    Some peers warn on import (deprecated stdlib calls); the warnings are
    theirs, not the benchmark's, and would fail a warnings-as-errors run.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return importlib.import_module(name)
        except ImportError:
            return None
