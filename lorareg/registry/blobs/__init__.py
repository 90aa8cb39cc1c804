"""Content-addressed blob stores: the protocols (``protocol``), the filesystem store (``files``) and the S3
store (``s3``, behind the ``s3`` extra, imported only when an ``s3://`` URL is opened)."""

from __future__ import annotations

from pathlib import Path

from lorareg.errors import InputError
from lorareg.registry.blobs.files import READ_CHUNK_BYTES, FilesystemStore
from lorareg.registry.blobs.protocol import BlobStore, PendingBlob, check_sha256

__all__ = ["READ_CHUNK_BYTES", "BlobStore", "FilesystemStore", "PendingBlob", "check_sha256", "open_store"]


def open_store(url_or_path: str | Path, *, s3_endpoint: str | None = None) -> BlobStore:
    """A store from ``s3://bucket/prefix`` (the ``s3`` extra; ``s3_endpoint`` for MinIO and the like) or
    a directory path."""
    text = str(url_or_path)
    if text.startswith("s3://"):
        from lorareg.registry.blobs import s3

        store: BlobStore = s3.open_s3_store(text, endpoint_url=s3_endpoint)
        return store
    if "://" in text:
        raise InputError(f"unsupported storage URL {text!r}: expected s3://bucket/prefix or a directory")
    return FilesystemStore(text)
