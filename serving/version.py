"""The project's version, defined once: `version` in pyproject.toml.

The serving image installs the project's requirements and copies `serving/`, not the project
itself, so it has no package metadata to ask: the image bakes the version in as `APP_VERSION`
(from the `VERSION` build argument that `make image-serve` takes from pyproject.toml). Where the
project is installed (`make install`), its metadata answers.
"""

from __future__ import annotations

import os
from importlib import metadata

DISTRIBUTION = "product-categorization"
UNKNOWN = "0+unknown"


def app_version() -> str:
    """APP_VERSION if set, else the installed distribution's version, else 0+unknown."""
    baked = os.environ.get("APP_VERSION", "").strip()
    if baked:
        return baked
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return UNKNOWN
