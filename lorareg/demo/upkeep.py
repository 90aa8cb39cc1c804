"""Demo hygiene: one set of live demo tokens at a time, and a generated preview on every demo version.

Each ``serve --demo`` start prints fresh tokens (secrets are stored hashed, so old ones cannot be printed
again). Without upkeep every start left four more 7-day tokens working; here the ids of the tokens a start
issued are kept in ``<data>/demo/tokens.txt`` and the next start revokes them before issuing new ones.
Previews are :func:`lorareg.demo.pictures.sample_picture` images, labelled as samples, added only to
versions that have none (seeding stays idempotent).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from lorareg.demo.pictures import sample_picture
from lorareg.errors import NotFoundError
from lorareg.registry import Previews, Principal, Registry

TOKENS_FILE = Path("demo") / "tokens.txt"  # under the data dir: ids only, never secrets


def revoke_previous_tokens(registry: Registry, data_dir: Path) -> int:
    """Revoke the tokens the previous demo start issued; return how many were still known."""
    path = data_dir / TOKENS_FILE
    if not path.exists():
        return 0
    revoked = 0
    for token_id in path.read_text(encoding="ascii", errors="replace").split():
        try:
            registry.revoke_token(token_id)
        except NotFoundError:  # a fresh database under an old data dir: nothing to revoke
            continue
        revoked += 1
    return revoked


def remember_tokens(data_dir: Path, token_ids: Iterable[str]) -> None:
    """Write the ids of the tokens this start issued (atomically: a crash keeps the previous list)."""
    path = data_dir / TOKENS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".part")
    part.write_text("".join(f"{t}\n" for t in token_ids), encoding="ascii")
    os.replace(part, path)


def add_sample_previews(
    registry: Registry, refs: Iterable[tuple[str, str]], principals: dict[str, Principal]
) -> int:
    """Give each ``(name, version)`` without a preview a generated one; return how many were added."""
    previews = Previews(registry)
    added = 0
    for name, version in refs:
        if previews.for_version(name, version):
            continue
        picture = sample_picture(f"{name}@{version}")
        previews.add(name, version, picture, principal=principals[name.split("/")[0]])
        added += 1
    return added
