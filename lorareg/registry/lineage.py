"""Lineage checked at publish: a ``derived_from`` parent is either in this registry or marked external.

A parent named without ``registry`` is a claim about this registry's catalogue; accepting one it does not
hold rendered a dead link on the adapter page and a lineage nobody can follow. So such a parent must be
a version this registry has, with the SHA-256 the manifest states (when it states one). A parent published
elsewhere says so with ``registry = "…"`` (a URL or a name) and is kept as external lineage, unchecked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import Session

from lorareg.errors import NotFoundError, UnprocessableError
from lorareg.registry import catalog


def check_lineage(session: Session, manifest: Mapping[str, Any]) -> None:
    """Raise ``UnprocessableError`` for an internal ``derived_from`` parent this registry does not hold."""
    for parent in manifest.get("derived_from", []):
        if parent.get("registry"):
            continue
        ref = f"{parent['name']}@{parent['version']}"
        try:
            row = catalog.find_version(session, parent["name"], parent["version"])
        except NotFoundError:
            raise UnprocessableError(
                f"derived_from {ref}: this registry has no such version; "
                'if it was published elsewhere, mark it with registry = "<url or name>"'
            ) from None
        stated = parent.get("sha256")
        if stated and stated != row.sha256:
            raise UnprocessableError(
                f"derived_from {ref}: the manifest says sha256 {stated[:16]}…, "
                f"this registry's {ref} has {row.sha256[:16]}…"
            )
