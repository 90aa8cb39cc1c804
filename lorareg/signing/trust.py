"""The trust file: which keys a studio trusts (publishers per namespace, registries) and its policy.

A TOML file, by default ``~/.config/lorareg/trust.toml`` (``LORAREG_TRUST`` or ``--trust`` choose another),
with a ``[policy]`` table (:class:`~lorareg.signing.policy.Policy`) and one ``[[keys]]`` table per trusted
key: ``keyid``, ``label``, ``role`` (``publisher`` or ``registry``), ``namespace`` (publishers only) and the
public key PEM inline. The key id is recomputed from the PEM on every load, so a hand-edited id cannot
point at another key. Format and examples: ``docs/trust.md``.

Reading is strict (unknown keys, bad roles, a publisher without namespace, a mismatched key id are refused);
writing is atomic (temp file, fsync, rename), so a crash never leaves half a trust file. Comments in a file
that lorareg rewrites are not kept; every setting is. This module does not fetch keys (the CLI does).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lorareg.errors import ConflictError, InputError, NotFoundError, PayloadTooLargeError
from lorareg.manifest.canonical import strict_json_loads
from lorareg.manifest.fields import build, choice, clean, hex_digest, show, spec, text
from lorareg.manifest.ids import check_namespace
from lorareg.signing.keys import PublicKey, load_public_key
from lorareg.signing.policy import DEFAULT_MAX_ADAPTERS, DEFAULT_MAX_WEIGHT, Policy

__all__ = [
    "ROLES",
    "Policy",
    "TrustStore",
    "TrustedKey",
    "default_trust_path",
    "load_trust",
    "parse_registry_keys",
]

TRUST_ENV = "LORAREG_TRUST"
DEFAULT_TRUST_PATH = "~/.config/lorareg/trust.toml"
MAX_TRUST_FILE_BYTES = 1 * 2**20
MAX_TRUSTED_KEYS = 1000
MAX_LABEL_CHARS = 200
MAX_PEM_CHARS = 8192  # a P-256 public key PEM is about 180 characters
MAX_KEYS_ANSWER_BYTES = 256 * 1024  # a registry's /api/v1/keys answer
MAX_REGISTRY_KEYS = 16  # keys one registry may publish at once (rotation overlaps)
MIN_KEYID_PREFIX = 8  # hex digits that ``trust remove`` needs to pick a key
TRUST_FILE_MODE = 0o600  # new trust files: only the owner may change whom the studio trusts
ROLES: tuple[str, ...] = ("publisher", "registry")
_KEY_FIELDS = ("keyid", "public_key", "role")


def _namespace(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{path}: expected a namespace as text, got a {type(value).__name__}")
    return check_namespace(value, path)


@dataclass(frozen=True, kw_only=True)
class _KeyEntry:
    """One ``[[keys]]`` table as written in the file (validated, not yet checked against its PEM)."""

    keyid: str = field(metadata=spec(hex_digest(64)))
    label: str = field(metadata=spec(text(max_chars=MAX_LABEL_CHARS)))
    role: str = field(metadata=spec(choice(ROLES)))
    namespace: str | None = field(default=None, metadata=spec(_namespace))
    public_key: str = field(metadata=spec(text(max_chars=MAX_PEM_CHARS, multiline=True)))


@dataclass(frozen=True, kw_only=True)
class _TrustFile:
    policy: Policy = field(default_factory=Policy, metadata=spec(table=Policy))
    keys: tuple[_KeyEntry, ...] = field(
        default=(), metadata=spec(items=spec(table=_KeyEntry), max_items=MAX_TRUSTED_KEYS)
    )


@dataclass(frozen=True, kw_only=True)
class TrustedKey:
    """A key the studio trusts: a ``publisher`` of one ``namespace``, or a ``registry``.

    ``namespace`` is None for registry keys, and for publisher keys trusted for any namespace for one run
    only (``verify --key``); the trust file itself scopes every publisher key to one namespace.
    """

    keyid: str
    label: str
    role: str
    namespace: str | None
    public_key: PublicKey

    def to_json(self) -> dict[str, Any]:
        """``{"keyid", "label", "role", "namespace"}`` (no PEM) for listings."""
        return {"keyid": self.keyid, "label": self.label, "role": self.role, "namespace": self.namespace}


@dataclass(frozen=True)
class TrustStore:
    """The trusted keys and the policy of one trust file. Immutable: edits return a new store."""

    entries: tuple[TrustedKey, ...] = ()
    policy: Policy = field(default_factory=Policy)

    def get(self, keyid: str) -> TrustedKey | None:
        """The entry with exactly this key id, or None."""
        return next((k for k in self.entries if k.keyid == keyid), None)

    def keys(self) -> tuple[TrustedKey, ...]:
        """Every trusted key, in file order."""
        return self.entries

    def registry_keys(self) -> list[PublicKey]:
        """Public keys of the trusted registries (they sign revocation lists and countersign adapters)."""
        return [k.public_key for k in self.entries if k.role == "registry"]

    def find(self, keyid_or_prefix: str) -> TrustedKey:
        """The one entry whose key id is, or starts with, ``keyid_or_prefix`` (at least 8 hex digits).

        Raises:
            InputError: a prefix that is too short or matches several keys.
            NotFoundError: no key matches.
        """
        wanted = keyid_or_prefix.strip().lower()
        if len(wanted) < MIN_KEYID_PREFIX:
            raise InputError(f"key id {wanted!r} is too short; give at least {MIN_KEYID_PREFIX} hex digits")
        matches = [k for k in self.entries if k.keyid.startswith(wanted)]
        if not matches:
            raise NotFoundError(f"no trusted key has id {wanted}")
        if len(matches) > 1:
            raise InputError(f"key id prefix {wanted} matches {len(matches)} keys; give more digits")
        return matches[0]

    def with_key(self, public_key: PublicKey, *, label: str, role: str, namespace: str | None) -> TrustStore:
        """This store plus ``public_key``; the same store if that exact entry is already there.

        Raises:
            InputError: a bad role, label or namespace; a registry key with a namespace; too many keys.
            ConflictError: the key is already trusted with another role or namespace.
        """
        key = _trusted_key(public_key, label=label, role=role, namespace=namespace)
        existing = self.get(key.keyid)
        if existing is not None:
            if (existing.role, existing.namespace) == (key.role, key.namespace):
                return self
            where = f" for namespace {existing.namespace}" if existing.namespace else ""
            raise ConflictError(
                f"key {key.keyid[:16]}… is already trusted as {existing.role}{where}; remove it first"
            )
        if len(self.entries) >= MAX_TRUSTED_KEYS:
            raise InputError(f"the trust file already holds {MAX_TRUSTED_KEYS} keys, the limit")
        return TrustStore((*self.entries, key), self.policy)

    def without_key(self, keyid: str) -> TrustStore:
        """This store without the key :meth:`find` picks for ``keyid``."""
        gone = self.find(keyid)
        return TrustStore(tuple(k for k in self.entries if k.keyid != gone.keyid), self.policy)

    @classmethod
    def empty(cls) -> TrustStore:
        """No keys, the default policy."""
        return cls()

    @classmethod
    def load(cls, path: Path | None = None) -> TrustStore:
        """:func:`load_trust`."""
        return load_trust(path)

    @classmethod
    def from_toml(cls, source: str | bytes, *, origin: str = "trust file") -> TrustStore:
        """Parse a trust file strictly.

        Raises:
            PayloadTooLargeError: over :data:`MAX_TRUST_FILE_BYTES`.
            InputError: bad TOML, unknown keys, bad values, a key id that is not its key's; ``origin`` first.
        """
        import tomllib

        if len(source) > MAX_TRUST_FILE_BYTES:
            raise PayloadTooLargeError(f"{origin} is over {MAX_TRUST_FILE_BYTES} bytes")
        try:
            raw = tomllib.loads(source.decode("utf-8") if isinstance(source, bytes) else source)
            parsed = build(_TrustFile, clean(_TrustFile, raw, "trust"))
            return cls(tuple(_entry(e, f"trust.keys[{i}]") for i, e in enumerate(parsed.keys)), parsed.policy)
        except UnicodeDecodeError as e:
            raise InputError(f"{origin} is not valid UTF-8 (byte {e.start})") from e
        except tomllib.TOMLDecodeError as e:
            raise InputError(f"{origin} is not valid TOML: {e}") from e
        except InputError as e:
            raise InputError(f"{origin}: {e}") from e

    def to_toml(self) -> str:
        """The trust file text: the full policy (unset limits as comments), then one ``[[keys]]`` per key."""
        lines = ["# lorareg trust file: trusted keys and policy (docs/trust.md).",
                 "# Written by `lorareg trust`; comments you add are not kept.", "", "[policy]"]  # fmt: skip
        for name, value in self.policy.to_json().items():
            lines.append(f"{name} = {_toml_value(value)}" if value is not None else _UNSET_COMMENTS[name])
        for key in self.entries:
            lines += ["", "[[keys]]", f"keyid = {_toml_value(key.keyid)}"]
            lines += [f"label = {_toml_value(key.label)}", f"role = {_toml_value(key.role)}"]
            if key.namespace is not None:
                lines.append(f"namespace = {_toml_value(key.namespace)}")
            lines.append("public_key = '''\n" + key.public_key.pem.decode("ascii") + "'''")
        return "\n".join(lines) + "\n"

    def save(self, path: Path) -> None:
        """Write atomically: a temp file in the same directory, fsync, rename over ``path``.

        Raises:
            InputError: a publisher key without namespace (the file scopes each one); cannot write.
        """
        for key in self.entries:
            if key.role == "publisher" and key.namespace is None:
                raise InputError(
                    f"publisher key {key.keyid[:16]}… has no namespace; a trust file trusts each publisher "
                    "key for one namespace (--namespace NAME)"
                )
        _atomic_write(path, self.to_toml().encode("utf-8"))


def parse_registry_keys(body: bytes) -> list[PublicKey]:
    """Parse a registry's ``GET /api/v1/keys`` answer: ``{"keys": [{"keyid", "public_key", "role"}]}``.

    Every entry must be a P-256 key whose ``keyid`` is its PEM's id and whose role is ``registry``; other
    fields of an entry are ignored (newer servers may add some). Pure: the caller does the HTTP request.

    Raises:
        InputError: malformed JSON or shape, a key id that is not the key's, no keys, too many keys.
    """
    data = strict_json_loads(body, max_bytes=MAX_KEYS_ANSWER_BYTES, max_depth=4)
    entries = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries or len(entries) > MAX_REGISTRY_KEYS:
        raise InputError(f'registry keys: expected {{"keys": [...]}} with 1 to {MAX_REGISTRY_KEYS} keys')
    keys = []
    for index, entry in enumerate(entries):
        path = f"keys[{index}]"
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in _KEY_FIELDS):
            raise InputError(f"registry keys: {path} needs text fields {', '.join(_KEY_FIELDS)}")
        if entry["role"] != "registry":
            raise InputError(f'registry keys: {path}.role is {show(entry["role"])}; expected "registry"')
        public_key = load_public_key(entry["public_key"].encode("utf-8"))
        if public_key.key_id != entry["keyid"]:
            raise InputError(f"registry keys: {path}.keyid {show(entry['keyid'])} is not the id of its key")
        keys.append(public_key)
    return keys


def default_trust_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$LORAREG_TRUST`` if set, else ``~/.config/lorareg/trust.toml``."""
    env = os.environ if environ is None else environ
    return Path(env.get(TRUST_ENV) or DEFAULT_TRUST_PATH).expanduser()


