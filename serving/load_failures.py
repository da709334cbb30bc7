"""Why no model serves, in words a client may read (/readyz, the 503s, /v1/model).

A misspelled MODEL_NAME or a server pointed at the wrong store is the usual first-hour mistake,
so the reason names what the settings ask for. Exception text and the store's address (a
registry's host is an internal address) stay in the logs, which name them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from serving.errors import ARTIFACT_MISSING, LOAD_ERROR, REGISTRY_MISS, REGISTRY_REFUSED
from serving.model import ModelRef
from serving.settings import REGISTRY_URI, Settings

REGISTRY_MISS_WORDS = "is not in the model registry (the server's log names the store asked)"


@dataclass(frozen=True)
class LoadFailure:
    """The last failed attempt to serve what the settings ask for."""

    ref: ModelRef | None  # None when the registry could not say which version
    reason: str  # one of serving.errors.LOAD_FAILURE_REASONS
    message: str  # in user terms, for /readyz and /v1/model
    at: float  # Unix time
    detail: str = ""  # for the logs only: may name URLs and exceptions

    def as_dict(self) -> dict[str, Any]:
        version = self.ref.version if self.ref else None
        return {"version": version, "reason": self.reason, "message": self.message, "at": self.at}


def public_reason(kind: str, settings: Settings, ref: ModelRef | None) -> str:
    """The reason of a failure of `kind` to serve what `settings` ask for (`ref`, once the
    registry named a version): "'shop@champion' is not in the model registry (...)"."""
    wanted = wanted_model(settings, ref)
    if kind == REGISTRY_MISS:
        return f"{wanted} {REGISTRY_MISS_WORDS}"
    if kind == ARTIFACT_MISSING and is_registered(settings):
        return f"the files of {wanted} are missing from the model store"
    if kind == ARTIFACT_MISSING:
        return f"there is no MLflow model at {wanted}"
    if kind == LOAD_ERROR:
        return f"{wanted} could not be loaded"
    if kind == REGISTRY_REFUSED:  # the store's login is the operator's to fix; the log says why
        return "the model registry refused this server's login (the server's log says why)"
    return "the model registry is unreachable"  # its address is for the logs, not for clients


def wanted_model(settings: Settings, ref: ModelRef | None) -> str:
    """The model the settings ask for, quoted: 'NAME@ALIAS', 'NAME/VERSION' or MODEL_URI, with
    the version the alias named once known ('shop@champion' (version 3))."""
    if not is_registered(settings):
        return repr(redacted(str(settings.model_uri)))  # a folder or another MLflow URI
    if settings.model_uri is not None:
        asked = settings.model_uri.removeprefix("models:/")
    elif settings.model_version is not None:
        asked = f"{settings.model_name}/{settings.model_version}"
    else:
        asked = f"{settings.model_name}@{settings.model_alias}"
    named = f" (version {ref.version})" if ref is not None and "@" in asked else ""
    return f"{asked!r}{named}"


def is_registered(settings: Settings) -> bool:
    """Whether the settings ask the registry for the model (not MODEL_URI's folder or URI)."""
    return settings.model_uri is None or REGISTRY_URI.fullmatch(settings.model_uri) is not None


def redacted(uri: str) -> str:
    """`uri` with its password replaced by `***` (`s3://alice:***@host/models/shop`)."""
    try:
        parts = urlsplit(uri)
    except ValueError:  # not a URL (an unclosed "[" host): nothing in it reads as a password
        return uri
    if parts.password is None:
        return uri
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
