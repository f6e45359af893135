"""Count the inputs a Hypothesis bad-input target tried and record them in the ledger.

Put ``@fuzz_target(area, target)`` above ``@given``: the test then also asks for
the session ``ledger`` and, when Hypothesis is done, records how many inputs
reached the code under test and whether only documented errors escaped.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from tests.reliability.conftest import Ledger

Test = Callable[..., None]


def fuzz_target(
    area: str, target: str, *, counts_toward: str | None = None
) -> Callable[[Test], Test]:
    """Return a decorator that records a Hypothesis test's input count.

    ``counts_toward`` names the parser or verifier whose input total the report
    adds this test's inputs to (default: ``area``); ``{name}`` placeholders are
    filled from the test's parameters, so a test parametrized per parser counts
    toward each parser.
    """

    def decorate(test: Test) -> Test:
        handle = test.hypothesis  # type: ignore[attr-defined]
        inner = handle.inner_test
        calls = [0]

        @functools.wraps(inner)
        def counting(*args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            return inner(*args, **kwargs)

        # Hypothesis documents inner_test as the hook for wrapping each example.
        handle.inner_test = counting

        @functools.wraps(test)
        def run(*args: Any, ledger: Ledger, **kwargs: Any) -> None:
            calls[0] = 0
            held = False
            try:
                test(*args, **kwargs)
                held = True
            finally:
                cases = ", ".join(str(value) for value in kwargs.values())
                ledger.record(
                    "bad input",
                    f"{area}: {target}" + (f" [{cases}]" if cases else ""),
                    tried="Hypothesis inputs",
                    outcome=(
                        "only documented errors escaped"
                        if held
                        else "an undocumented error escaped"
                    ),
                    held=held,
                    examples=calls[0],
                    counts_toward=(counts_toward or f"{area}, other checks").format(
                        **kwargs
                    ),
                )

        signature = inspect.signature(test)
        ledger_parameter = inspect.Parameter("ledger", inspect.Parameter.KEYWORD_ONLY)
        run.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*signature.parameters.values(), ledger_parameter]
        )
        return run

    return decorate
