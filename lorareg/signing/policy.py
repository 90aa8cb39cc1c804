"""The studio's policy: which verified adapters it accepts (licence, consent) and how they may be stacked.

A :class:`Policy` is the ``[policy]`` table of the trust file (``docs/trust.md``). Its defaults are the safe
ones a studio expects without writing anything: a ``likeness`` adapter needs ``consent.status = "obtained"``,
a signature without a lorareg manifest is refused, any licence is accepted and no registry countersignature is
required (a studio that pulls only from its own registry turns that on). The stacking limits are advice until
set: above two adapters or a weight of 1.0 the loader warns; once the trust file sets them, it refuses.

Pure: :meth:`Policy.check` takes a manifest and returns every reason, so the verifier can report them all
together with signature and digest problems. Signature rules (``require_registry_signature``) and revocation
freshness (``max_revocation_age``) are applied by ``verify.py`` and ``lorareg.signing.revocation``; they live
here only because the studio sets them in the same table.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from lorareg.errors import InputError
from lorareg.manifest.fields import boolean, build, clean, integer, number, show, spec

if TYPE_CHECKING:
    from lorareg.manifest.model import Manifest

DEFAULT_MAX_ADAPTERS = 2  # unset max_adapters: the loader warns above this many stacked adapters
DEFAULT_MAX_WEIGHT = 1.0  # unset max_weight: the loader warns above this absolute weight
MAX_POLICY_ADAPTERS = 64  # the largest max_adapters a trust file may set
MAX_POLICY_WEIGHT = 100.0  # the largest max_weight a trust file may set
MAX_ALLOWED_LICENSES = 256
ANY_LICENSE = "any"

_DURATION = re.compile(r"([1-9][0-9]{0,5})([smhdw])")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(value: Any, path: str = "duration") -> timedelta:
    """Parse ``"90s"``, ``"30m"``, ``"12h"``, ``"7d"`` or ``"2w"`` (one positive whole number and a unit).

    Raises:
        InputError: anything else, naming ``path``.
    """
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InputError(
            f'{path}: expected a duration such as "7d", "12h", "30m" (units s m h d w), got {show(value)}'
        )
    return timedelta(**{_DURATION_UNITS[match.group(2)]: int(match.group(1))})


def format_duration(value: timedelta) -> str:
    """The shortest text :func:`parse_duration` reads back as ``value`` (whole seconds)."""
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _allowed_licenses(value: Any, path: str) -> tuple[str, ...] | None:
    if value == ANY_LICENSE:
        return None
    if not isinstance(value, list | tuple) or not value:
        raise InputError(f'{path}: expected "any" or a non-empty list of licence ids, got {show(value)}')
    if len(value) > MAX_ALLOWED_LICENSES:
        raise InputError(f"{path}: list has {len(value)} items; the limit is {MAX_ALLOWED_LICENSES}")
    # Imported here: the manifest model pulls in the facts tables, which loading a policy rarely needs.
    from lorareg.manifest.model import check_license_id

    return tuple(check_license_id(item, f"{path}[{i}]") for i, item in enumerate(value))


@dataclass(frozen=True, kw_only=True)
class StackCheck:
    """The verdict on a stack of adapters: ``reasons`` refuse it, ``warnings`` only advise."""

    reasons: list[str]
    warnings: list[str]


@dataclass(frozen=True, kw_only=True)
class Policy:
    """The studio's rules; every field has the secure default described in ``docs/trust.md``."""

    require_registry_signature: bool = field(default=False, metadata=spec(boolean))
    allowed_licenses: tuple[str, ...] | None = field(default=None, metadata=spec(_allowed_licenses))
    require_commercial_use: bool = field(default=False, metadata=spec(boolean))
    likeness_requires_consent: bool = field(default=True, metadata=spec(boolean))
    max_adapters: int | None = field(default=None, metadata=spec(integer(low=1, high=MAX_POLICY_ADAPTERS)))
    max_weight: float | None = field(default=None, metadata=spec(number(low=0.0, high=MAX_POLICY_WEIGHT)))
    max_revocation_age: timedelta | None = field(default=None, metadata=spec(parse_duration))
    require_lorareg_manifest: bool = field(default=True, metadata=spec(boolean))
    allow_unreviewed: bool = field(default=False, metadata=spec(boolean))

    @classmethod
    def from_json(cls, obj: Any, path: str = "policy") -> Policy:
        """Validate the ``[policy]`` table strictly (unknown keys refused) and build the policy.

        Raises:
            InputError: with the key's path.
        """
        return build(cls, clean(cls, obj, path))

    def to_json(self) -> dict[str, Any]:
        """Every setting, JSON/TOML-ready; unset limits are ``None``."""
        age = self.max_revocation_age
        return {
            "require_registry_signature": self.require_registry_signature,
            "allowed_licenses": ANY_LICENSE if self.allowed_licenses is None else list(self.allowed_licenses),
            "require_commercial_use": self.require_commercial_use,
            "likeness_requires_consent": self.likeness_requires_consent,
            "max_adapters": self.max_adapters,
            "max_weight": self.max_weight,
            "max_revocation_age": None if age is None else format_duration(age),
            "require_lorareg_manifest": self.require_lorareg_manifest,
            "allow_unreviewed": self.allow_unreviewed,
        }

    def check(self, manifest: Manifest) -> list[str]:
        """Every reason this policy refuses ``manifest`` (empty: accepted). Pure."""
        reasons: list[str] = []
        licence = manifest.license
        if self.allowed_licenses is not None:
            allowed = {name.casefold() for name in self.allowed_licenses}
            if licence.id.casefold() not in allowed:
                reasons.append(
                    f"licence {licence.id} is not allowed by policy (allowed_licenses: "
                    f"{', '.join(self.allowed_licenses)})"
                )
        if self.require_commercial_use and not licence.commercial_use:
            reasons.append(
                f"licence {licence.id} does not allow commercial use; "
                "policy requires it (require_commercial_use)"
            )
        consent = manifest.consent
        if self.likeness_requires_consent and consent.subject == "likeness" and consent.status != "obtained":
            reasons.append(
                f"likeness adapter without obtained consent (consent.status is {consent.status}); policy "
                "requires consent.status = obtained for likeness (likeness_requires_consent)"
            )
        unreviewed = manifest.review_reasons()
        if unreviewed and not self.allow_unreviewed:
            reasons.append(
                f"imported adapter is unreviewed ({'; '.join(unreviewed)}); its owner or a reviewer must "
                "publish a version that states them (policy allow_unreviewed)"
            )
        return reasons

    def check_stack(self, weights: Sequence[float]) -> StackCheck:
        """Judge a stack of adapters applied together with ``weights`` (one per adapter). Pure.

        Limits the trust file sets are refusals; the defaults (:data:`DEFAULT_MAX_ADAPTERS`,
        :data:`DEFAULT_MAX_WEIGHT`) only produce warnings.
        """
        reasons: list[str] = []
        warnings: list[str] = []
        count_limit = self.max_adapters if self.max_adapters is not None else DEFAULT_MAX_ADAPTERS
        if len(weights) > count_limit:
            target = reasons if self.max_adapters is not None else warnings
            target.append(f"{len(weights)} adapters stacked; the limit is {count_limit} (max_adapters)")
        weight_limit = self.max_weight if self.max_weight is not None else DEFAULT_MAX_WEIGHT
        for index, weight in enumerate(weights):
            if abs(weight) > weight_limit:
                target = reasons if self.max_weight is not None else warnings
                target.append(
                    f"adapter {index} has weight {weight:g}; the limit is {weight_limit:g} (max_weight)"
                )
        return StackCheck(reasons=reasons, warnings=warnings)
