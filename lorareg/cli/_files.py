"""Reading the files named on the command line, with the errors and exit codes of ``DESIGN.md``.

click's own path checks (``exists=True``) print a multi-line usage box and exit 2 for a missing file; the
commands check paths here instead, so a missing file is a :class:`~lorareg.errors.NotFoundError` (exit 3)
and a directory where a file belongs an :class:`~lorareg.errors.InputError` (exit 2), each one ``error:``
line, as ``inspect`` reports them from the library. This module only reads; it decides nothing about the
contents.
"""

from __future__ import annotations

from pathlib import Path

from lorareg.errors import InputError, NotFoundError


def read_input_file(path: Path, what: str) -> bytes:
    """The bytes of a small input file (a manifest, a preview image) named on the command line.

    Raises:
        NotFoundError: ``path`` does not exist.
        InputError: it is a directory or cannot be read.
    """
    require_file(path, what)
    try:
        return path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read {what} file {path}: {e.strerror}") from e


def require_file(path: Path, what: str) -> None:
    """Check that ``path`` names an existing file, before any work (or upload) starts.

    Raises:
        NotFoundError: ``path`` does not exist.
        InputError: it exists but is not a regular file.
    """
    if not path.exists():
        raise NotFoundError(f"{what} file {path} does not exist")
    if not path.is_file():
        raise InputError(f"{what} {path} is not a regular file; expected a file")
