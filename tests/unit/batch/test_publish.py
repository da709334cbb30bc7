"""The rename that puts an output in place, under real signals sent to this process."""

from __future__ import annotations

import os
import signal

import pytest

from batch import publish
from training.interrupts import stop_on_signals


@pytest.fixture(autouse=True)
def _nothing_published() -> None:
    publish.forget()


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_rename_waits_for_it(number: int) -> None:
    """It interrupted the run between the rename and its end: exit 130 for a complete output."""
    stop_on_signals()  # as the command line does
    before = signal.getsignal(number)
    steps = []
    with pytest.raises(KeyboardInterrupt), publish.publishing("labels.csv"):
        os.kill(os.getpid(), number)
        steps.append("renamed")  # not cut short
    assert steps == ["renamed"] and publish.published()
    assert signal.getsignal(number) is before


def test_a_signal_that_came_before_publishes_nothing() -> None:
    """One swallowed earlier (as in a finalizer) still stops the run before the rename."""
    stop_on_signals()
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), publish.publishing("labels.csv"):
        pytest.fail("renamed after an interrupt")
    assert not publish.published()
    stop_on_signals()  # forget the signal, for the tests after this one
