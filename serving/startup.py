"""Start-up speed: Python's cyclic garbage collector is paused from process start until the first
model load attempt has ended.

Importing MLflow, scikit-learn and the model's code, then unpickling the model, creates a few
hundred thousand long-lived objects, and the collector walks them all again and again while they
are created: about a sixth of the start-up's CPU time. Nothing at start-up depends on cycles being
freed early; the keeper resumes the collector after the first attempt (and collects once after
every model swap, see `serving.keeper.settle_heap`).
"""

from __future__ import annotations

import gc

_paused = False


def pause_garbage_collection() -> None:
    """Stop automatic collections until `resume_garbage_collection()` (no-op if already off)."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume_garbage_collection() -> None:
    """Turn automatic collections back on if `pause_garbage_collection()` turned them off."""
    global _paused
    if _paused:
        _paused = False
        gc.enable()
