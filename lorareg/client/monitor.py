"""Monitoring a registry's transparency log: replay it whole and hold the registry to what it logged.

``lorareg log verify`` and ``lorareg log watch`` (a studio's cron job, or a second registry acting as a
witness) run :func:`verify_log`:

1. the signed checkpoint, verified against the trust file's registry keys, and a consistency proof from the
   checkpoint held before (the monitor's own, in its state directory or the client cache);
2. every entry, paged (``GET /api/v1/log/entries``), hashed here: each leaf hash must match its body, and
   the root recomputed from all of them must equal the checkpoint's;
3. the log replayed into the state it describes — which versions exist with which digest, which are
   yanked, which digests are revoked — refusing impossible histories (a version published twice, a yank of
   a version never published, a revocation naming a version with another digest);
4. that state compared with what the API serves: every version of every logged adapter (same digest, same
   status), every active version the search API lists (it must be in the log), and the signed revocation
   list (exactly the logged revocations).

Problems are collected, not raised one at a time, so a report names every inconsistency it saw.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lorareg.client.logcheck import HttpLog, LogSource, check_consistent
from lorareg.errors import NotFoundError, VerificationError
from lorareg.signing import merkle
from lorareg.signing.checkpoint import Checkpoint, SignedCheckpoint, open_checkpoint

if TYPE_CHECKING:
    from lorareg.client.api_client import Client
    from lorareg.client.checkpoints import CheckpointStore
    from lorareg.signing.keys import PublicKey

SEARCH_PAGE = 100  # versions per search page when listing what the API serves


@dataclass
class LoggedVersion:
    """One version as the log tells it."""

    sha256: str
    yanked: bool = False
    revoked: bool = False

    @property
    def status(self) -> str:
        return "revoked" if self.revoked else "yanked" if self.yanked else "active"


@dataclass
class LogState:
    """What the replayed log says exists, and the problems found replaying it."""

    versions: dict[str, LoggedVersion] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)
    aliases: dict[tuple[str, str], str | None] = field(default_factory=dict)  # (name, alias) -> version
    problems: list[str] = field(default_factory=list)

    def apply(self, index: int, entry: dict[str, Any]) -> None:
        """Step 3 for one entry."""
        kind, ref = entry.get("kind"), f"{entry.get('name')}@{entry.get('version')}"
        if kind == "publish":
            if ref in self.versions:
                self.problems.append(f"log entry {index}: {ref} is published a second time")
            sha = str(entry.get("sha256"))
            self.versions[ref] = LoggedVersion(sha, revoked=sha in self.revoked)
        elif kind in ("yank", "unyank"):
            self._yank(index, ref, entry, yanked=kind == "yank")
        elif kind == "revoke":
            self._revoke(index, entry)
        elif kind == "alias":
            self._alias(index, entry)
        else:
            self.problems.append(f"log entry {index} has unknown kind {kind!r}")

    def _yank(self, index: int, ref: str, entry: dict[str, Any], *, yanked: bool) -> None:
        found = self.versions.get(ref)
        if found is None or found.sha256 != entry.get("sha256"):
            self.problems.append(
                f"log entry {index}: {entry.get('kind')} of {ref}, which the log never published"
            )
            return
        found.yanked = yanked

    def _alias(self, index: int, entry: dict[str, Any]) -> None:
        """An alias move (or deletion, ``version`` null) must name a version the log published, by digest."""
        name, alias, version = str(entry.get("name")), str(entry.get("alias")), entry.get("version")
        if version is not None:
            found = self.versions.get(f"{name}@{version}")
            if found is None or found.sha256 != entry.get("sha256"):
                self.problems.append(
                    f"log entry {index}: alias {name}@{alias} moved to {name}@{version}, "
                    "which the log never published with that digest"
                )
                return
        self.aliases[(name, alias)] = None if version is None else str(version)

    def _revoke(self, index: int, entry: dict[str, Any]) -> None:
        sha = str(entry.get("sha256"))
        self.revoked.add(sha)
        for ref in entry.get("versions") or []:
            found = self.versions.get(str(ref))
            if found is None or found.sha256 != sha:
                self.problems.append(
                    f"log entry {index}: revocation of {sha[:16]}… names {ref}, not of that digest"
                )
        for version in self.versions.values():
            if version.sha256 == sha:
                version.revoked = True


@dataclass(frozen=True, slots=True)
class MonitorReport:
    """The outcome of one :func:`verify_log`."""

    registry: str
    checkpoint: Checkpoint
    versions: int
    revoked: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "registry": self.registry,
            "ok": self.ok,
            "checkpoint": self.checkpoint.to_json(),
            "entries": self.checkpoint.size,
            "versions": self.versions,
            "revoked": self.revoked,
            "problems": list(self.problems),
        }


def verify_log(client: Client, store: CheckpointStore, *, keys: Sequence[PublicKey]) -> MonitorReport:
    """Steps 1-4 against ``client``'s registry; the new checkpoint is stored only when nothing was wrong.

    Raises:
        VerificationError: the checkpoint is not signed by a trusted key, or the log was rolled back or
            forked since the held checkpoint (nothing after that can be trusted, so nothing else is checked).
        RemoteError: the registry cannot be reached.
    """
    source = HttpLog(client)
    signed = check_checkpoint(source, store, registry=client.registry_url, keys=keys)
    state = replay(source, signed.checkpoint)
    state.problems.extend(compare_with_api(client, state, keys=keys))
    if not state.problems:
        with store.locked(client.registry_url):
            store.remember(client.registry_url, signed.note, signed.checkpoint)
    return MonitorReport(
        client.registry_url, signed.checkpoint, len(state.versions), len(state.revoked), tuple(state.problems)
    )


def check_checkpoint(
    source: LogSource, store: CheckpointStore, *, registry: str, keys: Sequence[PublicKey]
) -> SignedCheckpoint:
    """Step 1: a trusted checkpoint that extends the held one (not stored yet)."""
    signed = open_checkpoint(source.checkpoint(), keys)
    held = store.held(registry)
    if held is not None:
        new = signed.checkpoint
        proof = source.consistency(held.size, new.size) if 0 < held.size < new.size else []
        check_consistent(held, new, proof)
    return signed


def replay(source: LogSource, checkpoint: Checkpoint) -> LogState:
    """Steps 2-3: every leaf hashed here, the root recomputed, the entries applied in order."""
    state, leaves = LogState(), []
    for index, entry in _entries(source, checkpoint.size, state.problems):
        body = entry.get("body")
        if not isinstance(body, str):
            state.problems.append(f"log entry {index} has no body")
            continue
        leaf = merkle.leaf_hash(body.encode("utf-8"))
        leaves.append(leaf)
        if entry.get("leaf_hash") != leaf.hex():
            state.problems.append(f"log entry {index}: served leaf hash does not match its body")
        try:
            parsed = json.loads(body)
        except ValueError:
            state.problems.append(f"log entry {index} is not JSON")
            continue
        state.apply(index, parsed if isinstance(parsed, dict) else {})
    if len(leaves) == checkpoint.size and merkle.root_hash(leaves) != checkpoint.root_hash:
        state.problems.append(
            f"the root recomputed from the {len(leaves)} served entries is not the checkpoint's root "
            "(the entries served are not the log that was signed)"
        )
    return state


def compare_with_api(client: Client, state: LogState, *, keys: Sequence[PublicKey]) -> list[str]:
    """Step 4: what the API serves must be what the log says, both ways."""
    problems: list[str] = []
    for name in sorted({ref.rpartition("@")[0] for ref in state.versions}):
        problems.extend(_compare_adapter(client, name, state))
    for item in _active_versions(client):
        if item.get("ref") not in state.versions:
            problems.append(f"{item.get('ref')} is served but has no entry in the log")
    problems.extend(_compare_revocations(client, state, keys=keys))
    for name in sorted({ref.rpartition("@")[0] for ref in state.versions}):
        problems.extend(_compare_aliases(client, name, state))
    return problems


def _compare_aliases(client: Client, name: str, state: LogState) -> list[str]:
    """Every alias the API serves for ``name`` is where the log's last move put it, and the reverse."""
    logged = {a: v for (n, a), v in state.aliases.items() if n == name and v is not None}
    try:
        listed = client.aliases(name).get("aliases") or []
    except NotFoundError:
        listed = []
    served = {str(a.get("alias")): str(a.get("version")) for a in listed if isinstance(a, dict)}
    problems = [
        f"{name}@{alias}: the log says {logged.get(alias) or 'no alias'}, the API serves "
        f"{served.get(alias) or 'no alias'}"
        for alias in sorted(set(logged) | set(served))
        if logged.get(alias) != served.get(alias)
    ]
    return problems


