"""SIGTERM and Ctrl-C for the command-line tools: stop now, and never let an interrupt slip by.

The handler raises `KeyboardInterrupt` wherever the main thread is, so a long step stops at once
and its cleanup (`finally`, `except BaseException`) runs. Python ignores an exception raised in a
`__del__` method or a weakref callback (it prints "Exception ignored in ..."), so an interrupt
that arrives while the garbage collector runs one of those is lost. The handler therefore also
records the signal, and `raise_if_interrupted()` raises it again at the points where a run
publishes something (before a model is registered or an alias moved, between chunks, before an
output file is renamed into place).
"""

from __future__ import annotations

import signal
from typing import Any, NoReturn

_received: list[int] = []


def _interrupt(signum: int, _frame: Any) -> NoReturn:
    _received.append(signum)
    raise KeyboardInterrupt(f"signal {signum}")


def stop_on_signals() -> None:
    """SIGTERM and SIGINT interrupt the main thread (call from the main thread)."""
    _received.clear()
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)


def raise_if_interrupted() -> None:
    """`KeyboardInterrupt` if a signal arrived since `stop_on_signals()`, even one whose first
    `KeyboardInterrupt` was swallowed."""
    if _received:
        raise KeyboardInterrupt(f"signal {_received[0]}")


def ignore_further_signals() -> None:
    """Once the run is stopping, a second signal must not interrupt its exit."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
