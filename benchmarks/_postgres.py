"""A throwaway PostgreSQL cluster for benchmarks: Debian's ``initdb``/``pg_ctl`` on loopback, deleted after.

Unlike the test fixture it keeps PostgreSQL's durable defaults (``fsync``, ``synchronous_commit``), so a
publish costs what it costs in production. As root it runs the server as ``postgres`` (PostgreSQL refuses
root). Pass ``--database-url`` to the benchmark instead to measure a server of your own.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from benchmarks._server import free_port

SUPERUSER = "lorareg"
START_TIMEOUT_S = 60


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Start a cluster; yield the URL of its ``postgres`` database; stop and delete it on exit."""
    bindir = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="lorareg-bench-pg-", dir="/tmp"))  # noqa: S108 (socket path length)
    as_user = _as_postgres(root)
    data = root / "data"
    try:
        _run(
            [*as_user, str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8"]
        )
        port = free_port()
        options = f"-h 127.0.0.1 -p {port} -k {root} -c max_connections=200"
        _run([*as_user, str(bindir / "pg_ctl"), "start", "-D", str(data), "-l", str(root / "log"), "-w",
              "-t", str(START_TIMEOUT_S), "-o", options])  # fmt: skip
        try:
            yield f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{port}/postgres"
        finally:
            _run([*as_user, str(bindir / "pg_ctl"), "stop", "-D", str(data), "-m", "fast", "-w"])
    finally:
        shutil.rmtree(root, ignore_errors=True)


def fresh_database(server_url: str) -> str:
    """Create an empty database on the server of ``server_url``; return its URL."""
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:12]}"
    plain = server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def _as_postgres(root: Path) -> list[str]:
    if os.geteuid() != 0:
        return []
    entry = pwd.getpwnam("postgres")
    os.chown(root, entry.pw_uid, entry.pw_gid)
    return ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups", "--"]


def _run(command: list[str]) -> None:
    subprocess.run(
        command, check=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=START_TIMEOUT_S * 2
    )