def _compare_adapter(client: Client, name: str, state: LogState) -> list[str]:
    try:
        served = {str(v.get("ref")): v for v in client.adapter(name).get("versions", [])}
    except NotFoundError:
        served = {}
    problems = []
    for ref, logged in sorted(state.versions.items()):
        if ref.rpartition("@")[0] != name:
            continue
        got = served.pop(ref, None)
        if got is None:
            problems.append(f"{ref} is in the log but the registry does not serve it")
        elif got.get("sha256") != logged.sha256:
            problems.append(f"{ref}: the log says sha256 {logged.sha256}, the API serves {got.get('sha256')}")
        elif got.get("status") != logged.status:
            problems.append(f"{ref}: the log says {logged.status}, the API serves it as {got.get('status')}")
    problems.extend(f"{ref} is served but has no entry in the log" for ref in sorted(served))
    return problems


def _compare_revocations(client: Client, state: LogState, *, keys: Sequence[PublicKey]) -> list[str]:
    from lorareg.signing.revocation import verify_revocation_list

    try:
        listed = verify_revocation_list(
            client.revocations(), keys, held_version=None, now=datetime.now(UTC), max_age=None
        )
    except VerificationError as e:
        return [f"revocation list: {'; '.join(e.reasons)}"]
    on_list = {r.sha256 for r in listed.revoked}
    problems = [
        f"{sha} is revoked in the log but not on the signed revocation list"
        for sha in state.revoked - on_list
    ]
    problems += [
        f"{sha} is on the revocation list but no revocation is logged" for sha in on_list - state.revoked
    ]
    return sorted(problems)


