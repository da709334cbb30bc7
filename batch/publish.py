"""The rename that puts an output in place is the moment a run is done.

A signal (Ctrl-C, SIGTERM) that arrives during the rename is held until the rename is over, so
that the output is either not there or complete and known to be. One that arrives afterwards
(while the Spark engine counts what it wrote, or as the summary is printed) no longer makes the
run an interrupted one: the command says the output is complete and exits 0, since a retried
Job would otherwise find the output and stop with "already exists".
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from training.interrupts import raise_if_interrupted

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_published: list[str] = []


def forget() -> None:
    """A new run starts: nothing of it is published yet."""
    _published.clear()


def published() -> bool:
    """Whether this run's output has been renamed into place."""
    return bool(_published)


@contextmanager
def publishing(output: str) -> Iterator[None]:
    """Rename into place inside this block; a signal meanwhile is raised once it is over."""
    raise_if_interrupted()  # one that came before: nothing is published
    held: list[int] = []
    previous = _hold_signals(held)
    try:
        yield
        _published.append(output)
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
    if held:
        raise KeyboardInterrupt(f"signal {held[0]}")


def _hold_signals(held: list[int]) -> dict[int, Any]:
    """Record SIGINT and SIGTERM in `held` instead of raising; the handlers they replace."""
    if threading.current_thread() is not threading.main_thread():
        return {}  # only the main thread receives Python's signal handlers

    def hold(number: int, _frame: Any) -> None:
        held.append(number)

    return {number: signal.signal(number, hold) for number in _SIGNALS}
