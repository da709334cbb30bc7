"""A run's long steps, logged and timed, with an interrupt checked at each end."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from training.interrupts import raise_if_interrupted

log = logging.getLogger(__name__)


@contextmanager
def stage(name: str, timings: dict[str, float], key: str | None = None) -> Iterator[None]:
    """Log the start and duration of a long step, timed under `key` (default: `name`): a key
    without sizes or addresses, so that runs log the same `time_*` metrics."""
    raise_if_interrupted()
    log.info("%s ...", name)
    start = time.perf_counter()
    yield
    raise_if_interrupted()
    timings[key or name] = seconds = time.perf_counter() - start
    log.info("%s done in %.1fs", name, seconds)
