"""The errors a training run reports to its user: one message, one exit code, no traceback."""

from __future__ import annotations


class TrainingError(Exception):
    """Base of the errors the CLI prints as one line and turns into an exit code."""

    exit_code = 1


class ConfigError(TrainingError):
    """An option or config file is invalid."""

    exit_code = 2


class DataError(TrainingError):
    """The catalog cannot be read or has nothing to train on."""

    exit_code = 3


class TrackingError(TrainingError):
    """The MLflow tracking server or registry cannot be reached."""

    exit_code = 4


class TrackingRefusedError(TrackingError):
    """The MLflow tracking server or registry answered, and refused a request."""

    exit_code = 5
