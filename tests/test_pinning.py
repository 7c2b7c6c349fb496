"""
Tests for client-side key pinning (issue 3, item 3): ``tlsecho client --pin-spki
SHA256`` and ``TLSSettings(pin_spki=...)`` require the server's leaf key to match one
of the pins, on top of chain and name checks or, with ``--verify none``, instead of
them.  A mismatch fails with exit 4 and "certificate pin mismatch", before any of the
payload reaches the server.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from twisted.python.failure import Failure

from tlsecho import (
    ConfigurationError,
    HandshakeFailed,
    TLSSettings,
    TLSVersion,
    VerifyMode,
    client_creator,
    server_creator,
)

from _loopback import loopback
from _processes import TLSECHO, ServerProcess, run_client, start_server
from conftest import ServerLog, TLSFiles

OTHER_PIN = base64.b64encode(hashlib.sha256(b"some other key").digest()).decode()


# Helpers ------------------------------------------------------------------------------


def _spki_sha256(certificate: x509.Certificate) -> bytes:
    der = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).digest()


def _first(path: Path) -> x509.Certificate:
    """The first certificate in a PEM file."""
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def _leaf_pin(path: Path) -> bytes:
    """The SPKI SHA-256 of the first certificate in a PEM file."""
    return _spki_sha256(x509.load_pem_x509_certificates(path.read_bytes())[0])


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def _echo(
    files: TLSFiles, servername: str = "localhost", **settings: object
) -> bytes | Failure:
    """Echo in memory against a server with the certificate of ``files``."""
    server = server_creator(
        TLSSettings(certificate=files.server_cert, private_key=files.server_key)
    )
    client = client_creator(TLSSettings(**settings), servername)  # type: ignore[arg-type]
    connection = loopback(server, client)
    results: list[bytes | Failure] = []
    connection.client.result.addBoth(results.append)
    (outcome,) = results
    return outcome


def _failure_reason(outcome: bytes | Failure) -> str:
    assert isinstance(outcome, Failure), f"echo unexpectedly succeeded: {outcome!r}"
    assert outcome.check(HandshakeFailed), outcome.getTraceback()
    reason: str = outcome.value.reason
    return reason


def _mismatch(files: TLSFiles) -> str:
    """The reason a client whose pins do not match the server's key gives."""
    return (
        "certificate pin mismatch: the server's key (DNS:localhost, IP:127.0.0.1, "
        f"IP:::1, SPKI sha256/{_b64(_leaf_pin(files.server_cert))}) matches no --pin-spki"
    )


# In memory: the library's client settings ---------------------------------------------


@pytest.mark.parametrize("max_tls", [TLSVersion.TLSv1_2, TLSVersion.TLSv1_3])
def test_matching_pin_with_verification(tls_files: TLSFiles, max_tls: TLSVersion) -> None:
    """A client that verifies the chain and pins the server's key echoes."""
    pin = _b64(_leaf_pin(tls_files.server_cert))
    outcome = _echo(tls_files, ca=(tls_files.ca,), pin_spki=(pin,), max_tls=max_tls)
    assert outcome == b"hello"


def test_matching_pin_replaces_verification(tls_files: TLSFiles) -> None:
    """With verify none, a matching pin alone admits a server whose CA is not trusted
    and whose name does not match."""
    pin = _leaf_pin(tls_files.server_cert).hex()
    outcome = _echo(tls_files, "wrong.example", verify=VerifyMode.NONE, pin_spki=(pin,))
    assert outcome == b"hello"


@pytest.mark.parametrize("max_tls", [TLSVersion.TLSv1_2, TLSVersion.TLSv1_3])
@pytest.mark.parametrize("verify", [None, VerifyMode.NONE], ids=["verified", "unverified"])
def test_mismatching_pin_fails_before_sending(
    tls_files: TLSFiles,
    server_log: ServerLog,
    verify: VerifyMode | None,
    max_tls: TLSVersion,
) -> None:
    """A server key matching no pin fails the handshake with "certificate pin mismatch"
    naming the key, and none of the payload reaches the server."""
    outcome = _echo(
        tls_files, ca=(tls_files.ca,), verify=verify, pin_spki=(OTHER_PIN,), max_tls=max_tls
    )
    assert _failure_reason(outcome) == _mismatch(tls_files)
    assert server_log.only()["bytes_in"] == 0


def test_any_pin_may_match(tls_files: TLSFiles) -> None:
    """With several pins (a backup pin, say), matching any one of them is enough."""
    pins = (OTHER_PIN, _b64(_leaf_pin(tls_files.server_cert)))
    assert _echo(tls_files, ca=(tls_files.ca,), pin_spki=pins) == b"hello"


def test_pin_of_the_ca_does_not_admit_the_leaf(tls_files: TLSFiles) -> None:
    """The pin applies to the server's own (leaf) key: pinning its CA's key fails."""
    ca_pin = _b64(_leaf_pin(tls_files.ca))
    outcome = _echo(tls_files, ca=(tls_files.ca,), pin_spki=(ca_pin,))
    assert _failure_reason(outcome) == _mismatch(tls_files)


