"""A process exiting while a forest walk compiles on a daemon thread waits for the compile (LLVM
torn down under it aborted the process) and starts no new one."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from serving.keeper import _Compiles

ROOT = Path(__file__).resolve().parents[3]


def test_the_process_waits_for_a_compile_under_way_before_it_exits(tmp_path: Path) -> None:
    marker = tmp_path / "compiled"
    script = textwrap.dedent(
        f"""
        import threading, time
        from pathlib import Path
        from serving.keeper import compiles

        inside = threading.Event()

        def compile_slowly():
            with compiles.running():
                inside.set()
                time.sleep(1.0)
                Path({str(marker)!r}).write_text("done")

        threading.Thread(target=compile_slowly, daemon=True).start()
        inside.wait()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert marker.read_text() == "done"  # without the wait, the daemon thread dies mid-sleep


def test_no_compile_starts_once_the_process_exits() -> None:
    compiles = _Compiles()
    with compiles.running() as allowed:
        assert allowed
        waiter = threading.Thread(target=compiles.wait_at_exit, args=(5.0,))
        waiter.start()
        waiter.join(0.2)
        assert waiter.is_alive()  # waits for the compile under way
    waiter.join(5.0)
    assert not waiter.is_alive()
    with compiles.running() as allowed:
        assert not allowed


def test_the_wait_at_exit_is_bounded() -> None:
    compiles = _Compiles()
    with compiles.running():
        assert compiles.wait_at_exit(0.05) is False
