"""The drift report's files: `drift_report.json` and `drift_report.png` in the `--out` folder,
checked before any slow work and written both or neither."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from training.errors import ConfigError


def write_report_files(
    folder: Path, report: Mapping[str, Any], profiles: Mapping[str, Any], title: str
) -> list[Path]:
    """Write `drift_report.json` and `drift_report.png` into `folder`, both or neither: each is
    written under a hidden partial name and renamed into place only once both are complete; a
    failure removes the partial files, and the folder if this call created it."""
    from training.profile import plot_profiles

    created = make_folder(folder)
    final = [folder / "drift_report.json", folder / "drift_report.png"]
    partial = [path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}") for path in final]
    try:
        partial[0].write_text(json.dumps(report, indent=1), encoding="utf-8")
        plot_profiles(profiles, partial[1], title)
        for done in (1, 0):  # the JSON last: when it is there, its picture is too
            partial[done].replace(final[done])
    except BaseException as error:
        for path in partial:
            path.unlink(missing_ok=True)
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        if isinstance(error, OSError):
            raise ConfigError(f"--out {folder}: cannot write the report ({error})") from None
        raise
    return final


def check_report_folder(folder: Path) -> None:
    """`folder` can hold the report: a folder, or nothing yet under a folder, where a file can be
    created (tried, as permissions alone do not tell: root may not write on a read-only mount)."""
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(
            f"--out {folder}: {existing} is a file; the report is a folder (drift_report.json "
            "and .png): give a new or existing folder"
        )
    try:
        handle, probe = tempfile.mkstemp(prefix=".drift_report.probe-", dir=existing)
    except OSError as error:
        reason = (error.strerror or str(error)).lower()
        raise ConfigError(
            f"--out {folder}: cannot write in {existing} ({reason}); give a writable folder"
        ) from None
    os.close(handle)
    Path(probe).unlink()


def make_folder(folder: Path) -> Path | None:
    """Create `folder` (and missing parents); returns the topmost folder created, if any."""
    check_report_folder(folder)
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"--out {folder}: cannot create the folder ({error.strerror}); give a writable folder"
        ) from None
    return missing[-1] if missing else None
