"""
``tlsecho client --show-certs``: the chain the server sent, readable, on
standard error, against the real plugin serving a trustme chain with an
intermediate; the pins checked against ``openssl``'s own pipeline.
"""

from __future__ import annotations

import datetime
import shutil
import subprocess
from pathlib import Path

import pytest
import trustme
from cryptography import x509

from tlsecho._settings._chain_text import chain_lines, key_description

from _processes import ServerProcess, run_client, start_server

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
PAYLOAD = b"show me\n"


def _openssl_pin(pem: bytes) -> str:
    """``openssl x509 -pubkey | openssl pkey -pubin -outform der | openssl dgst
    -sha256 -binary | base64``."""
    result = subprocess.run(
        f"{OPENSSL} x509 -noout -pubkey | {OPENSSL} pkey -pubin -outform der"
        f" | {OPENSSL} dgst -sha256 -binary | base64",
        shell=True,
        input=pem,
        capture_output=True,
        check=True,
    )
    return result.stdout.decode().strip()


@pytest.fixture
def chain_server(
    servers: list[ServerProcess], tmp_path: Path
) -> tuple[ServerProcess, trustme.CA, trustme.CA, trustme.LeafCert, Path]:
    root = trustme.CA(key_type=trustme.KeyType.RSA)
    intermediate = root.create_child_ca(key_type=trustme.KeyType.ECDSA)
    leaf = intermediate.issue_cert("localhost", "127.0.0.1", "echo.example")
    chain, key, ca = tmp_path / "chain.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    chain.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key.write_bytes(leaf.private_key_pem.bytes())
    key.chmod(0o600)
    root.cert_pem.write_to_path(str(ca))
    server = start_server(servers, "--cert", str(chain), "--key", str(key))
    return server, root, intermediate, leaf, ca


def _subject(pem: bytes) -> str:
    return x509.load_pem_x509_certificate(pem).subject.rfc4514_string()


def test_show_certs_describes_the_chain(chain_server: tuple) -> None:
    server, root, _, leaf, ca = chain_server
    result = run_client(server.address, "--ca", str(ca), "--show-certs", payload=PAYLOAD)
    assert (result.returncode, result.stdout) == (0, PAYLOAD), result.stderr
    lines = result.stderr.decode().splitlines()
    leaf_pem, intermediate_pem = (blob.bytes() for blob in leaf.cert_chain_pems)
    assert lines[0] == "tlsecho client: the server sent 2 certificates:"
    assert lines[1] == "  certificate 1 (server):"
    assert lines[2] == f"    subject:  {_subject(leaf_pem)}"
    assert lines[3] == f"    issuer:   {_subject(intermediate_pem)}"
    assert lines[4] == "    SANs:     DNS:localhost, DNS:echo.example, IP:127.0.0.1"
    assert lines[5].startswith("    valid:    2000-01-01 00:00:00 to ")
    assert lines[5].endswith(" days left)")
    assert lines[6] == "    key:      EC P-256"
    assert lines[7] == f"    SPKI pin: {_openssl_pin(leaf_pem)}"
    assert lines[8] == "  certificate 2 (intermediate or CA):"
    assert lines[9] == f"    subject:  {_subject(intermediate_pem)}"
    assert lines[10] == f"    issuer:   {_subject(root.cert_pem.bytes())}"
    assert lines[11] == "    SANs:     (none)"
    assert lines[13] == "    key:      EC P-256"
    assert lines[14] == f"    SPKI pin: {_openssl_pin(intermediate_pem)}"
    assert lines[15] == (
        f"  chained to: {_subject(root.cert_pem.bytes())} (from the trust store)"
    )
    assert len(lines) == 16


def test_pin_shown_is_what_pin_spki_takes(chain_server: tuple) -> None:
    """The pin line, given back to --pin-spki, is accepted."""
    server, _, _, leaf, ca = chain_server
    pin = _openssl_pin(leaf.cert_chain_pems[0].bytes())
    result = run_client(server.address, "--ca", str(ca), "--pin-spki", pin)
    assert result.returncode == 0, result.stderr


def test_show_certs_without_verification_says_so(chain_server: tuple) -> None:
    server = chain_server[0]
    result = run_client(server.address, "--verify", "none", "--show-certs")
    assert result.returncode == 0, result.stderr
    assert "  chained to: not verified (--verify none)\n" in result.stderr.decode()


@pytest.mark.parametrize(
    ("key_type", "words"),
    [(trustme.KeyType.RSA, "RSA 2048"), (trustme.KeyType.ECDSA, "EC P-256")],
)
def test_key_description(key_type: trustme.KeyType, words: str) -> None:
    certificate = x509.load_pem_x509_certificate(
        trustme.CA(key_type=key_type).cert_pem.bytes()
    )
    assert key_description(certificate) == words


def test_certificate_text_is_escaped() -> None:
    """A subject with a terminal escape and a line end stays one inert line."""
    ca = trustme.CA(organization_name="evil\x1b[2J\nCorp")
    certificate = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    now = datetime.datetime.now(datetime.UTC)
    lines = chain_lines([certificate], None, now)
    text = "\n".join(lines)
    assert "\x1b" not in text
    assert "evil\\x1b[2J\\nCorp" in text
    assert len(lines) == 9
