"""A loop's cycle returns a one-line verdict (DESIGN: "Each cycle returns a one-line verdict
that is logged and that tests can assert on"); this runs one and logs it when it changes."""

from __future__ import annotations

import logging
from collections.abc import Callable


def run_cycle(cycle: Callable[[], str], last: str, log: logging.Logger, label: str) -> str:
    """Run one cycle whatever it meets (the loop must survive anything; the exception is
    logged) and return its verdict, logged if it differs from `last`."""
    try:
        verdict = cycle()
    except Exception:
        log.exception("%s cycle failed", label)
        verdict = "cycle failed"
    if verdict != last:
        log.info("%s: %s", label, verdict)
    return verdict
