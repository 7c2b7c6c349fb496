"""
PKCS#12 bundles as ``--cert`` (with ``--key-passphrase-file``, no ``--key``), on
the server and the client: loading and checking (``tlsecho._settings._pkcs12``),
then real ``twistd -n tlsecho`` processes, the real ``tlsecho client`` and
``openssl s_client``.  Also the client's encrypted PEM key against ``--verify
required``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12

from tlsecho import ConfigurationError, Material, TLSSettings
from tlsecho._settings._pkcs12 import is_pkcs12

from _processes import ServerProcess, run_client, run_twistd, start_server
from conftest import TLSFiles

PASSPHRASE = b"correct horse battery staple"
PAYLOAD = b"hello over pkcs12\n"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


def _bundle(
    leaf: trustme.LeafCert,
    path: Path,
    passphrase: bytes | None = PASSPHRASE,
    key: object = None,
    extra: list[x509.Certificate] | None = None,
) -> Path:
    """Write ``leaf`` (its key, certificate and intermediates) as PKCS#12, mode 0600."""
    chain = [x509.load_pem_x509_certificate(b.bytes()) for b in leaf.cert_chain_pems]
    private_key = key or serialization.load_pem_private_key(
        leaf.private_key_pem.bytes(), None
    )
    encryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    path.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"tlsecho",
            private_key,  # type: ignore[arg-type]
            chain[0],
            chain[1:] if extra is None else extra,
            encryption,
        )
    )
    path.chmod(0o600)
    return path


def _passphrase(directory: Path, value: bytes = PASSPHRASE) -> Path:
    path = directory / "p12.pass"
    path.write_bytes(value + b"\n")
    path.chmod(0o600)
    return path


def _load_error(**settings: object) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as info:
        Material.load(TLSSettings(**settings))  # type: ignore[arg-type]
    return info.value


# Loading ------------------------------------------------------------------------------


def test_bundle_gives_chain_leaf_first_whatever_the_order(
    ca: trustme.CA, tmp_path: Path
) -> None:
    """Key, leaf and extra certificates (given root first) become the chain, leaf first."""
    intermediate = ca.create_child_ca()
    leaf = intermediate.issue_cert("localhost")
    root = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    middle = x509.load_pem_x509_certificate(intermediate.cert_pem.bytes())
    bundle = _bundle(leaf, tmp_path / "server.p12", extra=[root, middle])
    assert is_pkcs12(bundle.read_bytes())
    material = Material.load(
        TLSSettings(certificate=bundle, key_passphrase_file=_passphrase(tmp_path))
    )
    assert [c.subject for c in material.chain] == [
        x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes()).subject,
        middle.subject,
        root.subject,
    ]
    assert material.key is not None
    assert material.key.public_key() == material.chain[0].public_key()


def test_pem_and_der_certificates_are_not_pkcs12(tls_files: TLSFiles) -> None:
    """Detection is by content: PEM and a DER certificate are not bundles."""
    pem = tls_files.server_cert.read_bytes()
    assert not is_pkcs12(pem)
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    assert not is_pkcs12(der)
    assert not is_pkcs12(b"")


def test_unencrypted_bundle_needs_no_passphrase(ca: trustme.CA, tmp_path: Path) -> None:
    """A bundle without encryption loads without --key-passphrase-file."""
    bundle = _bundle(ca.issue_cert("localhost"), tmp_path / "plain.bin", passphrase=None)
    assert len(Material.load(TLSSettings(certificate=bundle)).chain) == 1


def test_wrong_passphrase_is_one_line(ca: trustme.CA, tmp_path: Path) -> None:
    bundle = _bundle(ca.issue_cert("localhost"), tmp_path / "server.p12")
    error = _load_error(
        certificate=bundle, key_passphrase_file=_passphrase(tmp_path, b"wrong")
    )
    assert str(error) == (
        f"certificate {bundle}: wrong passphrase (from key_passphrase_file) "
        "or malformed PKCS#12"
    )


def test_missing_passphrase_names_the_option(ca: trustme.CA, tmp_path: Path) -> None:
    bundle = _bundle(ca.issue_cert("localhost"), tmp_path / "server.p12")
    assert str(_load_error(certificate=bundle)) == (
        f"certificate {bundle}: the PKCS#12 bundle is encrypted (or malformed): give "
        "its passphrase with key_passphrase_file"
    )


def test_bundle_without_certificate_is_refused(ca: trustme.CA, tmp_path: Path) -> None:
    """A key alone (cryptography and openssl refuse to write a mismatched pair)."""
    key = ec.generate_private_key(ec.SECP256R1())
    bundle = tmp_path / "key-only.p12"
    bundle.write_bytes(
        pkcs12.serialize_key_and_certificates(
            None, key, None, None, serialization.BestAvailableEncryption(PASSPHRASE)
        )
    )
    bundle.chmod(0o600)
    error = _load_error(certificate=bundle, key_passphrase_file=_passphrase(tmp_path))
    assert str(error) == f"certificate {bundle}: PKCS#12 bundle holds no certificate"


def test_bundle_readable_by_others_is_refused(ca: trustme.CA, tmp_path: Path) -> None:
    """The bundle holds the key: the key file permission check applies to it."""
    bundle = _bundle(ca.issue_cert("localhost"), tmp_path / "server.p12")
    bundle.chmod(0o644)
    error = _load_error(certificate=bundle, key_passphrase_file=_passphrase(tmp_path))
    assert str(error) == (
        f"certificate {bundle}: private key file is readable by other users (mode 0644); "
        f"fix it with: chmod o-rwx {bundle}"
    )


