"""CLI commands ``keygen``, ``sign`` and ``verify``: parse, call ``lorareg.signing``, print.

Passphrases come from ``LORAREG_KEY_PASSWORD`` or, only when stdin is a terminal, from a ``getpass`` prompt;
a command never waits on a prompt that no one can answer. ``verify`` exits 0 when verified, 1 when refused
(every reason printed), 2 on unusable input (missing file, unreadable trust file), per ``DESIGN.md``. It
checks revocations with the registry's current list when a registry is named (``--registry`` or
``LORAREG_REGISTRY``), else with the newest list the client cache holds (``lorareg.client.revocations``),
and says which list it used.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from lorareg.cli._files import read_input_file
from lorareg.cli._output import print_json, safe_text
from lorareg.errors import InputError, VerificationError

if TYPE_CHECKING:
    from lorareg.client.revocations import CheckedRevocations
    from lorareg.signing.keys import PrivateKey
    from lorareg.signing.policy import Policy
    from lorareg.signing.trust import TrustStore
    from lorareg.signing.verify import VerifiedManifest

PASSWORD_ENV = "LORAREG_KEY_PASSWORD"  # noqa: S105 - the variable's name, not a password
SIGNATURE_SUFFIX = ".sig"


def register(app: typer.Typer) -> None:
    """Add ``keygen``, ``sign`` and ``verify`` to the root app."""
    app.command("keygen")(keygen)
    app.command("sign")(sign)
    app.command("verify")(verify)


def keygen(
    out: Path = typer.Option(..., "--out", help="Write PREFIX.key (0600) and PREFIX.pub."),
    encrypt: bool = typer.Option(
        False, "--encrypt", help=f"Encrypt the private key ({PASSWORD_ENV} or a prompt)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the key id and paths as JSON."),
) -> None:
    """Generate an ECDSA P-256 key pair and print its key id."""
    from lorareg.signing.keys import generate, write_key_pair

    password = _new_password() if encrypt else None
    key = generate()
    paths = write_key_pair(out, key, password=password)
    if as_json:
        print_json(
            {
                "keyid": key.key_id,
                "private_key": str(paths.private),
                "public_key": str(paths.public),
                "encrypted": encrypt,
            }
        )
        return
    typer.echo(key.key_id)
    typer.echo(f"wrote {paths.private} (mode 0600) and {paths.public}", err=True)


def sign(
    file: Path = typer.Argument(..., help="The adapter (.safetensors) to sign."),
    manifest: Path = typer.Option(..., "--manifest", help="The author's manifest.toml."),
    key: Path = typer.Option(..., "--key", help="The publisher's private key (PEM)."),
    out: Path | None = typer.Option(None, "--out", "--envelope", help="Signature file (default FILE.sig)."),
) -> None:
    """Sign FILE with its manifest (file facts are computed, never copied) and write FILE.sig."""
    from lorareg.manifest.drafting import ManifestDraft
    from lorareg.signing.sign import sign_file

    private_key = load_signing_key(key)
    draft = ManifestDraft.from_toml(read_input_file(manifest, "manifest"))
    bundle = sign_file(file, draft, private_key)
    target = out or file.with_name(file.name + SIGNATURE_SUFFIX)
    _write_atomically(target, bundle)
    typer.echo(f"signed {safe_text(file)} with key {private_key.key_id[:16]}…; wrote {safe_text(target)}")


def verify(
    file: Path = typer.Argument(..., help="The adapter to verify."),
    signature: Path | None = typer.Option(
        None, "--signature", "--envelope", help="Signature file (default FILE.sig)."
    ),
    trust: Path | None = typer.Option(
        None, "--trust", help="Trust file (default ~/.config/lorareg/trust.toml)."
    ),
    keys: list[Path] = typer.Option(
        [], "--key", help="Also trust this publisher public key (any namespace)."
    ),
    family: str | None = typer.Option(
        None, "--family", help="Refuse unless the adapter is for this base family."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    registry: str | None = typer.Option(
        None,
        "--registry",
        envvar="LORAREG_REGISTRY",
        help="Check revocations with this registry's current list (default: the newest list cached).",
    ),
) -> None:
    """Verify FILE against its signature file, trust file, policy and revocations; exit 1 if refused."""
    from lorareg.client.revocations import current_revocations
    from lorareg.signing.filecheck import verify_file

    store, policy = _load_trust(trust, keys)
    bundle_path = signature or file.with_name(file.name + SIGNATURE_SUFFIX)
    reasons: list[str] = []
    checked: CheckedRevocations | None = None
    try:
        checked = current_revocations(store, max_age=policy.max_revocation_age, registry=registry)
    except VerificationError as e:
        reasons += e.reasons  # a refused list: still verify the file, to report every reason at once
    try:
        revoked = checked.revoked() if checked is not None else None
        result = verify_file(
            file, bundle_path, trust=store, policy=policy, expect_family=family, revoked=revoked
        )
    except VerificationError as e:
        refused = VerificationError([*reasons, *e.reasons], signers=e.signers, manifest=e.manifest)
        _print_refusal(file, refused, checked, as_json=as_json)
        raise typer.Exit(1) from None
    if reasons:  # the file verified, but the revocation list could not be trusted
        manifest = result.manifest.to_json() if result.manifest is not None else None
        signers = [s.to_json() for s in result.signers]
        refused = VerificationError(reasons, signers=signers, manifest=manifest)
        _print_refusal(file, refused, checked, as_json=as_json)
        raise typer.Exit(1)
    _print_verified(file, result, checked, as_json=as_json)


def _load_trust(path: Path | None, extra_keys: list[Path]) -> tuple[TrustStore, Policy]:
    """The trust store and policy: the trust file, plus ``--key`` publisher keys for this run only.

    With ``--key`` and no trust file at the default place, the run trusts exactly those keys under the
    default policy; without either, the trust store's own error says how to create a trust file.
    """
    from lorareg.signing.keys import load_public_key, read_key_file
    from lorareg.signing.policy import Policy
    from lorareg.signing.trust import TrustStore, default_trust_path

    if path is None and extra_keys and not default_trust_path().exists():
        store, policy = TrustStore.empty(), Policy()
    else:
        store = TrustStore.load(path or default_trust_path())
        policy = store.policy
    for key_path in extra_keys:
        public = load_public_key(read_key_file(key_path))
        store = store.with_key(public, label=key_path.name, role="publisher", namespace=None)
    return store, policy


def _print_verified(
    file: Path, result: VerifiedManifest, checked: CheckedRevocations | None, *, as_json: bool
) -> None:
    manifest = result.manifest.to_json() if result.manifest is not None else None
    signers = [s.to_json() for s in result.signers]
    notes = [*result.notes, *([checked.note] if checked is not None and checked.note else [])]
    if as_json:
        print_json(
            {
                "verified": True,
                "reasons": [],
                "signers": signers,
                "manifest": manifest,
                "notes": notes,
                "revocations": checked.to_json() if checked is not None else None,
            }
        )
        return
    title = f"{manifest['name']}@{manifest['version']}" if manifest else result.subject_name
    typer.echo(f"verified: {safe_text(file)} ({safe_text(title)})")
    _print_signed_facts(signers, manifest)
    if checked is not None and checked.revocations is not None:
        rl = checked.to_json()
        typer.echo(
            f"  revocations: list version {rl['version']} issued {rl['issued']} (from {checked.source})"
        )
    for note in notes:
        typer.echo(f"  note: {safe_text(note)}")


def _print_refusal(
    file: Path, refused: VerificationError, checked: CheckedRevocations | None, *, as_json: bool
) -> None:
    """Every reason, and who signed what when the signature itself verified (issue 3, item 6)."""
    if as_json:
        print_json(
            {
                "verified": False,
                "reasons": refused.reasons,
                "signers": refused.signers,
                "manifest": refused.manifest,
                "revocations": checked.to_json() if checked is not None else None,
            }
        )
        return
    manifest = refused.manifest
    title = f" ({safe_text(manifest['name'])}@{safe_text(manifest['version'])})" if manifest else ""
    typer.echo(f"refused: {safe_text(file)}{title}")
    _print_signed_facts(refused.signers, manifest)
    for reason in refused.reasons:
        typer.echo(f"  - {safe_text(reason)}")


def _print_signed_facts(signers: list[dict[str, str]], manifest: dict[str, Any] | None) -> None:
    """The signers, licence and consent lines shared by the verified and the refused output."""
    for signer in signers:
        typer.echo(f"  signed by {signer['role']} {safe_text(signer['label'])} ({signer['keyid'][:16]}…)")
    if manifest is None:
        return
    lic, consent = manifest["license"], manifest["consent"]
    commercial = "commercial use allowed" if lic["commercial_use"] else "no commercial use"
    typer.echo(f"  licence: {safe_text(lic['id'])} ({commercial})")
    typer.echo(f"  consent: {safe_text(consent['subject'])}, {safe_text(consent['status'])}")


def load_signing_key(path: Path) -> PrivateKey:
    """A private key for signing: passphrase from the environment, or a prompt only on a terminal."""
    from lorareg.signing.keys import is_encrypted_pem, load_private_key, permission_warning, read_key_file

    pem = read_key_file(path)
    warning = permission_warning(path)
    if warning:
        typer.echo(f"warning: {warning}", err=True)
    password = _existing_password(path) if is_encrypted_pem(pem) else None
    return load_private_key(pem, password=password)


def _existing_password(path: Path) -> bytes:
    env = os.environ.get(PASSWORD_ENV)
    if env:
        return env.encode("utf-8")
    if not sys.stdin.isatty():
        raise InputError(f"key {path} is encrypted: set {PASSWORD_ENV} (stdin is not a terminal, no prompt)")
    import getpass

    return getpass.getpass(f"Passphrase for {path}: ").encode("utf-8")


def _new_password() -> bytes:
    env = os.environ.get(PASSWORD_ENV)
    if env:
        return env.encode("utf-8")
    if not sys.stdin.isatty():
        raise InputError(
            f"--encrypt needs a passphrase: set {PASSWORD_ENV} (stdin is not a terminal, no prompt)"
        )
    import getpass

    first = getpass.getpass("New passphrase: ")
    if not first:
        raise InputError("empty passphrase; expected at least one character")
    if getpass.getpass("Repeat passphrase: ") != first:
        raise InputError("the two passphrases differ")
    return first.encode("utf-8")


def _write_atomically(target: Path, data: bytes) -> None:
    """Write via a temp file and rename, so a crash never leaves half a signature file."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, target)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write {target}: {e.strerror}") from e
