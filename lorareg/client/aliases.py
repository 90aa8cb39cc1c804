"""What ``pull ns/name@alias`` checks before it trusts the version an alias gave: the pure half.

The registry answers ``GET …/aliases/{alias}`` with the alias, the registry-signed move that set it and
the version it names (``target``). A pull of an alias (1) verifies the move under the trusted registry keys
and that it names exactly the version and digest served (``lorareg.signing.alias_move``), then (2) refuses
a target that was yanked or revoked after the alias was moved: a pipeline that follows ``@prod`` must stop,
not quietly load a version its publisher withdrew. The rest of the pull is the same as for an exact
version, with the version the alias gave.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from lorareg.errors import RemoteError, VerificationError
from lorareg.manifest.canonical import canonical_json
from lorareg.manifest.ids import is_alias
from lorareg.signing.alias_move import verify_alias_move
from lorareg.signing.keys import PublicKey


def split_alias(ref: str) -> tuple[str, str] | None:
    """``(name, alias)`` when ``ref`` is ``ns/name@alias``, else None (a version, a bare name, a hash)."""
    name, sep, tail = ref.strip().partition("@")
    if sep and "/" in name and is_alias(tail):
        return name, tail
    return None


def checked_alias_target(
    answer: Mapping[str, Any], registry_keys: Iterable[PublicKey], *, name: str, alias: str
) -> dict[str, Any]:
    """The version detail an alias names, once its signed move verified and the version is still active.

    Raises:
        VerificationError: a bad or mismatched signature on the move, or a yanked or revoked target.
        RemoteError: the answer is not shaped like the alias route's.
    """
    target, envelope = answer.get("target"), answer.get("envelope")
    if not isinstance(target, dict) or not isinstance(envelope, dict):
        raise RemoteError(f"registry's answer for {name}@{alias} lacks the target version or the signed move")
    version, sha256 = str(target.get("version")), str(target.get("sha256"))
    verify_alias_move(
        canonical_json(envelope), registry_keys, name=name, alias=alias, version=version, sha256=sha256
    )
    status = target.get("status")
    if status != "active":
        raise VerificationError(
            [
                f"alias {alias} of {name} points at {version}, which is {status}; "
                f"move the alias (lorareg alias set {name} {alias} VERSION) or pull an exact version"
            ],
            subject=f"{name}@{alias}",
        )
    return dict(target)
