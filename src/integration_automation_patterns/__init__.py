"""Reliability patterns for enterprise integration.

Every pattern lives in its own module that depends only on the standard library
and ``_types``; this package root re-exports their public names.
"""

from ._types import (
    SYSTEM_CLOCK,
    Clock,
    IntegrationError,
    Jitter,
    JSONObject,
    JSONValue,
    ManualClock,
    RetryPolicy,
    new_event_id,
)

__version__ = "0.3.0.dev0"

__all__ = [
    "SYSTEM_CLOCK",
    "Clock",
    "IntegrationError",
    "JSONObject",
    "JSONValue",
    "Jitter",
    "ManualClock",
    "RetryPolicy",
    "__version__",
    "new_event_id",
]
