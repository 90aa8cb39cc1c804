"""A throwaway nginx for the benchmarks: the baseline (a static server of the same bytes) and the documented
``X-Accel-Redirect`` front (``docs/deploy/nginx-x-accel.conf``) in front of a ``lorareg serve``."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks._server import free_port

SITE_TEMPLATE = Path(__file__).resolve().parents[1] / "docs" / "deploy" / "nginx-x-accel.conf"


@dataclass(frozen=True)
class Nginx:
    static_url: str  # GET /<name> serves files of the static root (the baseline)
    front_url: str | None  # the documented X-Accel front of a lorareg server, when one was given
    master_pid: int


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        raise SystemExit("nginx is needed for the baseline (Debian package nginx-light)")
    return found


@contextlib.contextmanager
def run_nginx(
    prefix: Path, *, static_root: Path, upstream: str | None = None, blobs: Path | None = None
) -> Iterator[Nginx]:
    """Start nginx (2 workers, like the 2-core machine) with a static site and, optionally, the front."""
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    static_port, front_port = free_port(), free_port()
    sites = (
        f"server {{ listen 127.0.0.1:{static_port}; root {static_root}; sendfile on; tcp_nopush on; "
        "default_type application/octet-stream; }\n"
    )
    if upstream is not None and blobs is not None:
        site = SITE_TEMPLATE.read_text(encoding="utf-8")
        for key, value in {
            "{listen}": f"127.0.0.1:{front_port}",
            "{upstream}": upstream,
            "{blobs}": f"{blobs}/",
            "{prefix}": "/_lorareg_blobs/",
        }.items():
            site = site.replace(key, value)
        sites += site
    temp = "".join(
        f"  {name}_temp_path {prefix / sub};\n"
        for name, sub in (
            ("client_body", "body"),
            ("proxy", "proxy"),
            ("fastcgi", "fastcgi"),
            ("uwsgi", "uwsgi"),
            ("scgi", "scgi"),
        )
    )
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"{user}worker_processes 2;\ndaemon off;\npid {prefix / 'nginx.pid'};\n"
        f"error_log {prefix / 'error.log'} warn;\n"
        f"events {{ worker_connections 1024; }}\nhttp {{\n  access_log off;\n{temp}{sites}}}\n",
        encoding="utf-8",
    )
    process = subprocess.Popen([nginx_binary(), "-p", str(prefix), "-c", str(conf)], stderr=subprocess.PIPE)
    try:
        _wait(static_port, process)
        front = f"http://127.0.0.1:{front_port}" if upstream else None
        yield Nginx(f"http://127.0.0.1:{static_port}", front, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(
                f"nginx exited: {process.stderr.read().decode()[-500:] if process.stderr else ''}"
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise SystemExit("nginx did not start")
