"""The drift report's files: written whole, and an --out that cannot hold them refused first."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.training.test_drift_report import REFERENCE
from training.errors import ConfigError
from training.monitor import main
from training.report_files import check_report_folder, write_report_files


def test_the_report_is_written_whole(tmp_path: Path) -> None:
    out = tmp_path / "a" / "report"
    paths = write_report_files(out, {"level": "ok"}, {"reference": REFERENCE}, "t")
    assert [p.name for p in paths] == ["drift_report.json", "drift_report.png"]
    assert sorted(p.name for p in out.iterdir()) == ["drift_report.json", "drift_report.png"]
    assert json.loads(paths[0].read_text()) == {"level": "ok"}


def test_a_failed_report_keeps_the_previous_one(tmp_path: Path, monkeypatch) -> None:
    write_report_files(tmp_path, {"level": "ok"}, {"reference": REFERENCE}, "t")

    def broken_plot(*args: object) -> None:
        raise RuntimeError("no picture")

    monkeypatch.setattr("training.profile.plot_profiles", broken_plot)
    with pytest.raises(RuntimeError):
        write_report_files(tmp_path, {"level": "critical"}, {"reference": REFERENCE}, "t")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["drift_report.json", "drift_report.png"]
    assert json.loads((tmp_path / "drift_report.json").read_text()) == {"level": "ok"}


def test_the_report_folder_under_a_file_is_a_config_error(tmp_path: Path) -> None:
    afile = tmp_path / "notes.txt"
    afile.write_text("x")
    with pytest.raises(ConfigError, match=f"{afile} is a file"):
        write_report_files(afile / "report", {}, {"reference": REFERENCE}, "t")


def unwritable_folders() -> list[Path]:
    """Folders no one may create files in, root included (as CI and the report ran)."""
    return [folder for folder in (Path("/proc"), Path("/sys/kernel")) if folder.is_dir()]


@pytest.mark.parametrize("folder", unwritable_folders(), ids=str)
@pytest.mark.parametrize("below", ["", "new/deeper"])
def test_an_out_folder_that_cannot_be_written_is_refused(folder: Path, below: str) -> None:
    """An existing one failed after the whole report was computed, exit 1 with a raw OSError."""
    out = folder / below
    with pytest.raises(ConfigError) as refused:
        check_report_folder(out)
    message = str(refused.value)
    assert message.startswith(f"--out {out}: cannot write in {folder} (")
    assert message.endswith(("(permission denied); give a writable folder",
                             "(no such file or directory); give a writable folder"))  # fmt: skip
    assert refused.value.exit_code == 2


def test_an_out_folder_below_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("a file")
    with pytest.raises(ConfigError, match=r"notes.txt is a file; the report is a folder"):
        check_report_folder(tmp_path / "notes.txt" / "sub")


def test_the_check_leaves_nothing_behind(tmp_path: Path) -> None:
    check_report_folder(tmp_path / "new" / "report")
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_out_stops_the_report_before_mlflow_is_read(tmp_path: Path, capsys) -> None:
    (tmp_path / "mlflow.db").touch()  # an empty store: reading it would be exit 3, no champion
    log = tmp_path / "pred.log"
    log.write_text('{"label": "A", "confidence": 0.5}\n')
    out = unwritable_folders()[0] / "report"
    with pytest.raises(SystemExit) as stop:
        main(["report", "--prediction-log", str(log), "--out", str(out),
              "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db"])  # fmt: skip
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"product-monitor: error: --out {out}: cannot write")


CHECK_ON_A_READ_ONLY_MOUNT = """
import sys
from pathlib import Path
from training.errors import ConfigError
from training.report_files import check_report_folder
for out in sys.argv[1:]:
    try:
        check_report_folder(Path(out))
    except ConfigError as error:
        print(error)
"""


def test_a_read_only_mount_is_refused_even_to_root(tmp_path: Path) -> None:
    """The report's case: an existing folder on a read-only file system (root writes anywhere
    else, whatever the permission bits say)."""
    mounted = tmp_path / "ro"
    mounted.mkdir()
    script = tmp_path / "check.py"
    script.write_text(CHECK_ON_A_READ_ONLY_MOUNT)
    outs = [str(mounted), str(mounted / "sub")]
    command = f'mount -t tmpfs -o ro tmpfs "$0" && exec "{sys.executable}" "{script}" "$@"'
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", command, str(mounted), *outs],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[3],
    )  # fmt: skip
    assert done.returncode == 0, f"unshare -m (root, util-linux) could not run it: {done.stderr}"
    assert done.stdout.splitlines() == [
        f"--out {out}: cannot write in {mounted} (read-only file system); give a writable folder"
        for out in outs
    ]
