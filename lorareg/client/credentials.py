"""Stored sign-ins of ``lorareg login``: one token per registry URL in the user's credentials file.

Where: ``$LORAREG_CONFIG/credentials.json``, else ``$XDG_CONFIG_HOME/lorareg/credentials.json``, else
``~/.config/lorareg/credentials.json``. The file is created 0600 and replaced atomically (a temporary file
opened 0600 with ``O_EXCL``, fsynced, renamed), in a directory made 0700; a file group or others can read
is refused, not used (an ssh-style rule: a token others could read is a leaked token). The parser is strict
and bounded: at most :data:`MAX_FILE_BYTES`, exactly the shape below, one-line errors naming the file.

::

    {"version": 1, "registries": {"https://lorareg.studio.example": {
        "token": "lrg_…", "expires_at": "2026-12-04T09:00:00+00:00", "role": "viewer"}}}

:func:`token_for` is the one place a token is chosen for a registry — ``--token`` (or ``LORAREG_TOKEN``,
which the CLI's option already reads), else the environment, else the stored sign-in — used by every CLI
command that talks to a registry and by the loader's ``registry=`` path. A stored sign-in past its
``expires_at`` is refused with "run lorareg login", never sent.

Deliberately not here: the device flow itself (``device_login.py``) or any HTTP.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lorareg.errors import AuthError, InputError
from lorareg.manifest import strict_json_loads

FILE_NAME = "credentials.json"
FILE_VERSION = 1
MAX_FILE_BYTES = 256 * 2**10  # hundreds of registries; a larger file is not ours
MAX_REGISTRIES = 1000
_TOKEN_RE = re.compile(r"^lrg_[0-9a-f]{12}_[A-Za-z0-9_-]{16,128}$")
_ROLES = ("admin", "reviewer", "publisher", "viewer")
_ENTRY_KEYS = {"token", "expires_at", "role"}


@dataclass(frozen=True, slots=True)
class StoredLogin:
    """One registry's sign-in: the token, when it expires, and its role."""

    token: str
    expires_at: datetime
    role: str

    def to_json(self) -> dict[str, str]:
        return {"token": self.token, "expires_at": self.expires_at.isoformat(), "role": self.role}


def credentials_path(env: Mapping[str, str] | None = None) -> Path:
    """The credentials file of this user (see the module docstring for the order)."""
    source = os.environ if env is None else env
    if source.get("LORAREG_CONFIG"):
        return Path(source["LORAREG_CONFIG"]) / FILE_NAME
    base = Path(source["XDG_CONFIG_HOME"]) if source.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "lorareg" / FILE_NAME


def registry_key(url: str) -> str:
    """The key a registry is stored under: its URL without trailing slashes."""
    return url.strip().rstrip("/")


def load(path: Path | None = None) -> dict[str, StoredLogin]:
    """Every stored sign-in by registry URL; empty when there is no file.

    Raises:
        InputError: the file is readable by group or others, too large, or not exactly the format.
    """
    path = path or credentials_path()
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise InputError(f"cannot read credentials file {path}: {e.strerror}") from e
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        _check_private(path, info)
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"credentials file {path} is over {MAX_FILE_BYTES} bytes; it is not lorareg's")
    return _parse(data, path)


def store(url: str, login: StoredLogin, path: Path | None = None) -> Path:
    """Add or replace the sign-in of ``url``; returns the file written (0600, atomically replaced)."""
    path = path or credentials_path()
    logins = load(path)
    logins[registry_key(url)] = login
    _write(path, logins)
    return path


def delete(url: str, path: Path | None = None) -> StoredLogin | None:
    """Remove the sign-in of ``url``; the removed one, or None when there was none."""
    path = path or credentials_path()
    logins = load(path)
    removed = logins.pop(registry_key(url), None)
    if removed is not None:
        _write(path, logins)
    return removed


def token_for(url: str, explicit: str | None = None, *, env: Mapping[str, str] | None = None) -> str | None:
    """The token to send to ``url``: ``explicit`` (``--token``), else ``LORAREG_TOKEN``, else the stored one.

    Raises:
        AuthError: the stored sign-in expired ("run lorareg login").
        InputError: the credentials file is unsafe or malformed.
    """
    if explicit:
        return explicit
    source = os.environ if env is None else env
    if source.get("LORAREG_TOKEN"):
        return source["LORAREG_TOKEN"]
    login = load(credentials_path(source)).get(registry_key(url))
    if login is None:
        return None
    if login.expires_at <= datetime.now(UTC):
        raise AuthError(f"your sign-in to {registry_key(url)} expired; run lorareg login")
    return login.token


# -- internals ----------------------------------------------------------------------------------------
def _check_private(path: Path, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"credentials file {path} is not a regular file")
    if info.st_mode & 0o077:
        raise InputError(
            f"credentials file {path} is readable by others (mode {stat.S_IMODE(info.st_mode):04o}); "
            f"run: chmod 600 {path}"
        )


def _parse(data: bytes, path: Path) -> dict[str, StoredLogin]:
    where = f"credentials file {path}"
    try:
        doc = strict_json_loads(data, max_bytes=MAX_FILE_BYTES, max_depth=4)
    except InputError as e:
        raise InputError(f"{where} is not valid JSON: {e}") from e
    if not isinstance(doc, dict) or set(doc) != {"version", "registries"} or doc["version"] != FILE_VERSION:
        raise InputError(f'{where}: expected {{"version": 1, "registries": {{…}}}}')
    registries = doc["registries"]
    if not isinstance(registries, dict) or len(registries) > MAX_REGISTRIES:
        raise InputError(f"{where}: registries must be an object of at most {MAX_REGISTRIES} entries")
    return {str(url): _entry(url, entry, where) for url, entry in registries.items()}


def _entry(url: str, entry: object, where: str) -> StoredLogin:
    if not url.startswith(("http://", "https://")) or len(url) > 2000:
        raise InputError(f"{where}: {url[:80]!r} is not a registry URL")
    if not isinstance(entry, dict) or set(entry) != _ENTRY_KEYS:
        raise InputError(f"{where}: the entry of {url[:80]} must have exactly token, expires_at, role")
    token, expires, role = entry["token"], entry["expires_at"], entry["role"]
    if not isinstance(token, str) or not _TOKEN_RE.match(token):
        raise InputError(f"{where}: the token of {url[:80]} is not an lrg_ token")
    if not isinstance(role, str) or role not in _ROLES:
        raise InputError(f"{where}: the role of {url[:80]} is not one of {', '.join(_ROLES)}")
    try:
        moment = datetime.fromisoformat(expires) if isinstance(expires, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InputError(f"{where}: expires_at of {url[:80]} is not an ISO 8601 time with a zone")
    return StoredLogin(token, moment, role)


def _write(path: Path, logins: dict[str, StoredLogin]) -> None:
    """Replace the file atomically; the temporary file is 0600 from its creation, the directory 0700."""
    existed = path.parent.is_dir()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not existed:
            os.chmod(path.parent, 0o700)  # mkdir's mode is cut by the umask; an existing directory is left
    except OSError as e:
        raise InputError(f"cannot create the directory of {path}: {e.strerror}") from e
    body = {"version": FILE_VERSION, "registries": {url: e.to_json() for url, e in sorted(logins.items())}}
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)  # a crashed run's leftover; O_EXCL below refuses anything raced in
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError as e:
        raise InputError(f"cannot write credentials file {path}: {e.strerror}") from e
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(body, indent=2) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