def test_pin_does_not_replace_chain_verification(tls_files: TLSFiles) -> None:
    """With verification on, a matching pin does not excuse an untrusted CA."""
    pin = _b64(_leaf_pin(tls_files.server_cert))
    outcome = _echo(tls_files, ca=(tls_files.client_ca,), pin_spki=(pin,))
    assert _failure_reason(outcome).startswith("certificate verify failed: unknown CA")


def test_pin_does_not_replace_the_name_check(tls_files: TLSFiles) -> None:
    """With verification on, a matching pin does not excuse a host name mismatch."""
    pin = _b64(_leaf_pin(tls_files.server_cert))
    outcome = _echo(tls_files, "wrong.example", ca=(tls_files.ca,), pin_spki=(pin,))
    assert _failure_reason(outcome).startswith(
        "certificate verify failed: hostname mismatch: not valid for 'wrong.example'"
    )


def test_same_creator_pins_every_connection(tls_files: TLSFiles) -> None:
    """One client creator checks the pin on each connection it makes."""
    server = server_creator(
        TLSSettings(certificate=tls_files.server_cert, private_key=tls_files.server_key)
    )
    other_cert = tls_files.ca.parent / "other.pem"
    other_key = tls_files.ca.parent / "other.key"
    leaf = tls_files.server_ca.issue_cert("localhost")
    other_cert.write_bytes(leaf.cert_chain_pems[0].bytes())
    other_key.write_bytes(leaf.private_key_pem.bytes())
    other_key.chmod(0o600)
    impostor = server_creator(TLSSettings(certificate=other_cert, private_key=other_key))
    pin = _b64(_leaf_pin(tls_files.server_cert))
    client = client_creator(TLSSettings(ca=(tls_files.ca,), pin_spki=(pin,)), "localhost")
    impostor_refused = (
        "certificate pin mismatch: the server's key (DNS:localhost, SPKI sha256/"
        f"{_b64(_spki_sha256(_first(other_cert)))}) "
        "matches no --pin-spki"
    )
    for creator, expected in [(server, b"hello"), (impostor, None), (server, b"hello")]:
        results: list[bytes | Failure] = []
        loopback(creator, client).client.result.addBoth(results.append)
        (outcome,) = results
        if expected is None:
            assert _failure_reason(outcome) == impostor_refused
        else:
            assert outcome == expected, outcome


@pytest.mark.parametrize("pin", ["nope", "ab" * 31, base64.b64encode(b"x" * 20).decode()])
def test_malformed_pin_is_an_error(pin: str) -> None:
    """A pin that is not a SHA-256 digest in hex or base64 is a ConfigurationError
    naming --pin-spki."""
    with pytest.raises(ConfigurationError) as info:
        TLSSettings(pin_spki=(pin,))
    assert info.value.option == "pin_spki"
    assert str(info.value).startswith(f"pin_spki: {pin!r} is not a SHA-256 SPKI pin")


def test_pin_is_a_client_setting(tls_files: TLSFiles) -> None:
    """Server settings with pin_spki are refused, naming pin_spki."""
    settings = TLSSettings(
        certificate=tls_files.server_cert,
        private_key=tls_files.server_key,
        pin_spki=(OTHER_PIN,),
    )
    with pytest.raises(ConfigurationError) as info:
        server_creator(settings)
    assert str(info.value) == "pin_spki: is a client option"


# From outside: tlsecho client against twistd tlsecho ----------------------------------


@pytest.fixture
def server(servers: list, tls_files: TLSFiles) -> ServerProcess:
    """twistd tlsecho serving the localhost certificate of tls_files."""
    return start_server(
        servers, "--cert", str(tls_files.server_cert), "--key", str(tls_files.server_key)
    )


def test_client_command_matching_pin(server: ServerProcess, tls_files: TLSFiles) -> None:
    """tlsecho client --pin-spki (base64) with --ca echoes and prints nothing on stderr."""
    pin = _b64(_leaf_pin(tls_files.server_cert))
    result = run_client(server.address, "--ca", str(tls_files.ca), "--pin-spki", pin)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"hello\n", b"")


def test_client_command_pin_with_verify_none_prints_no_warning(
    server: ServerProcess, tls_files: TLSFiles
) -> None:
    """tlsecho client --verify none --pin-spki (hex) echoes from a server it does not
    otherwise trust, without the insecure-mode warning."""
    pin = _leaf_pin(tls_files.server_cert).hex()
    result = run_client(
        server.address,
        "--verify",
        "none",
        "--servername",
        "wrong.example",
        "--pin-spki",
        pin,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, b"hello\n", b"")


