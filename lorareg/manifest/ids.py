"""Adapter names (``namespace/adapter``) and semantic versions: parsing, validation and ordering.

Names and versions end up in URLs, file paths of the cache, database keys and signed manifests, so they are
ASCII, lower-case where case could confuse, and have exactly one spelling. Versions follow Semantic Versioning
2.0.0 to the letter (https://semver.org/spec/v2.0.0.html), including its precedence rules (section 11), so
"the highest version" means the same thing to the registry and every client.

This module only parses strings; it knows nothing about registries or which names are taken.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lorareg.errors import InputError

MAX_NAMESPACE_CHARS = 39  # like GitHub user names
MIN_NAMESPACE_CHARS = 2
MAX_ADAPTER_CHARS = 64
MAX_VERSION_CHARS = 128
SORT_KEY_DIGITS = 20  # digits per number in ``semver_key``; semver numbers beyond 10**20 are refused there
RELEASE_MARK = "~"  # sorts after "-" and every identifier character: a release beats its pre-releases
_KEY_SEPARATOR = " "  # below every identifier character: a shorter identifier list sorts first

# One slug segment: lower-case ASCII letters and digits, single hyphens between them.
_SEGMENT = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_NUMERIC = re.compile(r"0|[1-9][0-9]*")
_IDENTIFIER = re.compile(r"[0-9A-Za-z-]+")
_CORE = re.compile(r"([0-9]+)\.([0-9]+)\.([0-9]+)")


def check_namespace(text: str, path: str = "namespace") -> str:
    """Return ``text`` if it is a valid namespace (2-39 chars of ``a-z``, ``0-9``, single inner hyphens).

    Raises:
        InputError: naming ``path``, what was seen and the rule.
    """
    _check_segment(text, path=path, low=MIN_NAMESPACE_CHARS, high=MAX_NAMESPACE_CHARS)
    return text


MAX_ALIAS_CHARS = 63  # an alias such as ``prod`` or ``staging-eu`` is a short label, not a sentence
_ALIAS = re.compile(r"[a-z][a-z0-9-]*")


def is_alias(text: str) -> bool:
    """True when ``text`` reads as an alias (``prod``), not a version: a semver never starts with a letter."""
    return len(text) <= MAX_ALIAS_CHARS and _ALIAS.fullmatch(text) is not None


def check_alias(text: str, path: str = "alias") -> str:
    """Return ``text`` if it is an alias: ``[a-z][a-z0-9-]*``, at most 63 characters.

    Raises:
        InputError: naming ``path``, what was seen and the rule.
    """
    if not is_alias(text):
        raise InputError(
            f"{path}: {_quote(text)} is not an alias (a lower-case letter, then a-z, 0-9 or '-', "
            f"at most {MAX_ALIAS_CHARS} characters; a version such as 1.2.0 is not an alias)"
        )
    return text


def check_name(text: str, path: str = "name") -> str:
    """Return ``text`` if it is a valid adapter name ``namespace/adapter``.

    Raises:
        InputError: naming ``path``, what was seen and the rule.
    """
    namespace, slash, adapter = text.partition("/")
    if not slash:
        raise InputError(f'{path}: expected "namespace/adapter", got {_quote(text)} (no "/")')
    check_namespace(namespace, path)
    _check_segment(adapter, path=path, low=1, high=MAX_ADAPTER_CHARS)
    return text


@dataclass(frozen=True, order=False)
class SemVer:
    """A parsed Semantic Versioning 2.0.0 version; :meth:`key` orders versions by semver precedence."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str, path: str = "version") -> SemVer:
        """Parse ``MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`` exactly as semver 2.0.0 defines it.

        Raises:
            InputError: leading zeros, empty identifiers, characters outside ``[0-9A-Za-z-]``, a ``v``.
        """
        if len(text) > MAX_VERSION_CHARS:
            raise InputError(f"{path}: version is {len(text)} characters; the limit is {MAX_VERSION_CHARS}")
        rest, plus, build_text = text.partition("+")
        core_text, dash, pre_text = rest.partition("-")
        core = _CORE.fullmatch(core_text)
        if core is None or any(not _NUMERIC.fullmatch(part) for part in core.groups()):
            raise InputError(
                f"{path}: expected a semantic version MAJOR.MINOR.PATCH such as 1.2.0 (no leading zeros, "
                f"no 'v'), got {_quote(text)}"
            )
        prerelease = _identifiers(pre_text, path=path, what="pre-release", numeric_rule=True) if dash else ()
        build = _identifiers(build_text, path=path, what="build", numeric_rule=False) if plus else ()
        major, minor, patch = (int(part) for part in core.groups())
        return cls(major, minor, patch, prerelease, build)

    def key(self) -> tuple[int, int, int, tuple[tuple[int, int, str], ...]]:
        """Sort key by semver precedence: build metadata ignored, a release above its pre-releases."""
        if not self.prerelease:
            pre: tuple[tuple[int, int, str], ...] = ((2, 0, ""),)
        else:
            pre = tuple((0, int(i), "") if i.isdigit() else (1, 0, i) for i in self.prerelease)
        return (self.major, self.minor, self.patch, pre)

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + ".".join(self.build)
        return text


