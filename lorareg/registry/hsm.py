"""The registry key in an HSM: a PKCS#11 backend behind the same :class:`PrivateKey` the file key uses.

``LORAREG_REGISTRY_KEY=pkcs11:token=<label>;object=<label>`` (RFC 7512) makes every registry signature —
countersignatures, checkpoints, tree heads, revocation lists, key-set documents — go through the token:
the replica holds a logged-in session, never the private key. The signer interface is ``PrivateKey``
(``sign``, ``public_key``, ``key_id``); its file backend is a ``cryptography`` EC key, and this module's
:class:`Pkcs11EcKey` implements the same ``EllipticCurvePrivateKey`` interface by asking the token, so no
caller changes. Exporting the key (``private_bytes``) is refused.

The PIN comes from the URI's ``pin-source=file:/path`` (RFC 7512), else ``LORAREG_REGISTRY_KEY_PIN``
(passed in by the server config). The module is the URI's ``module-path``, else
:data:`DEFAULT_MODULE` (SoftHSM2). Tokens hash nothing for us portably (SoftHSM2 lacks
``CKM_ECDSA_SHA256``), so the SHA-256 is computed here and the token signs it with ``CKM_ECDSA``.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import unquote

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from lorareg.errors import InputError, StorageError
from lorareg.signing.keys import PrivateKey

DEFAULT_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
URI_SCHEME = "pkcs11:"
MAX_PIN_FILE_BYTES = 1024


def is_pkcs11_uri(value: str | None) -> bool:
    return bool(value) and str(value).startswith(URI_SCHEME)


def parse_uri(uri: str) -> dict[str, str]:
    """RFC 7512 path and query attributes (``token``, ``object``, ``module-path``, ``pin-source`` …)."""
    if not uri.startswith(URI_SCHEME):
        raise InputError(f"registry key {uri[:40]!r} is not a pkcs11: URI")
    path, _, query = uri[len(URI_SCHEME) :].partition("?")
    attrs: dict[str, str] = {}
    for part in [p for p in path.split(";") if p] + [q for q in query.split("&") if q]:
        name, sep, value = part.partition("=")
        if not sep:
            raise InputError(f"pkcs11 URI attribute {part!r} has no value")
        attrs[name.strip()] = unquote(value)
    for required in ("token", "object"):
        if not attrs.get(required):
            raise InputError(f"pkcs11 URI needs {required}=… (e.g. pkcs11:token=lorareg;object=registry)")
    if "pin-value" in attrs:
        raise InputError(
            "pkcs11 URI must not carry pin-value: use pin-source=file:… or LORAREG_REGISTRY_KEY_PIN"
        )
    return attrs


def open_pkcs11_key(uri: str, *, pin: str | None) -> PrivateKey:
    """Log in to the token the URI names and wrap its EC key as a :class:`PrivateKey`.

    Raises:
        InputError: a malformed URI, no PIN.
        StorageError: the module, token or key cannot be found or used, or the key is not P-256.
    """
    attrs = parse_uri(uri)
    pin = _pin(attrs, pin)
    try:
        from pkcs11 import KeyType, ObjectClass
        from pkcs11.util.ec import encode_ec_public_key

        session = _session(attrs.get("module-path", DEFAULT_MODULE), attrs["token"], pin)
        private = session.get_key(
            object_class=ObjectClass.PRIVATE_KEY, key_type=KeyType.EC, label=attrs["object"]
        )
        public = session.get_key(
            object_class=ObjectClass.PUBLIC_KEY, key_type=KeyType.EC, label=attrs["object"]
        )
        public_key = serialization.load_der_public_key(encode_ec_public_key(public))  # type: ignore[arg-type]
    except ImportError as e:
        raise StorageError("a pkcs11: registry key needs python-pkcs11: pip install 'lorareg[hsm]'") from e
    except StorageError:
        raise
    except Exception as e:  # python-pkcs11 raises its own tree (and RuntimeError for a missing module)
        raise StorageError(f"cannot use registry key {uri}: {type(e).__name__}: {e}") from e
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or public_key.curve.name != "secp256r1":
        raise StorageError(f"registry key {uri} is not an ECDSA P-256 key")
    return PrivateKey(Pkcs11EcKey(session, private, public_key))


class Pkcs11EcKey(ec.EllipticCurvePrivateKey):
    """An EC private key that lives in a PKCS#11 token: signs there, never leaves it."""

    def __init__(self, session: Any, private: Any, public: ec.EllipticCurvePublicKey) -> None:
        self._session = session  # kept open (and logged in) for the process's lifetime
        self._private = private
        self._public = public
        self._lock = threading.Lock()  # a PKCS#11 session serves one operation at a time

    def sign(
        self, data: bytes | bytearray | memoryview, signature_algorithm: ec.EllipticCurveSignatureAlgorithm
    ) -> bytes:
        if not isinstance(signature_algorithm.algorithm, hashes.SHA256):
            raise ValueError("the registry's HSM key signs ECDSA with SHA-256 only")
        from pkcs11 import Mechanism

        with self._lock:
            raw = self._private.sign(hashlib.sha256(bytes(data)).digest(), mechanism=Mechanism.ECDSA)
        half = len(raw) // 2
        return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> NoReturn:
        raise StorageError("the registry's HSM key only signs")

    def private_numbers(self) -> NoReturn:
        raise StorageError("the registry's HSM key cannot be exported")

    def private_bytes(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise StorageError("the registry's HSM key cannot be exported")

    def __copy__(self) -> Pkcs11EcKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Pkcs11EcKey:
        return self


_SESSIONS: dict[tuple[str, str], tuple[Any, bytes]] = {}  # (module, token) -> (session, SHA-256 of PIN)
_SESSIONS_LOCK = threading.Lock()


def _session(module: str, token: str, pin: str) -> Any:
    """One logged-in session per token and process: a PKCS#11 login is process-wide, a second one fails."""
    import pkcs11

    digest = hashlib.sha256(pin.encode("utf-8")).digest()
    with _SESSIONS_LOCK:
        held = _SESSIONS.get((module, token))
        if held is not None:
            if held[1] != digest:
                raise StorageError(
                    f"PinIncorrect: not the PIN this process logged in to token {token!r} with"
                )
            return held[0]
        session = pkcs11.lib(module).get_token(token_label=token).open(user_pin=pin)
        _SESSIONS[(module, token)] = (session, digest)
        return session


def _pin(attrs: dict[str, str], pin: str | None) -> str:
    source = attrs.get("pin-source")
    if source:
        path = Path(source.removeprefix("file:"))
        try:
            text = path.read_bytes()[:MAX_PIN_FILE_BYTES].decode("utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read the PIN file {path}: {e}") from e
        return text.strip()
    if pin:
        return pin
    raise InputError(
        "a pkcs11: registry key needs a PIN: pin-source=file:… in the URI or LORAREG_REGISTRY_KEY_PIN"
    )
