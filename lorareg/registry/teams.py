"""Namespaces as teams: an admin gives a team its own namespace, with owners and publishers as members.

``lorareg admin namespace add NS --owner alice`` creates the namespace with its owners;
``lorareg admin namespace member add NS bob --role publisher`` adds members. A member's tokens (made with
``--user``) may publish, yank and move aliases in every namespace the user is a member of — the check is
``Principal.teams``, loaded with the token on every request, so removing a member takes effect at once.
Publishing still needs a publisher key registered for the namespace (``admin publisher add``): membership
says *who* may act, keys say *which signatures* the namespace accepts. Roles: ``owner`` (listed first, the
team's contact) and ``publisher``; both may act in the namespace. No principal here: like the other admin
functions, the caller holds the data directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from lorareg.errors import InputError, NotFoundError
from lorareg.manifest.ids import check_namespace
from lorareg.registry.db import Namespace, NamespaceMember, User, utcnow
from lorareg.registry.service import Registry

MEMBER_ROLES = ("owner", "publisher")


@dataclass(frozen=True, slots=True)
class MemberRecord:
    namespace: str
    user: str
    role: str
    added: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "user": self.user,
            "role": self.role,
            "added": self.added.isoformat().replace("+00:00", "Z"),
        }


class Teams:
    """Namespaces and their members (the ``lorareg admin namespace`` commands)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def add_namespace(self, namespace: str, *, owners: list[str]) -> list[MemberRecord]:
        """Create ``namespace`` (if new) with ``owners`` as members; returns its members.

        Raises InputError: a bad namespace name, no owner, or an owner that is not a user.
        """
        check_namespace(namespace)
        if not owners:
            raise InputError("a team namespace needs at least one --owner (a user name)")
        with self.registry.db.write() as session:
            if session.get(Namespace, namespace) is None:
                session.add(Namespace(name=namespace, created=utcnow()))
                session.flush()
            for owner in owners:
                _put_member(session, namespace, owner, "owner")
        return self.members(namespace)

    def add_member(self, namespace: str, user: str, *, role: str) -> MemberRecord:
        """Add ``user`` to ``namespace`` with ``role`` (or change the role). InputError/NotFoundError."""
        if role not in MEMBER_ROLES:
            raise InputError(f"member role {role[:20]!r} is not one of {', '.join(MEMBER_ROLES)}")
        with self.registry.db.write() as session:
            if session.get(Namespace, namespace) is None:
                raise NotFoundError(
                    f"namespace {namespace[:63]!r} does not exist; add it with: admin namespace add"
                )
            return _record(_put_member(session, namespace, user, role))

    def remove_member(self, namespace: str, user: str) -> MemberRecord:
        """Remove ``user`` from ``namespace``; its tokens stop acting there on their next request."""
        with self.registry.db.write() as session:
            row = session.get(NamespaceMember, (namespace, user))
            if row is None:
                raise NotFoundError(f"{user[:100]!r} is not a member of {namespace[:63]!r}")
            gone = _record(row)
            session.delete(row)
            return gone

    def members(self, namespace: str) -> list[MemberRecord]:
        """Owners first, then publishers, each by name. NotFoundError for an unknown namespace."""
        with self.registry.db.read() as session:
            if session.get(Namespace, namespace) is None:
                raise NotFoundError(f"namespace {namespace[:63]!r} does not exist")
            rows = session.exec(select(NamespaceMember).where(col(NamespaceMember.namespace) == namespace))
            return sorted((_record(r) for r in rows), key=lambda m: (MEMBER_ROLES.index(m.role), m.user))

    def namespaces(self) -> list[str]:
        """Every namespace, by name."""
        with self.registry.db.read() as session:
            return list(session.exec(select(col(Namespace.name)).order_by(col(Namespace.name))))


def _put_member(session: Session, namespace: str, user: str, role: str) -> NamespaceMember:
    if session.get(User, user) is None:
        raise InputError(
            f"user {user[:100]!r} does not exist; add it with: admin user add {user[:100]} --role publisher"
        )
    row: NamespaceMember | None = session.get(NamespaceMember, (namespace, user))
    if row is None:
        row = NamespaceMember(namespace=namespace, user=user, role=role, added=utcnow())
    else:
        row.role = role
    session.add(row)
    return row


def _record(row: NamespaceMember) -> MemberRecord:
    return MemberRecord(row.namespace, row.user, row.role, row.added)
