"""Print the project's runtime requirements plus the named extras, one per line.

The Dockerfiles install these (pinned by constraints.txt) in a layer of their own, before the
source is copied, so that changing the code does not reinstall the dependencies:

    python3 scripts/containers/project_requirements.py serve > /tmp/requirements.txt
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path


def project_requirements(pyproject: Path, extras: list[str]) -> list[str]:
    """`[project].dependencies` followed by each extra's list, in order."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    optional = project.get("optional-dependencies", {})
    unknown = sorted(set(extras) - set(optional))
    if unknown:
        raise SystemExit(f"unknown extra(s) {unknown}; pyproject.toml has {sorted(optional)}")
    requirements = list(project.get("dependencies", []))
    for extra in extras:
        requirements.extend(optional[extra])
    return requirements


if __name__ == "__main__":
    print("\n".join(project_requirements(Path("pyproject.toml"), sys.argv[1:])))
