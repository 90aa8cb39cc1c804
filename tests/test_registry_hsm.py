"""The registry key in an HSM (SoftHSM2 over PKCS#11): replicas sign through the token, never hold the key."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lorareg.errors import InputError, StorageError
from lorareg.registry import open_registry
from lorareg.registry.hsm import DEFAULT_MODULE
from lorareg.signing.checkpoint import open_checkpoint
from tests.fixtures.server import LiveServer

TOKEN, OBJECT, PIN = "lorareg-test", "registry", "4321"
URI = f"pkcs11:token={TOKEN};object={OBJECT}"


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A SoftHSM2 token with a P-256 key pair generated inside it; yields the module path."""
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)  # read when the module loads, once per process
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", TOKEN, "--pin", PIN, "--so-pin", "87654321"],
        check=True,
        capture_output=True,
    )
    import pkcs11
    from pkcs11 import Attribute, KeyType
    from pkcs11.util.ec import encode_named_curve_parameters

    with pkcs11.lib(DEFAULT_MODULE).get_token(token_label=TOKEN).open(rw=True, user_pin=PIN) as session:
        curve = {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}
        session.create_domain_parameters(KeyType.EC, curve, local=True).generate_keypair(
            store=True, label=OBJECT
        )
    yield DEFAULT_MODULE


def test_replica_signs_through_the_token_and_holds_no_private_key(
    softhsm: str, live_server_factory: Callable[..., LiveServer], tmp_path: Path
) -> None:
    server = live_server_factory(registry_key=URI, registry_key_pin=PIN)
    assert not (server.data_dir / "registry.key").exists()
    token = server.add_publisher("acme")
    path, bundle = server.adapter("acme/ink", "1.0.0")
    with server.client(token) as client:
        client.publish(path, bundle)  # countersigned by the token
    trust, policy = server.trust()  # the registry key as /api/v1/keys serves it: the token's public key
    with server.client(cache_dir=tmp_path / "cache") as client:
        pulled = client.pull("acme/ink@1.0.0", trust=trust, policy=policy)  # checkpoint, list: the token too
        note = client._request("GET", "/api/v1/log/checkpoint").content
    assert pulled.read_bytes() == path.read_bytes()
    assert open_checkpoint(note, trust.registry_keys()).signers == (server.registry.key.key_id,)


def test_pin_comes_from_a_pin_file_named_in_the_uri(softhsm: str, tmp_path: Path) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text(PIN + "\n")
    registry = open_registry(tmp_path / "data", key_uri=f"{URI}?pin-source=file:{pin_file}")
    assert registry.key.public_key.verify(registry.key.sign(b"checkpoint"), b"checkpoint")


def test_hsm_key_cannot_be_exported(softhsm: str, tmp_path: Path) -> None:
    registry = open_registry(tmp_path / "data", key_uri=URI, key_pin=PIN)
    with pytest.raises(StorageError, match="cannot be exported"):
        registry.key.to_pem()


@pytest.mark.parametrize(
    ("uri", "pin", "error", "message"),
    [
        (URI, "0000", StorageError, "PinIncorrect"),
        (URI, None, InputError, "needs a PIN"),
        (f"pkcs11:token={TOKEN};object=missing", PIN, StorageError, "NoSuchKey"),
        (f"pkcs11:token={TOKEN}", PIN, InputError, "needs object="),
        (f"{URI}?pin-value={PIN}", None, InputError, "must not carry pin-value"),
    ],
    ids=["wrong-pin", "no-pin", "no-such-object", "no-object", "pin-in-uri"],
)
def test_bad_hsm_settings_are_one_line_errors(
    softhsm: str, tmp_path: Path, uri: str, pin: str | None, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        open_registry(tmp_path / "data", key_uri=uri, key_pin=pin)
