"""What the registry can never answer, refused at start-up: a model name MLflow rejects, and a
`models:/NAME` URI without a version or an alias. Either failed every load attempt the same way
and was retried forever ("unreachable", "no MLflow model at ..."). The rules are those of
`product-train --model-name` and `product-classify --model` (the serve image ships only
`serving/`, so they are repeated here).
"""

from __future__ import annotations

import re

# An alias MLflow can set: letters, digits, `_` and `-`, at most 255; `latest` and `v3` are not.
_ALIAS = re.compile(r"[\w\-]{1,255}")
_VERSION_ALIAS = re.compile(r"[vV]\d+")
# models:/NAME, then `/VERSION` (or another MLflow suffix, such as /latest) or `@ALIAS`.
_MODELS_URI = re.compile(r"models:/([^/@]*)([/@]?)(.*)", re.DOTALL)


def check_registered_name(name: str) -> None:
    """ValueError unless `name` can be a registered model's name: MLflow refuses '/' and ':',
    and '@' would read as an alias in models:/NAME@ALIAS."""
    if not name.strip() or any(character in name for character in "/:@"):
        raise ValueError(
            "a registered model name must not be blank nor contain '/', ':' or '@' "
            "(it is used in models:/NAME@ALIAS)"
        )


def check_alias(alias: str) -> None:
    """ValueError unless `alias` is one MLflow can set, so that it may ever name a version."""
    if not _ALIAS.fullmatch(alias):
        raise ValueError(
            "an alias may hold only letters, digits, '_' and '-' (at most 255), as MLflow sets them"
        )
    if alias.lower() == "latest" or _VERSION_ALIAS.fullmatch(alias):
        raise ValueError(
            f"MLflow reserves the alias {alias!r}: no version can carry it; name an alias "
            "product-train sets (champion, challenger), or pin a version with MODEL_VERSION"
        )


def check_registry_model_uri(uri: str) -> None:
    """ValueError when the `models:/` URI `uri` names a registered model without a version or an
    alias (MLflow 3 reads `models:/NAME` as the ID of a logged model, `models:/m-...`), or names
    a model by a name MLflow refuses. Other URIs are not checked here."""
    found = _MODELS_URI.fullmatch(uri)
    if found is None:
        return
    name, separator, rest = found.groups()
    if not separator and name.startswith("m-"):  # a logged model's ID
        return
    if not name or not rest:
        target = name or "NAME"
        raise ValueError(
            "a registered model needs a version or an alias: add @ALIAS or /VERSION, e.g. "
            f"models:/{target}@champion (models:/m-... names a logged model)"
        )
    check_registered_name(name)
    if separator == "@":
        check_alias(rest)