def version_key(text: str) -> tuple[int, int, int, tuple[tuple[int, int, str], ...]]:
    """Sort key of a version string: ``max(versions, key=version_key)`` is the highest version.

    Raises:
        InputError: ``text`` is not a semantic version.
    """
    return SemVer.parse(text).key()


def semver_key(version: str) -> str:
    """A string whose byte order is semver precedence, so the registry can sort versions in SQL.

    Numbers are zero-padded to ``SORT_KEY_DIGITS``, numeric pre-release identifiers sort below alphanumeric
    ones, and a release ends in ``RELEASE_MARK`` (above any of its pre-releases). Build metadata does not
    affect precedence and is dropped. The same parser as :meth:`SemVer.parse`, so the two orders agree.

    Raises:
        InputError: ``version`` is not a semantic version, or a number has more than ``SORT_KEY_DIGITS``.
    """
    parsed = SemVer.parse(version)
    numbers = (parsed.major, parsed.minor, parsed.patch)
    if any(len(str(n)) > SORT_KEY_DIGITS for n in numbers):
        raise InputError(f"version {_quote(version)}: numbers are limited to {SORT_KEY_DIGITS} digits")
    core = ".".join(str(n).zfill(SORT_KEY_DIGITS) for n in numbers)
    if not parsed.prerelease:
        return core + RELEASE_MARK
    return core + "-" + _KEY_SEPARATOR.join(_identifier_sort_key(i) for i in parsed.prerelease)


def _identifier_sort_key(identifier: str) -> str:
    if identifier.isdigit():
        if len(identifier) > SORT_KEY_DIGITS:
            raise InputError(f"pre-release number {identifier[:40]} is too long")
        return "0" + identifier.zfill(SORT_KEY_DIGITS)
    return "1" + identifier


def _identifiers(text: str, *, path: str, what: str, numeric_rule: bool) -> tuple[str, ...]:
    parts = tuple(text.split("."))
    for part in parts:
        if not _IDENTIFIER.fullmatch(part):
            raise InputError(
                f"{path}: {what} identifier {_quote(part)} must be non-empty [0-9A-Za-z-] (semver §9-10)"
            )
        if numeric_rule and part.isdigit() and not _NUMERIC.fullmatch(part):
            raise InputError(
                f"{path}: numeric {what} identifier {_quote(part)} has a leading zero (semver §9)"
            )
    return parts


def _check_segment(text: str, *, path: str, low: int, high: int) -> None:
    if not low <= len(text) <= high:
        raise InputError(f"{path}: {_quote(text)} is {len(text)} characters; expected {low} to {high}")
    if not _SEGMENT.fullmatch(text):
        hint = " (names are lower-case)" if text.lower() != text else ""
        raise InputError(
            f"{path}: {_quote(text)} is not a valid name part{hint}; expected lower-case letters a-z, digits "
            "and single hyphens between them"
        )


def _quote(text: str) -> str:
    shown = text if len(text) <= 60 else text[:60] + "…"
    return '"' + shown.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
