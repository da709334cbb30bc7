"""SIGTERM and Ctrl-C in the command-line tools: an interrupt is never lost."""

from __future__ import annotations

import gc
import os
import signal
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import signal_handlers_restored
from training.interrupts import ignore_further_signals, raise_if_interrupted, stop_on_signals


@pytest.fixture
def handlers() -> Iterator[None]:
    with signal_handlers_restored():
        stop_on_signals()
        yield


class SignalledWhenCollected:
    """Sends SIGTERM from `__del__`: the handler's KeyboardInterrupt is raised there, where
    Python ignores exceptions (as when a signal lands while the garbage collector runs)."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.usefixtures("handlers")
def test_sigterm_interrupts_at_once() -> None:
    with pytest.raises(KeyboardInterrupt, match="signal 15"):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1_000_000):  # the handler runs at the next bytecode boundary
            pass


@pytest.mark.usefixtures("handlers")
def test_an_interrupt_swallowed_in_a_finalizer_is_raised_at_the_next_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ignored: list[Any] = []  # what Python prints as "Exception ignored in ..."
    monkeypatch.setattr(sys, "unraisablehook", ignored.append)
    raise_if_interrupted()  # nothing yet
    SignalledWhenCollected()  # collected at once: the interrupt is raised in __del__, ignored
    gc.collect()
    assert [u.exc_type for u in ignored] == [KeyboardInterrupt]
    with pytest.raises(KeyboardInterrupt, match="signal 15"):
        raise_if_interrupted()


@pytest.mark.usefixtures("handlers")
def test_ctrl_c_is_recorded_too() -> None:
    with pytest.raises(KeyboardInterrupt, match="signal 2"):
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1_000_000):
            pass
    with pytest.raises(KeyboardInterrupt):
        raise_if_interrupted()


@pytest.mark.usefixtures("handlers")
def test_a_second_signal_does_not_interrupt_the_exit() -> None:
    ignore_further_signals()
    os.kill(os.getpid(), signal.SIGTERM)
    os.kill(os.getpid(), signal.SIGINT)
    raise_if_interrupted()  # ignored signals are not recorded either