def test_bundle_with_key_option_is_refused(tls_files: TLSFiles, tmp_path: Path) -> None:
    bundle = _bundle(tls_files.server_ca.issue_cert("localhost"), tmp_path / "s.p12")
    error = _load_error(
        certificate=bundle,
        private_key=tls_files.server_key,
        key_passphrase_file=_passphrase(tmp_path),
    )
    assert str(error) == (
        f"private_key {tls_files.server_key}: {bundle} is a PKCS#12 bundle, which "
        "holds the key; drop private_key"
    )


def test_unrelated_extra_certificate_is_refused(ca: trustme.CA, tmp_path: Path) -> None:
    stranger = x509.load_pem_x509_certificate(trustme.CA().cert_pem.bytes())
    bundle = _bundle(ca.issue_cert("localhost"), tmp_path / "s.p12", extra=[stranger])
    error = _load_error(certificate=bundle, key_passphrase_file=_passphrase(tmp_path))
    assert "that is not in the chain of" in str(error)


# Real peers ---------------------------------------------------------------------------


def _p12_server(
    servers: list[ServerProcess], tls_files: TLSFiles, tmp_path: Path
) -> ServerProcess:
    """The plugin serving a bundle, requiring client certificates."""
    bundle = _bundle(
        tls_files.server_ca.issue_cert("localhost", "127.0.0.1"), tmp_path / "server.p12"
    )
    return start_server(
        servers,
        "--cert",
        str(bundle),
        "--key-passphrase-file",
        str(_passphrase(tmp_path)),
        "--verify",
        "required",
        "--ca",
        str(tls_files.client_ca),
    )


def test_client_bundle_against_bundle_server(
    servers: list[ServerProcess], tls_files: TLSFiles, tmp_path: Path
) -> None:
    """Both sides from PKCS#12; the server requires the client's certificate."""
    server = _p12_server(servers, tls_files, tmp_path)
    client = tmp_path / "client"
    client.mkdir()
    bundle = _bundle(
        tls_files.client_authority.issue_cert("client.example"), client / "client.p12"
    )
    result = run_client(
        server.address,
        "--ca",
        str(tls_files.ca),
        "--cert",
        str(bundle),
        "--key-passphrase-file",
        str(_passphrase(client)),
        payload=PAYLOAD,
    )
    assert (result.returncode, result.stdout) == (0, PAYLOAD), result.stderr
    # Without a certificate the same server refuses: the bundle was what got in.
    refused = run_client(server.address, "--ca", str(tls_files.ca), payload=PAYLOAD)
    assert refused.returncode == 4


def test_client_encrypted_pem_key_against_verify_required(
    servers: list[ServerProcess], tls_files: TLSFiles, tmp_path: Path
) -> None:
    """The client's --key-passphrase-file decrypts a PEM --key."""
    server = start_server(
        servers,
        "--cert",
        str(tls_files.server_cert),
        "--key",
        str(tls_files.server_key),
        "--verify",
        "required",
        "--ca",
        str(tls_files.client_ca),
    )
    key = serialization.load_pem_private_key(tls_files.client_key.read_bytes(), None)
    encrypted = tmp_path / "client-encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(PASSPHRASE),
        )
    )
    encrypted.chmod(0o600)
    common = ["--ca", str(tls_files.ca), "--cert", str(tls_files.client_cert)]
    result = run_client(
        server.address,
        *common,
        "--key",
        str(encrypted),
        "--key-passphrase-file",
        str(_passphrase(tmp_path)),
        payload=PAYLOAD,
    )
    assert (result.returncode, result.stdout) == (0, PAYLOAD), result.stderr
    wrong = run_client(
        server.address,
        *common,
        "--key",
        str(encrypted),
        "--key-passphrase-file",
        str(_passphrase(tmp_path / "..", b"nope")),
        payload=PAYLOAD,
    )
    assert wrong.returncode == 2
    assert wrong.stderr.decode() == (
        f"tlsecho client: --key {encrypted}: wrong passphrase "
        "(from --key-passphrase-file)\n"
    )


def test_bad_passphrase_stops_server_and_client(
    tls_files: TLSFiles, tmp_path: Path
) -> None:
    """A wrong passphrase: one line naming --cert and the bundle, exit 2, on both."""
    bundle = _bundle(tls_files.server_ca.issue_cert("localhost"), tmp_path / "s.p12")
    wrong = _passphrase(tmp_path, b"not it")
    line = (
        f"--cert {bundle}: wrong passphrase (from --key-passphrase-file) "
        "or malformed PKCS#12"
    )
    server = run_twistd("--cert", str(bundle), "--key-passphrase-file", str(wrong))
    assert server.returncode != 0
    assert line in server.stderr + server.stdout
    assert "Traceback" not in server.stderr + server.stdout
    client = run_client(
        "127.0.0.1:9", "--cert", str(bundle), "--key-passphrase-file", str(wrong)
    )
    assert client.returncode == 2
    assert client.stderr.decode() == f"tlsecho client: {line}\n"


def test_openssl_s_client_connects_to_bundle_server(
    servers: list[ServerProcess], tls_files: TLSFiles, tmp_path: Path
) -> None:
    """openssl s_client, with a PEM client certificate, verifies the bundle's chain."""
    server = _p12_server(servers, tls_files, tmp_path)
    result = subprocess.run(
        [
            OPENSSL,
            "s_client",
            "-connect",
            f"127.0.0.1:{server.port}",
            "-servername",
            "localhost",
            "-verify_hostname",
            "localhost",
            "-CAfile",
            str(tls_files.ca),
            "-verify_return_error",
            "-cert",
            str(tls_files.client_cert),
            "-key",
            str(tls_files.client_key),
        ],
        input=PAYLOAD,
        capture_output=True,
        timeout=30,
        check=False,
    )
    out = result.stdout.decode("utf-8", "replace")
    assert result.returncode == 0, result.stderr
    assert "Verify return code: 0 (ok)" in out
