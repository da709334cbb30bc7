"""The multiprocess view of /metrics: files of several workers, one being created."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.mmap_dict import MmapedDict

from serving.metrics import WorkerFilesCollector


def write_counter(folder: Path, pid: int, value: float) -> None:
    """A worker's counter file as prometheus-client's multiprocess mode writes it."""
    values = MmapedDict(str(folder / f"counter_{pid}.db"))
    key = json.dumps(["answers", "answers_total", {"route": "/v1/predict"}, "Answers."])
    values.write_value(key, value, 0.0)
    values.close()


def total(collector: multiprocess.MultiProcessCollector) -> float:
    family = next(f for f in collector.collect() if f.name == "answers")
    return sum(s.value for s in family.samples if s.name == "answers_total")


def test_a_file_being_created_is_skipped(tmp_path: Path) -> None:
    write_counter(tmp_path, 101, 3)
    write_counter(tmp_path, 102, 4)
    (tmp_path / "counter_103.db").touch()  # opened by a starting worker, not yet sized
    with pytest.raises(struct.error):  # what a scrape at that instant answered: a 500
        total(multiprocess.MultiProcessCollector(None, path=str(tmp_path)))
    assert total(WorkerFilesCollector(CollectorRegistry(), path=str(tmp_path))) == 7


def test_every_worker_is_summed(tmp_path: Path) -> None:
    for pid, value in ((1, 1.0), (2, 2.5), (3, 0.5)):
        write_counter(tmp_path, pid, value)
    assert total(WorkerFilesCollector(None, path=str(tmp_path))) == 4.0
