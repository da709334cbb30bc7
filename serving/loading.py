"""Loading one MLflow model so that nothing of it stays behind but the objects in memory.

The model is downloaded into a temporary folder that is removed once the model is loaded, whether
the load succeeded or not, so a pod's small `/tmp` never fills up. Each model brings its own code
(`code/product_model`, or `code/training` for models saved by 0.1.x), which MLflow puts first on
`sys.path`; the code of the previous model, or an installed copy, must not answer its imports
instead, so those modules are taken out of `sys.modules` before the load and again after it (the
loaded objects keep references to their own classes and functions).
"""

from __future__ import annotations

import importlib
import logging
import platform
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serving.errors import (
    ARTIFACT_MISSING,
    LOAD_ERROR,
    REGISTRY_REFUSED,
    UNREACHABLE,
    ModelLoadError,
)

# Top-level packages a model's code folder may hold (`training` in the 0.1.x layout).
MODEL_CODE_PACKAGES = ("product_model", "training")
_USERINFO = re.compile(r"//[^/@\s]+@")
_MISSING_CODES = ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")
_UNREACHABLE_MARKERS = ("connection", "max retries", "timed out", "timeout", "unreachable")
# A store that answered and turned this server's login down: a database server's words
# (PostgreSQL's, MySQL's), an MLflow server's 401 or 403. Only its settings can cure it.
_REFUSED = re.compile(
    r"password authentication failed|no password supplied|no pg_hba\.conf entry"
    r'|access denied for user|(database|role) "[^"]*" does not exist|error code 40[13]\b',
    re.IGNORECASE,
)
_REFUSED_CODES = ("UNAUTHENTICATED", "PERMISSION_DENIED")


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SavedEnvironment:
    """What a model was saved with, checked against this process once the model serves (MLflow's
    own check at load time reads every installed package's metadata: a third of a second)."""

    requirements: tuple[str, ...] = ()
    python_version: str | None = None

    @classmethod
    def read(cls, folder: Path, flavor: dict[str, Any]) -> SavedEnvironment:
        path = folder / "requirements.txt"
        lines = path.read_text("utf-8").splitlines() if path.is_file() else []
        wanted = tuple(line.strip() for line in lines if line.strip()[:1] not in ("", "#", "-"))
        return cls(wanted, flavor.get("python_version"))

    def warn_of_mismatches(self) -> None:
        """Log what this process lacks of the saved environment, as MLflow's load would."""
        from mlflow.utils.requirements_utils import warn_dependency_requirement_mismatches

        warn_dependency_requirement_mismatches(list(self.requirements))
        running = platform.python_version()
        if self.python_version and self.python_version.split(".")[:2] != running.split(".")[:2]:
            log.warning(
                "the model was saved with Python %s and runs on %s: it may not work",
                self.python_version,
                running,
            )


def load_python_model(uri: str) -> tuple[Any, SavedEnvironment]:
    """The unwrapped pyfunc model at `uri`, loaded from a temporary copy that is then removed,
    and the environment it was saved with."""
    import mlflow.pyfunc  # heavy: imported in the loading thread only
    from mlflow.models import Model

    with temporary_folder() as folder:
        local = download(uri, folder)
        with own_model_code():
            try:
                flavor = Model.load(str(local)).flavors.get("python_function", {})
                saved = SavedEnvironment.read(local, flavor)
                model = mlflow.pyfunc.load_model(str(local), suppress_warnings=True)
                return model.unwrap_python_model(), saved
            except Exception as exc:
                raise ModelLoadError(LOAD_ERROR, short(exc)) from exc


def download(uri: str, folder: Path) -> Path:
    """Download the model at `uri` into `folder`; `ModelLoadError` says whether the model's files
    are not there (the store said so) or the download failed otherwise (a transient failure,
    counted as unreachable, which is retried without back-off)."""
    import mlflow.artifacts

    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(folder)))
    except Exception as exc:
        kind = failure_kind(exc)
        raise ModelLoadError(kind, f"cannot download {uri}: {short(exc)}") from exc
    if not (local / "MLmodel").is_file():
        raise ModelLoadError(ARTIFACT_MISSING, f"{uri} holds no MLmodel file")
    return local


@contextmanager
def temporary_folder() -> Iterator[Path]:
    """A fresh folder under TMPDIR, removed on the way out whatever happened."""
    folder = Path(tempfile.mkdtemp(prefix="product-serve-model-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def own_model_code() -> Iterator[None]:
    """Imports of the model's packages inside come from the model's own code folder; afterwards
    `sys.path` and those `sys.modules` entries are as they were before."""
    path_before = list(sys.path)
    modules_before = take_model_modules()
    importlib.invalidate_caches()
    try:
        yield
    finally:
        added = [entry for entry in sys.path if entry not in path_before]
        sys.path[:] = path_before
        for entry in added:
            sys.path_importer_cache.pop(entry, None)
        take_model_modules()
        sys.modules.update(modules_before)


def take_model_modules() -> dict[str, Any]:
    """Remove the model-code packages and their submodules from `sys.modules`; return them."""
    names = [
        name
        for name in list(sys.modules)
        if any(name == top or name.startswith(top + ".") for top in MODEL_CODE_PACKAGES)
    ]
    return {name: sys.modules.pop(name) for name in names}


def failure_kind(exc: BaseException) -> str:
    """Why a download failed: the store refused the login, said the files are not there, or
    failed otherwise (counted as unreachable, retried without back-off)."""
    if looks_refused(exc):
        return REGISTRY_REFUSED
    return ARTIFACT_MISSING if says_missing(exc) else UNREACHABLE


def looks_refused(exc: BaseException) -> bool:
    """Whether the store (a database server, an MLflow server) refused this server's login."""
    return any(
        getattr(cause, "error_code", "") in _REFUSED_CODES or _REFUSED.search(str(cause))
        for cause in _chain(exc)
    )


def says_missing(exc: BaseException) -> bool:
    """Whether the store answered that the files do not exist."""
    if isinstance(exc, FileNotFoundError) or getattr(exc, "error_code", "") in _MISSING_CODES:
        return True
    text = str(exc).lower()
    return any(marker in text for marker in (" 404", "not found", "no such file", "does not exist"))


def looks_unreachable(exc: BaseException) -> bool:
    """Whether an MLflow error says the server could not be reached (rather than a missing file)."""
    for cause in _chain(exc):
        if isinstance(cause, ConnectionError | TimeoutError):
            return True
        text = f"{type(cause).__name__}: {cause}".lower()
        if any(marker in text for marker in _UNREACHABLE_MARKERS):
            return True
    return False


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then what caused it (or happened while handling it), and so on."""
    cause: BaseException | None = exc
    while cause is not None:
        yield cause
        cause = cause.__cause__ or cause.__context__


def short(exc: BaseException, limit: int = 300) -> str:
    """`Type: message`, on one line, without credentials, at most `limit` characters (for the
    logs only: clients never see it)."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    text = _USERINFO.sub("//***@", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