def _entries(source: LogSource, size: int, problems: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    start = 0
    while start < size:
        page = source.entries(start, size)
        if not page:
            problems.append(f"the registry serves only {start} of the {size} entries its checkpoint signs")
            return
        for entry in page:
            if entry.get("index") != start:
                problems.append(
                    f"the registry served entry {entry.get('index')!r} where {start} was expected"
                )
                return
            yield start, entry
            start += 1


def _active_versions(client: Client) -> Iterator[dict[str, Any]]:
    cursor: str | None = None
    while True:
        page = client.search(None, sort="name", limit=SEARCH_PAGE, cursor=cursor)
        yield from page.get("items", [])
        cursor = page.get("next_cursor")
        if not cursor:
            return


def watch(
    client: Client,
    store: CheckpointStore,
    *,
    keys: Sequence[PublicKey],
    interval_s: float,
    polls: int | None,
    report: Callable[[MonitorReport], None],
) -> MonitorReport:
    """``lorareg log watch``: :func:`verify_log` every ``interval_s`` until a problem or ``polls`` polls.

    Every checkpoint that verified is also kept as ``history/<size>.note`` beside the store, so the
    monitor holds signed evidence of each state of the log it saw.

    Raises:
        VerificationError: as :func:`verify_log` (a forked or rolled-back log stops the watch at once).
    """
    done = 0
    while True:
        result = verify_log(client, store, keys=keys)
        if result.ok:
            _archive(store, client.registry_url)
        report(result)
        done += 1
        if not result.ok or (polls is not None and done >= polls):
            return result
        time.sleep(interval_s)


def _archive(store: CheckpointStore, registry: str) -> None:
    checkpoint = store.held(registry)
    if checkpoint is None:
        return
    path = store.path(registry)
    target = store.root / "history" / f"{path.stem}-{checkpoint.size}.note"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
