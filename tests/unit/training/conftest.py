"""Fixtures shared by the training unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import signal_handlers_restored
from training.interrupts import stop_on_signals


@pytest.fixture
def signals_since_now() -> Iterator[None]:
    """A trial checks for signals its fits swallowed (`raise_if_interrupted`): count only those
    sent during this test, as `product-tune` counts those since it started."""
    with signal_handlers_restored():
        stop_on_signals()
        yield
