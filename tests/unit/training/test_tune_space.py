"""The search space: the packaged default, what a trial draws, and one clear error per bad file."""

from __future__ import annotations

import logging
from pathlib import Path

import optuna
import pytest

from training.cli import parse_config
from training.config import TrainConfig
from training.errors import ConfigError
from training.tuning.space import SINGLE_LABEL_ONLY, TUNABLE, default_space_path, load_space
from training.tuning.space_kinds import WHOLE_NUMBER_OPTIONS, named_choices


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_default_space_covers_what_the_issue_names_and_validates() -> None:
    space = load_space(None, TrainConfig())
    expected = {
        "n_estimators",
        "max_depth",
        "max_features",
        "min_samples_leaf",
        "smote_strategy",
        "text_max_features",
        "text_ngram_max",
        "id_ngram_min",
        "id_ngram_max",
        "select_k_best",
    }
    assert expected <= set(space.root) <= set(TUNABLE)
    assert default_space_path().is_file()


def test_every_drawn_set_of_options_is_a_valid_training_config() -> None:
    space = load_space(None, TrainConfig())
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(30):
        trial = study.ask()
        params = space.suggest(trial)
        config = TrainConfig.model_validate(TrainConfig().model_dump() | params)
        assert config.id_ngram_min <= config.id_ngram_max
        for name, value in params.items():
            assert space.root[name].contains(value), (name, value)
        study.tell(trial, 0.5)


def test_a_narrower_file_replaces_the_default(tmp_path: Path) -> None:
    path = write(tmp_path, "n_estimators: {type: int, low: 10, high: 20, step: 5}\n")
    space = load_space(path, TrainConfig())
    assert list(space.root) == ["n_estimators"]
    assert space.root["n_estimators"].contains(15)
    assert not space.root["n_estimators"].contains(12)
    assert not space.root["n_estimators"].contains(25)


