"""Options a run does not use are accepted, and named in one warning per group."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.catalog import load_catalog
from training.cli import parse_config

NO_SMOTE = (
    "--smote-strategy, --smote-k-neighbors: no effect with --no-smote (SMOTE is off), ignored"
)


def test_smote_options_with_smote_off_are_accepted_and_named() -> None:
    config, _ = parse_config(
        ["--no-smote", "--smote-strategy", "min:50", "--smote-k-neighbors", "3"]
    )
    assert config.unused_options() == [NO_SMOTE]


def test_a_config_file_holding_both_is_accepted_too(tmp_path: Path) -> None:
    """product-tune's best config holds every option it tuned, SMOTE's included."""
    path = tmp_path / "best.yaml"
    path.write_text("smote: false\nsmote_strategy: min:50\n")
    config, _ = parse_config(["--config", str(path)])
    assert config.unused_options() == [
        "--smote-strategy: no effect with --no-smote (SMOTE is off), ignored"
    ]


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--no-smote"],
        ["--smote", "--smote-strategy", "min:50", "--smote-k-neighbors", "3"],
        ["--small-classes", "other", "--other-label", "misc"],
        ["--task", "multilabel", "--min-tag-count", "5", "--tag-weighting", "rare_tags"],
    ],
)
def test_options_the_run_uses_give_no_warning(argv: list[str]) -> None:
    assert parse_config(argv)[0].unused_options() == []


@pytest.mark.parametrize("task", ["multilabel", "path"])
def test_single_label_options_in_a_tag_run_are_named(task: str) -> None:
    argv = ["--task", task, "--no-smote", "--smote-k-neighbors", "3", "--min-class-size", "4"]
    assert parse_config(argv)[0].unused_options() == [
        f"--smote, --smote-k-neighbors, --min-class-size: no effect with --task {task} "
        "(single_label options; --tag-weighting stands in for SMOTE), ignored"
    ]


@pytest.mark.parametrize(
    ("argv", "warning"),
    [
        (
            ["--min-tag-count", "5", "--trees-per-chunk", "3"],
            "--min-tag-count, --trees-per-chunk: no effect with --task single_label "
            "(multilabel and path options), ignored",
        ),
        (
            ["--tag-weighting", "rare_tags"],
            "--tag-weighting: no effect with --task single_label (multilabel and path options), "
            "ignored",
        ),
        (
            ["--other-label", "misc"],
            "--other-label: no effect with --small-classes drop (nothing is folded), ignored",
        ),
    ],
)
def test_other_options_a_single_label_run_ignores_are_named(argv: list[str], warning: str) -> None:
    assert parse_config(argv)[0].unused_options() == [warning]


def test_loading_the_catalog_logs_each_warning_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "c.jsonl"
    rows = [
        {"asin": f"{label}-{i}", "title": f"{label} tool {i}", "main_cat": label}
        for label in ("games", "science")
        for i in range(12)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    argv = ["--data", str(path), "--no-smote", "--smote-strategy", "min:50"]
    argv += ["--smote-k-neighbors", "3", "--trees-per-chunk", "3"]
    with caplog.at_level("WARNING", logger="training.catalog"):
        load_catalog(parse_config(argv)[0])
    warned = [r.getMessage() for r in caplog.records if "no effect" in r.getMessage()]
    assert warned == [
        NO_SMOTE,
        "--trees-per-chunk: no effect with --task single_label (multilabel and path options), "
        "ignored",
    ]
