"""What uvicorn imports when it runs several workers: each worker builds its app from the
environment (already validated by `serving.__main__`). Importing this module does no work."""

from __future__ import annotations

from fastapi import FastAPI

from serving.api import create_app
from serving.logs import configure_logging
from serving.settings import Settings


def app_from_environment() -> FastAPI:
    """uvicorn factory: `uvicorn --factory serving.app:app_from_environment`."""
    settings = Settings()
    configure_logging(settings.log_level)
    return create_app(settings)
