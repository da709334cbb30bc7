"""Start-up speed: Python's full garbage collections are postponed from process start until the
first model load attempt has ended.

Importing MLflow, scikit-learn and the model's code, then unpickling the model, creates a few
hundred thousand long-lived objects, and each full collection walks all of them again while the
heap grows: about a tenth of the start-up's CPU time. Young collections go on (most garbage is
young and cheap to find), so nothing is left behind; the keeper resumes full collections after
the first attempt, just after its own full collection (`serving.keeper.settle_heap`).
"""

from __future__ import annotations

import gc

# A gen-2 (full) collection runs when this many gen-1 collections have run since the last one.
NEVER = 1 << 30

_postponed_threshold: int | None = None


def postpone_full_collections() -> None:
    """No full collection until `resume_full_collections()` (young ones go on)."""
    global _postponed_threshold
    if _postponed_threshold is None:
        young, middle, full = gc.get_threshold()
        _postponed_threshold = full
        gc.set_threshold(young, middle, NEVER)


def resume_full_collections() -> None:
    """Full collections as before `postpone_full_collections()` (no-op if not postponed)."""
    global _postponed_threshold
    if _postponed_threshold is not None:
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, _postponed_threshold)
        _postponed_threshold = None
