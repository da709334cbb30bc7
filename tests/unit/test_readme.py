"""The README stays true: every option, setting and make target it should list is there."""

from __future__ import annotations

import re
from pathlib import Path

from training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text("utf-8")


def test_every_training_option_is_documented() -> None:
    for name in TrainConfig.model_fields:
        assert f"| `{name}` |" in README, f"training option {name} missing from README"


def test_every_make_target_with_help_is_documented() -> None:
    makefile = (ROOT / "Makefile").read_text("utf-8")
    targets = re.findall(r"^([a-zA-Z0-9_.-]+):.*?## ", makefile, flags=re.MULTILINE)
    assert targets
    for target in targets:
        assert f"make {target}`" in README, f"make target {target} missing from README"


def test_quick_start_commands_come_first() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    assert "make run" in quick_start and "make test" in quick_start
    ci = (ROOT / ".ci" / "run").read_text("utf-8")
    assert re.search(r"^make test$", ci, flags=re.MULTILINE)


def test_every_serving_setting_is_documented() -> None:
    from serving.settings import Settings

    for name in Settings.model_fields:
        assert f"| `{name.upper()}` |" in README, f"serving setting {name.upper()} missing"
