"""Pipeline aliases: ``ns/name@prod`` names one exact version until a publisher moves it.

A production pipeline pins ``@prod`` instead of a version, and the studio moves ``prod`` when a new version
has passed its checks. Moving an alias is a publish-like act: only publishers of the namespace (and admins)
may do it, each move and deletion is signed by the registry key (``lorareg.signing.alias_move``) and
appended to the transparency log with who did it, in the same transaction as the row change.

Resolution of ``ns/name@alias`` itself lives in ``catalog.resolve_ref`` (every path resolves through it);
this module owns the writes and the signed record a client checks. An alias may not be pointed at a yanked
or revoked version; one that points at a version yanked or revoked later still resolves (the pipeline must
learn of it), and ``pull`` refuses it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import Session, col, select

from lorareg.errors import ConflictError, NotFoundError
from lorareg.manifest.ids import check_alias, check_name
from lorareg.registry import catalog, logstore, webhook_events
from lorareg.registry.auth import Principal
from lorareg.registry.db import Adapter, Alias, utcnow
from lorareg.registry.records import VersionRecord
from lorareg.registry.service import WRITE_RETRIES, Registry
from lorareg.signing.alias_move import AliasMove, sign_alias_move

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class AliasRecord:
    """A live alias (or, from :meth:`Aliases.delete`, the one just removed) and its signed move."""

    name: str
    alias: str
    version: str
    sha256: str
    moved_by: str
    moved_at: datetime
    envelope: bytes  # the registry-signed AliasMove (DSSE envelope JSON)
    tlog_index: int

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "alias": self.alias,
            "version": self.version,
            "sha256": self.sha256,
            "moved_by": self.moved_by,
            "moved_at": self.moved_at.isoformat().replace("+00:00", "Z"),
            "tlog_index": self.tlog_index,
            "envelope": json.loads(self.envelope),
        }


class Aliases:
    """Set, list, delete and resolve one registry's aliases (``/aliases`` routes, ``lorareg alias``)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def set(self, name: str, alias: str, version: str, *, principal: Principal) -> AliasRecord:
        """Point ``name@alias`` at ``version``; a no-op (no log leaf) when it already points there.

        Raises:
            InputError: a bad name or alias.
            ForbiddenError: the principal may not publish into the namespace.
            NotFoundError: ``name@version`` is not published.
            ConflictError: the version is yanked or revoked.
        """
        check_name(name, "adapter name")
        check_alias(alias)
        principal.require("publish", namespace=name.split("/", 1)[0])

        def run(session: Session, now: datetime) -> AliasRecord:
            target = catalog.find_version(session, name, version)
            if target.revoked or target.yanked:
                state = "revoked" if target.revoked else "yanked"
                raise ConflictError(
                    f"{name}@{version} is {state}; an alias may point only at an active version"
                )
            row = session.get(Alias, (name, alias))
            if row is not None and row.version == version:
                return _record(row)
            move = AliasMove(
                name, alias, version, target.sha256, row.version if row else None, _who(principal), now
            )
            index = logstore.append(session, "alias", move.to_json(), now=now)
            webhook_events.enqueue(
                session, "alias.moved", move.to_json(), namespaces=[name.split("/")[0]], now=now
            )
            row = Alias(
                name=name,
                alias=alias,
                version=version,
                sha256=target.sha256,
                moved_by=move.moved_by,
                moved_at=now,
                envelope=sign_alias_move(move, self.registry.key),
                tlog_index=index,
            )
            session.merge(row)  # insert, or update the existing alias row in place
            return _record(row)

        return self._retrying(run)

    def delete(self, name: str, alias: str, *, principal: Principal) -> AliasRecord:
        """Remove ``name@alias``; the deletion is signed and logged too. Returns what it pointed at.

        Raises InputError, ForbiddenError (as :meth:`set`), NotFoundError (no such alias).
        """
        check_name(name, "adapter name")
        check_alias(alias)
        principal.require("publish", namespace=name.split("/", 1)[0])

        def run(session: Session, now: datetime) -> AliasRecord:
            row = _alias_row(session, name, alias)
            gone = _record(row)
            move = AliasMove(name, alias, None, None, row.version, _who(principal), now)
            logstore.append(session, "alias", move.to_json(), now=now)
            webhook_events.enqueue(
                session, "alias.moved", move.to_json(), namespaces=[name.split("/")[0]], now=now
            )
            session.delete(row)
            return gone

        return self._retrying(run)

    def of(self, name: str) -> list[AliasRecord]:
        """Every alias of an adapter, by alias. NotFoundError when the adapter does not exist."""
        with self.registry.db.read() as session:
            if session.get(Adapter, name) is None:
                raise NotFoundError(f"adapter {name} does not exist")
            rows = session.exec(select(Alias).where(col(Alias.name) == name).order_by(col(Alias.alias)))
            return [_record(r) for r in rows]

    def resolve(self, name: str, alias: str) -> tuple[AliasRecord, VersionRecord]:
        """The alias and the version it names, read together (one snapshot). NotFoundError if unset."""
        with self.registry.db.read() as session:
            row = _alias_row(session, name, alias)
            return _record(row), catalog.version_record(
                session, catalog.find_version(session, name, row.version)
            )

    def for_names(self, names: list[str]) -> dict[str, list[AliasRecord]]:
        """Aliases of several adapters in one query (catalogue and adapter pages)."""
        if not names:
            return {}
        with self.registry.db.read() as session:
            rows = session.exec(select(Alias).where(col(Alias.name).in_(names)).order_by(col(Alias.alias)))
            found: dict[str, list[AliasRecord]] = {}
            for row in rows:
                found.setdefault(row.name, []).append(_record(row))
            return found

    def _retrying(self, work: Callable[[Session, datetime], _T]) -> _T:
        """One write transaction, retried when a concurrent writer took the next log index first."""
        for _attempt in range(WRITE_RETRIES - 1):
            try:
                with self.registry.db.write() as session:
                    return work(session, utcnow())
            except (logstore.LogRaceError, sa.exc.IntegrityError):
                continue  # another replica took the log index, or created this alias row first
        with self.registry.db.write() as session:
            return work(session, utcnow())


def _alias_row(session: Session, name: str, alias: str) -> Alias:
    row = session.get(Alias, (name, alias))
    if row is None:
        raise NotFoundError(f"{name} has no alias {alias!r}")
    return row


def _record(row: Alias) -> AliasRecord:
    return AliasRecord(
        row.name,
        row.alias,
        row.version,
        row.sha256,
        row.moved_by,
        row.moved_at,
        bytes(row.envelope),
        row.tlog_index,
    )


def _who(principal: Principal) -> str:
    """The name the log records: the user behind the token when known, else the token id."""
    return principal.user or f"token:{principal.token_id}"