def test_contains_tells_types_apart(tmp_path: Path) -> None:
    path = write(tmp_path, "max_depth: {type: categorical, choices: [null, 40]}\n")
    choice = load_space(path, TrainConfig()).root["max_depth"]
    assert choice.contains(None) and choice.contains(40)
    assert not choice.contains("40") and not choice.contains(41)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("n_estimators: [100, 200\n", "is not valid YAML"),
        ("- n_estimators\n", "must be a non-empty mapping"),
        ("", "must be a non-empty mapping"),
        ("n_estimators: {type: int, low: 300, high: 100}\n", "n_estimators: Value error, low"),
        ("n_estimators: {type: integer, low: 1, high: 2}\n", "n_estimators: Input tag 'integer'"),
        ("n_estimators: {type: int, low: 1}\n", "n_estimators.high: Field required"),
        ("n_estimators: {type: int, low: 1, high: 9, spread: 2}\n", "Extra inputs"),
        ("text_max_features: {type: int, low: 0, high: 9, log: true}\n", "needs low > 0"),
        ("max_features: {type: categorical, choices: []}\n", "at least 1 item"),
        ("max_features: {type: categorical, choices: [sqrt, sqrt]}\n", "must not repeat"),
        ("seed: {type: int, low: 1, high: 9}\n", "seed cannot be tuned"),
        ("data: {type: categorical, choices: [a.csv]}\n", "data cannot be tuned"),
        ("max_features: {type: categorical, choices: [sqrt, cube]}\n", "'cube' is not a valid"),
        ("min_samples_leaf: {type: int, low: 0, high: 3}\n", "min_samples_leaf: 0 is not"),
        ("smote_strategy: {type: categorical, choices: ['share:2']}\n", "'share:2' is not"),
        ("id_ngram_min: {type: int, low: 2, high: 6}\n", "keep every id_ngram_min <= every"),
        (
            "n_estimators: {type: int, low: 1, high: 2}\nmax_depth: {type: int, low: 2, high: 9}"
            "\nn_estimators: {type: int, low: 5, high: 9}\n",
            "lines 1 and 3: 'n_estimators' is given twice; keep one of the two",
        ),
        (
            "n_estimators: {type: int, low: 1, high: 2, low: 5}\n",
            "line 1: 'low' (in 'n_estimators') is given twice",
        ),
        (
            "max_depth:\n  type: int\n  low: 2\n  high: 9\n  type: categorical\n",
            "lines 2 and 5: 'type' (in 'max_depth') is given twice",
        ),
    ],
)
def test_a_bad_file_gets_one_clear_message(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_space(path, TrainConfig())
    message = str(raised.value)
    assert expected in message
    assert str(path) in message
    assert "\n" not in message
    assert raised.value.exit_code == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "min_samples_leaf: {type: float, low: 1, high: 3}\n",
            "min_samples_leaf is a whole number, so a float range would draw fractions such as "
            "1.74; write min_samples_leaf: {type: int, low: 1, high: 3}",
        ),
        (
            "n_estimators: {type: float, low: 20.5, high: 60, log: true}\n",
            "write n_estimators: {type: int, low: 21, high: 60, log: true}",
        ),
        ("max_depth: {type: float, low: 2, high: 9}\n", "max_depth is a whole number"),
        (
            "min_samples_leaf: {type: categorical, choices: [1.0, '2', 3]}\n",
            "min_samples_leaf is a whole number, but its choice(s) [1.0, '2'] are not written as "
            "one; write each without quotes or decimals, e.g. choices: [1, 2, 3]",
        ),
        (
            "max_features: {type: float, low: 0.05, high: 1.0}\n",
            "max_features: a float range draws fractions of the features, so it must stay below 1",
        ),
        (
            "stemmer: {type: int, low: 0, high: 2}\n",
            "stemmer takes one of [english, spanish, none], not a number range; write stemmer: "
            "{type: categorical, choices: [english, spanish, none]}",
        ),
        ("smote: {type: int, low: 0, high: 1}\n", "choices: [true, false]}"),
        ("smote_strategy: {type: float, low: 0.01, high: 0.2}\n", "takes text values such as"),
    ],
)
def test_a_range_of_the_wrong_kind_is_refused_saying_what_to_write(
    tmp_path: Path, text: str, expected: str
) -> None:
    """pydantic takes 1.0 and 3.0 for a whole number, so checking a range's ends passed a float
    range that then drew 1.74 (exit 1, a pydantic error, on every resume)."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_space(path, TrainConfig())
    message = str(raised.value)
    assert message.startswith(f"search space {path}: ") and expected in message
    assert "\n" not in message and raised.value.exit_code == 2


def test_the_kinds_checked_cover_every_tunable_option(tmp_path: Path) -> None:
    named = set(TUNABLE) - WHOLE_NUMBER_OPTIONS - {"max_features"}
    assert all(named_choices(name) for name in named), named
    defaults = TrainConfig().model_dump()
    assert all(isinstance(defaults[name], int | None) for name in WHOLE_NUMBER_OPTIONS)
    fitting = (
        "max_features: {type: float, low: 0.01, high: 0.5}\nmin_df: {type: int, low: 1, high: 3}"
    )
    assert set(load_space(write(tmp_path, fitting), TrainConfig()).root) == {
        "max_features",
        "min_df",
    }


def test_a_missing_file_names_itself(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read search space .*nowhere\.yaml"):
        load_space(tmp_path / "nowhere.yaml", TrainConfig())


def test_crossing_is_checked_against_the_fixed_options_too(tmp_path: Path) -> None:
    path = write(tmp_path, "id_ngram_max: {type: int, low: 3, high: 6}\n")
    load_space(path, TrainConfig(id_ngram_min=3))
    with pytest.raises(ConfigError, match="id_ngram_min is fixed at 4 but id_ngram_max can be"):
        load_space(path, TrainConfig(id_ngram_min=4))


def test_options_the_user_gave_in_a_config_file_or_on_the_command_line_are_not_tuned(
    tmp_path: Path,
) -> None:
    config = tmp_path / "configs" / "shop.yaml"
    config.parent.mkdir()
    config.write_text("n_estimators: 5\nselect_k_best: 2000\nmax_depth: null\n")
    base, _ = parse_config(["--config", str(config), "--min-samples-leaf", "2"])
    space = load_space(None, base)
    fixed = {"n_estimators", "select_k_best", "max_depth", "min_samples_leaf"}
    assert fixed <= set(load_space(None, TrainConfig()).root)
    assert not fixed & set(space.root)
    assert "max_features" in space.root  # the rest is still searched


def test_a_space_whose_every_option_is_fixed_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "n_estimators: {type: int, low: 10, high: 20}\n")
    with pytest.raises(ConfigError, match=r"every option in it is fixed .*\(n_estimators\)"):
        load_space(path, TrainConfig(n_estimators=5))


def test_each_task_searches_only_the_options_that_shape_its_model(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    single = set(load_space(None, TrainConfig()).root)
    tags = set(load_space(None, TrainConfig(task="multilabel")).root)
    assert "smote_strategy" in single and "tag_weighting" not in single
    assert "tag_weighting" in tags and not tags & set(SINGLE_LABEL_ONLY)
    assert tags - {"tag_weighting"} == single - {"smote_strategy"}

    path = write(
        tmp_path,
        "smote_k_neighbors: {type: int, low: 3, high: 7}\n"
        "class_weight: {type: categorical, choices: [balanced, none]}\n"
        "n_estimators: {type: int, low: 10, high: 20}\n",
    )
    with caplog.at_level(logging.INFO, logger="training.tuning.space"):
        space = load_space(path, TrainConfig(task="path"))
    assert list(space.root) == ["n_estimators"]
    assert "left out for --task path: smote_k_neighbors (SMOTE is not defined" in caplog.text


def test_a_space_with_nothing_for_the_task_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "smote_strategy: {type: categorical, choices: ['share:0.1']}\n")
    with pytest.raises(ConfigError, match=r"none of its options applies to --task multilabel"):
        load_space(path, TrainConfig(task="multilabel"))