@pytest.mark.parametrize("verify", [[], ["--verify", "none"]], ids=["verified", "none"])
def test_client_command_mismatching_pin_exits_4(
    server: ServerProcess, tls_files: TLSFiles, verify: list[str]
) -> None:
    """tlsecho client with a pin the server's key does not match exits 4 with one line
    saying "certificate pin mismatch", and writes nothing to stdout."""
    result = run_client(
        server.address, "--ca", str(tls_files.ca), *verify, "--pin-spki", OTHER_PIN
    )
    stderr = result.stderr.decode()
    assert result.returncode == 4, stderr
    assert result.stdout == b""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"tlsecho client: {_mismatch(tls_files)}")


@pytest.mark.parametrize("max_tls", ["1.2", "1.3"])
@pytest.mark.parametrize("verify", [[], ["--verify", "none"]], ids=["verified", "none"])
def test_server_says_the_client_refused_its_certificate(
    server: ServerProcess, tls_files: TLSFiles, verify: list[str], max_tls: str
) -> None:
    """A pin mismatch is refused during the handshake, with an alert: the real
    server logs that the client rejected its certificate (bad certificate), not
    that the connection was lost, and the client exits 4."""
    result = run_client(
        server.address,
        "--ca",
        str(tls_files.ca),
        *verify,
        "--max-tls",
        max_tls,
        "--pin-spki",
        OTHER_PIN,
    )
    assert result.returncode == 4, result.stderr.decode()
    line = server.wait_for(r"TLS handshake failed: .*")
    assert line.group(0) == (
        "TLS handshake failed: the peer rejected our certificate (bad certificate)"
    )
    assert "connection lost" not in server.output


def test_client_command_repeated_pins(server: ServerProcess, tls_files: TLSFiles) -> None:
    """--pin-spki is repeatable: a backup pin next to the right one still echoes."""
    pin = _b64(_leaf_pin(tls_files.server_cert))
    result = run_client(
        server.address,
        "--ca",
        str(tls_files.ca),
        "--pin-spki",
        OTHER_PIN,
        "--pin-spki",
        pin,
    )
    assert (result.returncode, result.stdout) == (0, b"hello\n"), result.stderr


def test_client_command_malformed_pin_exits_2(tmp_path: Path) -> None:
    """tlsecho client --pin-spki with a malformed pin exits 2 with one line naming
    --pin-spki."""
    result = subprocess.run(
        [TLSECHO, "client", "--pin-spki", "not-a-pin", "127.0.0.1:1"],
        input=b"hello\n",
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.decode().splitlines() == [
        "tlsecho client: --pin-spki: 'not-a-pin' is not a SHA-256 SPKI pin "
        "(64 hex digits or 44 base64 characters)"
    ]


def test_client_command_pin_with_other_ca_fails(
    server: ServerProcess, tls_files: TLSFiles
) -> None:
    """tlsecho client with a matching pin but a --ca that did not issue the server's
    certificate still fails verification (exit 4): the pin is on top of the chain."""
    pin = _b64(_leaf_pin(tls_files.server_cert))
    result = run_client(server.address, "--ca", str(tls_files.client_ca), "--pin-spki", pin)
    assert result.returncode == 4, result.stderr
    assert b"certificate verify failed" in result.stderr


def test_trustme_key_types_pin_alike(tmp_path: Path) -> None:
    """Pins work for RSA server keys as for ECDSA ones."""
    authority = trustme.CA(key_type=trustme.KeyType.RSA)
    leaf = authority.issue_cert("localhost", key_type=trustme.KeyType.RSA)
    cert, key = tmp_path / "rsa.pem", tmp_path / "rsa.key"
    cert.write_bytes(leaf.cert_chain_pems[0].bytes())
    key.write_bytes(leaf.private_key_pem.bytes())
    key.chmod(0o600)
    server = server_creator(TLSSettings(certificate=cert, private_key=key))
    pin = _b64(_leaf_pin(cert))
    client = client_creator(TLSSettings(verify=VerifyMode.NONE, pin_spki=(pin,)), "x")
    results: list[object] = []
    loopback(server, client).client.result.addBoth(results.append)
    assert results == [b"hello"]


def test_second_gate_refuses_even_when_failing_the_connection_raises(
    tls_files: TLSFiles,
) -> None:
    """The post-handshake check runs as an info callback, whose exceptions pyOpenSSL
    ignores: if failing the connection raises, the connection is still aborted."""
    from OpenSSL import SSL

    from tlsecho._tls._server_checks import HandshakeCheck

    leaf = x509.load_pem_x509_certificates(tls_files.server_cert.read_bytes())[0]

    class Connection:
        def get_peer_certificate(self, as_cryptography: bool) -> x509.Certificate:
            return leaf

    class Protocol:
        aborted = False

        def failVerification(self, reason: Failure) -> None:
            raise RuntimeError("broken on the way")

        def abortConnection(self) -> None:
            self.aborted = True

    protocol = Protocol()
    check = HandshakeCheck(protocol, None, frozenset({b"\0" * 32}))  # type: ignore[arg-type]
    check(Connection(), SSL.SSL_CB_HANDSHAKE_DONE, 1)  # type: ignore[arg-type]
    assert protocol.aborted
