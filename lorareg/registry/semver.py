"""Semantic-version sort keys that order correctly as plain strings in any database.

``1.10.0`` must sort above ``1.9.0`` and ``1.0.0-rc.1`` below ``1.0.0`` (semver 2.0.0, section 11), and
the registry sorts in SQL, so each version gets a string key whose byte order is semver precedence:
numbers zero-padded, numeric pre-release identifiers below alphanumeric ones, a release marked with ``~``
(above any pre-release). Build metadata does not affect precedence and is dropped from the key.
"""

from __future__ import annotations

import re

from lorareg.errors import InputError

_NUM_WIDTH = 20  # digits per number; semver numbers beyond 10**20 are refused
_SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)
RELEASE_MARK = "~"  # sorts after "-" and every identifier character, so a release beats its pre-releases
_SEPARATOR = " "  # below every identifier character: a shorter identifier list sorts first


def semver_key(version: str) -> str:
    """The sort key of a semver string; raise :class:`InputError` if it is not semver 2.0.0."""
    match = _SEMVER_RE.match(version)
    if match is None or any(len(part) > _NUM_WIDTH for part in match.group(1, 2, 3)):
        raise InputError(
            f"version {version[:100]!r} is not a semantic version (MAJOR.MINOR.PATCH[-pre][+build])"
        )
    core = ".".join(part.zfill(_NUM_WIDTH) for part in match.group(1, 2, 3))
    pre = match.group(4)
    if pre is None:
        return core + RELEASE_MARK
    return core + "-" + _SEPARATOR.join(_identifier_key(i) for i in pre.split("."))


def _identifier_key(identifier: str) -> str:
    if identifier.isdigit():
        if len(identifier) > _NUM_WIDTH:
            raise InputError(f"pre-release number {identifier[:40]} is too long")
        return "0" + identifier.zfill(_NUM_WIDTH)
    return "1" + identifier