def load_trust(path: Path | None = None) -> TrustStore:
    """Load the trust file at ``path`` (default: :func:`default_trust_path`).

    Raises:
        InputError: the file is missing (with how to create one), unreadable or invalid.
    """
    path = default_trust_path() if path is None else path
    try:
        with path.open("rb") as f:
            data = f.read(MAX_TRUST_FILE_BYTES + 1)
    except FileNotFoundError as e:
        raise InputError(
            f"no trust file at {path}; create one by trusting a key: "
            "`lorareg trust add KEY.pub --role publisher --namespace acme` or "
            f"`lorareg trust add-registry URL` (or pass --trust FILE, or set {TRUST_ENV})"
        ) from e
    except OSError as e:
        raise InputError(f"cannot read trust file {path}: {e.strerror}") from e
    return TrustStore.from_toml(data, origin=f"trust file {path}")


_UNSET_COMMENTS = {
    "max_adapters": f"# max_adapters = {DEFAULT_MAX_ADAPTERS}  # unset: the loader only warns above this",
    "max_weight": f"# max_weight = {DEFAULT_MAX_WEIGHT}  # unset: the loader only warns above this",
    "max_revocation_age": '# max_revocation_age = "7d"  # unset: only the list\'s own expiry applies',
}


def _entry(entry: _KeyEntry, path: str) -> TrustedKey:
    """Check a file entry: publisher keys name a namespace, and the key id is the PEM's."""
    if entry.role == "publisher" and entry.namespace is None:
        raise InputError(f"{path}.namespace: missing; a publisher key is trusted for one namespace")
    try:
        public_key = load_public_key(entry.public_key.encode("utf-8"))
        key = _trusted_key(public_key, label=entry.label, role=entry.role, namespace=entry.namespace)
    except InputError as e:
        raise InputError(f"{path}: {e}") from e
    if key.keyid != entry.keyid:
        raise InputError(f"{path}.keyid: the file says {entry.keyid}, but the public key's id is {key.keyid}")
    return key


def _trusted_key(public_key: PublicKey, *, label: str, role: str, namespace: str | None) -> TrustedKey:
    choice(ROLES)(role, "role")
    if role == "registry" and namespace is not None:
        raise InputError("a registry key has no namespace; it countersigns every namespace")
    if namespace is not None:
        check_namespace(namespace, "namespace")
    label = text(max_chars=MAX_LABEL_CHARS)(label, "label")
    return TrustedKey(
        keyid=public_key.key_id, label=label, role=role, namespace=namespace, public_key=public_key
    )


def _toml_value(value: Any) -> str:
    """TOML for a validated scalar or list: JSON's string escapes are valid TOML basic-string escapes
    (validated text holds no DEL or surrogates, the two places where the formats differ)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)


def _atomic_write(path: Path, data: bytes) -> None:
    import tempfile  # only writers need it; every verify reads the trust file

    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = path.stat().st_mode & 0o777 if path.exists() else TRUST_FILE_MODE
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise InputError(f"cannot write trust file {path}: {e.strerror}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except OSError as e:
        Path(temp).unlink(missing_ok=True)
        raise InputError(f"cannot write trust file {path}: {e.strerror}") from e
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
