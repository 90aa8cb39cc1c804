"""What a bare ``ns/name`` resolves to, said out loud, and refused when it silently changes base model.

``pull ns/name`` takes the registry's ``latest``: the highest *active* release. After the newest version is
revoked or yanked that is an older one — possibly for another base family (``inkworks/ink-wash`` 2.0.0 SDXL
revoked, 1.0.0 SD 1.x returned), which a pipeline then fails on or, worse, loads into the wrong model. So
the choice is printed, and a family different from the newest version's is refused unless the caller
accepts it (``--any-family``). Exact refs (``@version``) and hashes are the caller's explicit choice and
pass through untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from lorareg.errors import NotFoundError, VerificationError


class _AdapterSource(Protocol):
    def adapter(self, name: str) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Resolution:
    """The exact version a bare name stands for, and the newest version it was compared with."""

    ref: str  # name@version, to pull
    family: str
    newest_ref: str
    newest_family: str
    newest_status: str

    @property
    def note(self) -> str:
        """One line for stderr: which version was picked, and why when it is not the newest."""
        line = f"resolved {self.ref.split('@')[0]} to {self.ref} ({self.family})"
        if self.newest_ref != self.ref:
            line += f"; the newest version {self.newest_ref} ({self.newest_family}) is {self.newest_status}"
        return line


def is_bare_name(ref: str) -> bool:
    """``ns/name`` without ``@version`` (hashes have no ``/``)."""
    return "/" in ref and "@" not in ref


def resolve_bare_name(source: _AdapterSource, name: str, *, any_family: bool = False) -> Resolution:
    """Pick the version ``name`` resolves to; refuse a base family other than the newest version's.

    Raises:
        NotFoundError: the adapter has no active version.
        VerificationError: the resolved version targets another family than the newest (unless
            ``any_family``), with the reason and what to do.
    """
    adapter = source.adapter(name)
    versions: list[Mapping[str, Any]] = list(adapter.get("versions") or [])
    latest = adapter.get("latest")
    chosen = next((v for v in versions if v.get("version") == latest), None)
    if chosen is None or not versions:
        raise NotFoundError(
            f"{name} has no active version to resolve to (every version is yanked or revoked)"
        )
    newest = versions[0]  # the registry lists versions newest semver first
    resolution = Resolution(
        ref=f"{name}@{chosen['version']}",
        family=str(chosen.get("family")),
        newest_ref=f"{name}@{newest['version']}",
        newest_family=str(newest.get("family")),
        newest_status=str(newest.get("status")),
    )
    if resolution.family != resolution.newest_family and not any_family:
        r = resolution
        raise VerificationError(
            [
                f"{name} resolves to {r.ref} ({r.family}), but its newest version {r.newest_ref} targets "
                f"{r.newest_family} and is {r.newest_status}; pull an exact version (ns/name@version) "
                f"or pass --any-family to accept {r.family}"
            ],
            subject=name,
        )
    return resolution
