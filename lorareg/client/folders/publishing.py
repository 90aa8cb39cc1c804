"""Publishing an import: sign each drafted manifest and publish it, skipping what the registry already has.

Resumable by construction: before signing, each adapter's SHA-256 is resolved on the registry; one that is
already published (by an earlier, interrupted run, or by anyone) is reported as ``already published`` with
its ref and not sent again. Previews found beside a file are uploaded after its version is published (the
registry cleans them). One adapter's failure (a name taken by another file, a refusal) is recorded on that
entry and the rest go on; the caller decides the exit code from the counts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from lorareg.client.folders.importing import ImportEntry, ImportReport
from lorareg.errors import LoraregError, NotFoundError, RemoteError

if TYPE_CHECKING:
    from lorareg.client.api_client import Client
    from lorareg.signing.keys import PrivateKey

Step = Callable[[ImportEntry], None]  # called after each entry is handled (a progress bar)


def publish_import(
    report: ImportReport, *, client: Client, key: PrivateKey, step: Step | None = None
) -> None:
    """Publish every entry of ``report`` that the registry does not hold yet (module docstring).

    Raises:
        RemoteError: the registry cannot be reached (nothing more can be done; rerun to resume).
    """
    for entry in report.entries:
        try:
            _publish_one(entry, client=client, key=key)
        except RemoteError:
            raise
        except LoraregError as e:
            entry.published = "failed"
            entry.problems.append(f"publish refused: {e}")
        if step is not None:
            step(entry)


def _publish_one(entry: ImportEntry, *, client: Client, key: PrivateKey) -> None:
    from lorareg.signing.sign import sign_file

    try:
        existing = client.resolve(entry.sha256)
    except NotFoundError:
        existing = None
    if existing is not None:
        entry.ref, entry.published = str(existing["ref"]), "already published"
        return
    bundle = sign_file(entry.paths[0], entry.manifest, key)
    version = client.publish(entry.paths[0], bundle)
    entry.ref, entry.published = str(version["ref"]), "published"
    for image in entry.previews:
        try:
            client.add_preview(entry.ref, image)
        except LoraregError as e:  # a bad preview must not undo a published version
            entry.problems.append(f"preview {image.name} refused: {e}")
