"""The one exception hierarchy of lorareg.

Every error that lorareg raises on purpose is a :class:`LoraregError`. It is caught in exactly two places:
the CLI entry point (one ``error:`` line on stderr and the exit code below) and the server's exception
handler (``{"error": {"code", "message"}}`` with the HTTP status below). Foreign exceptions are converted at
the boundary with ``raise ... from e``; programming errors stay builtins and crash loudly.

::

    LoraregError                      exit  HTTP
    ├── InputError (ValueError)          2   400  bad file, manifest, request, config
    │   ├── PayloadTooLargeError         2   413  body or file over a size cap
    │   ├── BodyTimeoutError             2   408  a request body stopped arriving (server side)
    │   └── UnprocessableError           2   422  well-formed but contradicts itself (digest, facts)
    ├── VerificationError                1   422  signature, trust, digest, revocation, policy; has .reasons
    │                                                (and .signers, .manifest when the signature verified)
    ├── IncompatibleAdapterError         1   422  adapter does not fit this pipeline; has .reasons
    ├── AuthError                        2   401  no or bad credentials
    │   └── ForbiddenError               2   403  credentials lack the right scope or namespace
    ├── NotFoundError (LookupError)      3   404
    ├── ConflictError                    2   409  e.g. name@version already published
    ├── GoneError                        1   451  revoked by an upheld takedown
    ├── RateLimitedError                 4   429
    ├── StorageError (OSError)           4   500  blob store or database failed
    └── RemoteError                      4   502  network or server error seen by the client
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class LoraregError(Exception):
    """Base of every error lorareg raises on purpose."""

    exit_code: int = 2
    http_status: int = 500
    code: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(LoraregError, ValueError):
    """Bad input: a file, manifest, signature file, request body or config that cannot be used."""

    exit_code = 2
    http_status = 400
    code = "bad_input"


class PayloadTooLargeError(InputError):
    """A body, file or field is larger than its cap."""

    http_status = 413
    code = "too_large"


class BodyTimeoutError(InputError):
    """A request body made no progress for longer than the server waits (a stalled or trickled upload)."""

    http_status = 408
    code = "body_timeout"


class UnprocessableError(InputError):
    """Well-formed input that contradicts itself (a digest or fact that does not match the bytes)."""

    http_status = 422
    code = "unprocessable"


class _ReasonsError(LoraregError):
    """An error that carries every reason that applied, not only the first."""

    def __init__(self, reasons: Iterable[str], *, subject: str | None = None) -> None:
        self.reasons: list[str] = [str(r) for r in reasons] or ["unknown reason"]
        self.subject = subject
        head = f"{subject}: " if subject else ""
        super().__init__(head + "; ".join(self.reasons))


class VerificationError(_ReasonsError):
    """Signature, trust, digest, revocation or policy check failed; ``reasons`` lists each failure.

    When the signatures themselves verified and a later check refused (digest, facts, family, policy), the
    verifier also sets ``signers`` (``{"keyid", "label", "role"}`` of each accepted key) and ``manifest``
    (the signed manifest as a plain dict, None when the signature carries none), so a refusal can still say
    who signed what. Both stay empty when no signature verified: nothing unverified is handed out.
    """

    exit_code = 1
    http_status = 422
    code = "verification_failed"

    def __init__(
        self,
        reasons: Iterable[str],
        *,
        subject: str | None = None,
        signers: Iterable[Mapping[str, str]] = (),
        manifest: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(reasons, subject=subject)
        self.signers: list[dict[str, str]] = [dict(s) for s in signers]
        self.manifest: dict[str, Any] | None = dict(manifest) if manifest is not None else None


class IncompatibleAdapterError(_ReasonsError):
    """The adapter does not fit the pipeline (family, missing modules, shapes); ``reasons`` lists each."""

    exit_code = 1
    http_status = 422
    code = "incompatible_adapter"


class AuthError(LoraregError):
    """No credentials, or credentials that are unknown, expired or revoked."""

    exit_code = 2
    http_status = 401
    code = "unauthorized"


class ForbiddenError(AuthError):
    """Valid credentials whose role, scopes or namespace do not allow the action."""

    http_status = 403
    code = "forbidden"


class NotFoundError(LoraregError, LookupError):
    """The adapter, version, blob, key, takedown or file does not exist."""

    exit_code = 3
    http_status = 404
    code = "not_found"


class ConflictError(LoraregError):
    """The action conflicts with existing state (an immutable version already published)."""

    exit_code = 2
    http_status = 409
    code = "conflict"


class GoneError(LoraregError):
    """The adapter was revoked by an upheld takedown (HTTP 451)."""

    exit_code = 1
    http_status = 451
    code = "revoked"


class RateLimitedError(LoraregError):
    """Too many requests from one client."""

    exit_code = 4
    http_status = 429
    code = "rate_limited"


class StorageError(LoraregError, OSError):
    """The blob store or the database failed."""

    exit_code = 4
    http_status = 500
    code = "storage_error"


class RemoteError(LoraregError):
    """A network error, or an error answer from a registry server, as the client sees it."""

    exit_code = 4
    http_status = 502
    code = "remote_error"

    def __init__(self, message: str, *, status: int | None = None, remote_code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.remote_code = remote_code
