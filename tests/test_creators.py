"""
Tests for tlsecho's connection creators: real TLS handshakes in memory, no sockets.

Each test builds a server and a client connection creator from L{TLSSettings} with
trustme certificates, runs an echo (or a handshake that stays open, to look at what
was negotiated) through L{_loopback.loopback}, and checks what each side saw: the
client's result and the one event the server logs per connection.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IOpenSSLServerConnectionCreator,
)
from twisted.internet.ssl import CertificateOptions
from twisted.python.failure import Failure

from tlsecho import (
    ConfigurationError,
    HandshakeFailed,
    ServerConnectionCreator,
    TLSSettings,
    TLSVersion,
    VerifyMode,
    client_creator,
    server_creator,
)

from _loopback import Loopback, OpenClient, loopback
from conftest import ServerLog, TLSFiles, write_cert

UNKNOWN_CA = (
    "certificate verify failed: unknown CA (unable to get local issuer certificate)"
)
PEER_SAYS_UNKNOWN_CA = "the peer does not trust our certificate (unknown CA)"


@pytest.fixture(params=[trustme.KeyType.RSA, trustme.KeyType.ECDSA], ids=["RSA", "ECDSA"])
def typed_files(request: pytest.FixtureRequest, tmp_path: Path) -> TLSFiles:
    """Like tls_files, with every CA and certificate of one key type."""
    key_type: trustme.KeyType = request.param
    server_ca = trustme.CA(key_type=key_type)
    client_ca = trustme.CA(key_type=key_type)
    server_cert, server_key = write_cert(
        server_ca.issue_cert("localhost", "127.0.0.1", "::1", key_type=key_type),
        tmp_path,
        "server",
    )
    client_cert, client_key = write_cert(
        client_ca.issue_cert("client.example", key_type=key_type), tmp_path, "client"
    )
    server_ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    client_ca.cert_pem.write_to_path(str(tmp_path / "client-ca.pem"))
    return TLSFiles(
        ca=tmp_path / "ca.pem",
        server_cert=server_cert,
        server_key=server_key,
        client_ca=tmp_path / "client-ca.pem",
        client_cert=client_cert,
        client_key=client_key,
        server_ca=server_ca,
        client_authority=client_ca,
    )


def _server(files: TLSFiles, **settings: Any) -> ServerConnectionCreator:
    """A server creator with the server certificate of C{files}."""
    return server_creator(
        TLSSettings(certificate=files.server_cert, private_key=files.server_key, **settings)
    )


def _client(
    files: TLSFiles, servername: str = "localhost", **settings: Any
) -> IOpenSSLClientConnectionCreator:
    """A client creator trusting the server CA of C{files} (unless told otherwise)."""
    settings.setdefault("ca", (files.ca,))
    return client_creator(TLSSettings(**settings), servername)


def _with_client_cert(files: TLSFiles, **settings: Any) -> dict[str, Any]:
    return {"certificate": files.client_cert, "private_key": files.client_key, **settings}


def _outcome(connection: Loopback) -> bytes | Failure:
    """What the echo client's result fired with; it must have fired."""
    results: list[bytes | Failure] = []
    connection.client.result.addBoth(results.append)
    assert results, "the echo exchange did not finish"
    return results[0]


def _echoed(connection: Loopback) -> bytes:
    """The echoed bytes, asserting the exchange succeeded."""
    outcome = _outcome(connection)
    if isinstance(outcome, Failure):
        raise AssertionError(f"echo failed: {outcome.getErrorMessage()}")
    return outcome


def _handshake_failure(connection: Loopback) -> str:
    """The reason the client gives, asserting it failed with HandshakeFailed."""
    outcome = _outcome(connection)
    assert isinstance(outcome, Failure), f"echo unexpectedly succeeded: {outcome!r}"
    assert outcome.check(HandshakeFailed), outcome.getTraceback()
    reason: str = outcome.value.reason
    return reason


def _open(
    server: IOpenSSLServerConnectionCreator, client: IOpenSSLClientConnectionCreator
) -> Loopback:
    """A completed handshake kept open, asserting it succeeded on the client."""
    connection = loopback(server, client, client=OpenClient())
    assert connection.client.handshake_done, connection.client.lost
    assert connection.client.lost is None
    assert connection.server.handshake_done
    return connection


def _peer_certificate(connection: Loopback) -> x509.Certificate | None:
    """The certificate the client presented, as the server sees it."""
    certificate: x509.Certificate | None = (
        connection.server_tls.getHandle().get_peer_certificate(as_cryptography=True)
    )
    return certificate


def _first_certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


# The basic handshake.


def test_echo_over_tls(typed_files: TLSFiles, server_log: ServerLog) -> None:
    """A client that trusts the server's CA echoes through a TLS handshake."""
    connection = loopback(_server(typed_files), _client(typed_files))
    assert _echoed(connection) == b"hello"
    event = server_log.only()
    assert not event["failed"]
    assert event["bytes_in"] == 5
    assert event["tls_version"] == "TLSv1.3"


def test_default_negotiates_tls13(tls_files: TLSFiles) -> None:
    """With default settings on both sides, TLS 1.3 is negotiated."""
    connection = _open(_server(tls_files), _client(tls_files))
    assert connection.client_tls.getHandle().get_protocol_version_name() == "TLSv1.3"
    assert connection.server_tls.getHandle().get_protocol_version_name() == "TLSv1.3"


def test_server_creator_serves_many_connections(tls_files: TLSFiles) -> None:
    """One server creator (one context) serves connection after connection."""
    server = _server(tls_files)
    for _ in range(3):
        assert _echoed(loopback(server, _client(tls_files))) == b"hello"


# Server verification modes.


def test_verify_none_asks_for_no_client_certificate(tls_files: TLSFiles) -> None:
    """With verify none the server does not ask for, so does not get, a certificate."""
    connection = _open(
        _server(tls_files, verify=VerifyMode.NONE),
        _client(tls_files, **_with_client_cert(tls_files)),
    )
    assert _peer_certificate(connection) is None


def test_verify_default_is_none_on_server(tls_files: TLSFiles) -> None:
    """Server settings without a verify mode ask for no client certificate."""
    connection = _open(
        _server(tls_files, ca=(tls_files.client_ca,)),
        _client(tls_files, **_with_client_cert(tls_files)),
    )
    assert _peer_certificate(connection) is None


def test_verify_optional_accepts_client_without_certificate(tls_files: TLSFiles) -> None:
    """With verify optional a client without a certificate is served."""
    server = _server(tls_files, verify=VerifyMode.OPTIONAL, ca=(tls_files.client_ca,))
    assert _echoed(loopback(server, _client(tls_files))) == b"hello"
    assert _peer_certificate(_open(server, _client(tls_files))) is None


def test_verify_optional_accepts_trusted_client_certificate(tls_files: TLSFiles) -> None:
    """With verify optional a client certificate from the trusted CA is accepted."""
    server = _server(tls_files, verify=VerifyMode.OPTIONAL, ca=(tls_files.client_ca,))
    client = _client(tls_files, **_with_client_cert(tls_files))
    assert _echoed(loopback(server, client)) == b"hello"
    assert _peer_certificate(_open(server, client)) == _first_certificate(
        tls_files.client_cert
    )


def test_verify_optional_refuses_untrusted_client_certificate(
    tls_files: TLSFiles, tmp_path: Path, server_log: ServerLog
) -> None:
    """With verify optional a client certificate from another CA is refused."""
    stranger_cert, stranger_key = write_cert(
        trustme.CA().issue_cert("client.example"), tmp_path, "stranger"
    )
    server = _server(tls_files, verify=VerifyMode.OPTIONAL, ca=(tls_files.client_ca,))
    client = _client(tls_files, certificate=stranger_cert, private_key=stranger_key)
    assert _handshake_failure(loopback(server, client)) == PEER_SAYS_UNKNOWN_CA
    event = server_log.only()
    assert event["failed"]
    assert event["reason"] == UNKNOWN_CA


def test_verify_required_refuses_client_without_certificate(
    tls_files: TLSFiles, server_log: ServerLog
) -> None:
    """With verify required a client without a certificate is refused (TLS 1.3)."""
    server = _server(tls_files, verify=VerifyMode.REQUIRED, ca=(tls_files.client_ca,))
    reason = _handshake_failure(loopback(server, _client(tls_files)))
    assert reason == "server requires a client certificate"
    event = server_log.only()
    assert event["failed"]
    assert event["reason"] == "no client certificate"


def test_verify_required_refuses_client_without_certificate_tls12(
    tls_files: TLSFiles, server_log: ServerLog
) -> None:
    """With verify required a TLS 1.2 client without a certificate is refused too."""
    server = _server(tls_files, verify=VerifyMode.REQUIRED, ca=(tls_files.client_ca,))
    client = _client(tls_files, max_tls=TLSVersion.TLSv1_2)
    reason = _handshake_failure(loopback(server, client))
    assert reason.startswith("the peer refused the handshake (handshake failure")
    event = server_log.only()
    assert event["failed"]
    assert event["stage"] == "TLS handshake"
    assert event["reason"] == "no client certificate"


def test_verify_required_accepts_trusted_client_certificate(
    typed_files: TLSFiles, server_log: ServerLog
) -> None:
    """With verify required a client certificate from the trusted CA is accepted."""
    server = _server(typed_files, verify=VerifyMode.REQUIRED, ca=(typed_files.client_ca,))
    client = _client(typed_files, **_with_client_cert(typed_files))
    assert _echoed(loopback(server, client)) == b"hello"
    assert not server_log.only()["failed"]


def test_client_certificate_is_presented(typed_files: TLSFiles) -> None:
    """The client presents its certificate, and the server sees that certificate."""
    server = _server(typed_files, verify=VerifyMode.REQUIRED, ca=(typed_files.client_ca,))
    client = _client(typed_files, **_with_client_cert(typed_files))
    connection = _open(server, client)
    assert connection.server_tls.getPeerCertificate() is not None
    assert _peer_certificate(connection) == _first_certificate(typed_files.client_cert)


def test_verify_required_refuses_untrusted_client_certificate(
    tls_files: TLSFiles, tmp_path: Path, server_log: ServerLog
) -> None:
    """With verify required a client certificate from another CA is refused."""
    stranger_cert, stranger_key = write_cert(
        trustme.CA().issue_cert("client.example"), tmp_path, "stranger"
    )
    server = _server(tls_files, verify=VerifyMode.REQUIRED, ca=(tls_files.client_ca,))
    client = _client(tls_files, certificate=stranger_cert, private_key=stranger_key)
    assert _handshake_failure(loopback(server, client)) == PEER_SAYS_UNKNOWN_CA
    event = server_log.only()
    assert event["failed"]
    assert event["reason"] == UNKNOWN_CA


@pytest.mark.parametrize("mode", [VerifyMode.OPTIONAL, VerifyMode.REQUIRED])
def test_verifying_server_refuses_expired_client_certificate(
    tls_files: TLSFiles, server_log: ServerLog, mode: VerifyMode
) -> None:
    """A verifying server refuses an expired client certificate and logs why."""
    now = datetime.datetime.now(datetime.UTC)
    expired = tls_files.client_authority.issue_cert(
        "client.example", not_after=now - datetime.timedelta(days=1)
    )
    server = _server(tls_files, verify=mode, ca=(tls_files.client_ca,))
    reason = _handshake_failure(loopback(server, _raw_options(expired)))
    assert reason == "the peer says our certificate has expired"
    event = server_log.only()
    assert event["failed"]
    assert event["reason"] == "certificate verify failed: certificate has expired"


def test_verify_required_refuses_server_ca_for_clients(
    tls_files: TLSFiles, server_log: ServerLog
) -> None:
    """A client certificate is checked against --ca, not the server's own CA."""
    server_as_client = tls_files.server_ca.issue_cert("client.example")
    cert, key = write_cert(server_as_client, tls_files.ca.parent, "server-ca-client")
    server = _server(tls_files, verify=VerifyMode.REQUIRED, ca=(tls_files.client_ca,))
    client = _client(tls_files, certificate=cert, private_key=key)
    assert _handshake_failure(loopback(server, client)) == PEER_SAYS_UNKNOWN_CA
    # The client's OpenSSL completes its chain with the root it trusts, so the
    # server meets that root as a self-signed certificate it does not trust.
    assert server_log.only()["reason"].startswith("certificate verify failed: unknown CA (")


def test_server_announces_acceptable_client_cas(tls_files: TLSFiles) -> None:
    """A verifying server names the CAs it accepts in its certificate request."""
    server = _server(tls_files, verify=VerifyMode.OPTIONAL, ca=(tls_files.client_ca,))
    connection = _open(server, _client(tls_files))
    names = connection.client_tls.getHandle().get_client_ca_list()
    assert [name.der() for name in names] == [
        _first_certificate(tls_files.client_ca).subject.public_bytes()
    ]


def test_client_intermediate_is_sent(tls_files: TLSFiles) -> None:
    """A client certificate issued by an intermediate verifies against the root alone."""
    intermediate = tls_files.client_authority.create_child_ca()
    cert, key = write_cert(
        intermediate.issue_cert("client.example"), tls_files.ca.parent, "deep-client"
    )
    server = _server(tls_files, verify=VerifyMode.REQUIRED, ca=(tls_files.client_ca,))
    client = _client(tls_files, certificate=cert, private_key=key)
    assert _echoed(loopback(server, client)) == b"hello"


# Server creator configuration errors.


@pytest.mark.parametrize("mode", [VerifyMode.OPTIONAL, VerifyMode.REQUIRED])
def test_server_verify_without_ca(tls_files: TLSFiles, mode: VerifyMode) -> None:
    """Asking for client certificates without ca is refused, naming verify."""
    settings = TLSSettings(
        certificate=tls_files.server_cert, private_key=tls_files.server_key, verify=mode
    )
    with pytest.raises(ConfigurationError) as info:
        ServerConnectionCreator(settings)
    assert str(info.value) == (
        f"verify: {mode.value} needs ca: the CA certificates that client "
        "certificates must chain to"
    )
    with pytest.raises(ConfigurationError, match=rf"^verify: {mode.value} needs ca"):
        server_creator(settings)


def test_server_without_certificate(tls_files: TLSFiles) -> None:
    """Server settings without a certificate are refused, naming certificate."""
    for settings in (TLSSettings(), TLSSettings(ca=(tls_files.client_ca,))):
        with pytest.raises(ConfigurationError) as info:
            ServerConnectionCreator(settings)
        assert str(info.value) == "certificate: the server needs a certificate and key"


# Client verification of the server.


@pytest.mark.parametrize("servername", ["localhost", "127.0.0.1", "::1"])
def test_client_accepts_matching_name(tls_files: TLSFiles, servername: str) -> None:
    """The client accepts a server certificate valid for the name it connects to."""
    client = _client(tls_files, servername)
    assert _echoed(loopback(_server(tls_files), client)) == b"hello"


def test_client_refuses_hostname_mismatch(tls_files: TLSFiles) -> None:
    """The client refuses a certificate not valid for the name, naming both."""
    client = _client(tls_files, "wrong.example")
    reason = _handshake_failure(loopback(_server(tls_files), client))
    assert reason == (
        "certificate verify failed: hostname mismatch: not valid for 'wrong.example' "
        "(it is for localhost, 127.0.0.1, ::1)"
    )


def test_client_refuses_ip_address_mismatch(tls_files: TLSFiles) -> None:
    """The client refuses a certificate not valid for the IP address, naming it."""
    client = _client(tls_files, "127.0.0.2")
    reason = _handshake_failure(loopback(_server(tls_files), client))
    assert reason == (
        "certificate verify failed: hostname mismatch: not valid for '127.0.0.2' "
        "(it is for localhost, 127.0.0.1, ::1)"
    )


def test_client_refuses_untrusted_server(
    tls_files: TLSFiles, server_log: ServerLog
) -> None:
    """A client that does not trust the server's CA fails with "unknown CA"."""
    client = _client(tls_files, ca=(tls_files.client_ca,))
    assert _handshake_failure(loopback(_server(tls_files), client)) == UNKNOWN_CA
    event = server_log.only()
    assert event["failed"]
    assert event["reason"] == PEER_SAYS_UNKNOWN_CA


def test_client_extra_trust(tls_files: TLSFiles) -> None:
    """Certificates given as extra_trust are trusted besides the --ca files."""
    server_ca = _first_certificate(tls_files.ca)
    settings = TLSSettings(ca=(tls_files.client_ca,))
    without = client_creator(settings, "localhost")
    assert _handshake_failure(loopback(_server(tls_files), without)) == UNKNOWN_CA
    extra = client_creator(settings, "localhost", extra_trust=[server_ca])
    assert _echoed(loopback(_server(tls_files), extra)) == b"hello"


def _raw_options(leaf: trustme.LeafCert) -> CertificateOptions:
    """
    A connection creator straight from Twisted, for certificates TLSSettings refuses.
    """
    return CertificateOptions(
        privateKey=serialization.load_pem_private_key(leaf.private_key_pem.bytes(), None),
        certificate=x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes()),
    )


def test_client_refuses_expired_server_certificate(
    tls_files: TLSFiles, server_log: ServerLog
) -> None:
    """A client refuses an expired server certificate, saying it has expired."""
    now = datetime.datetime.now(datetime.UTC)
    leaf = tls_files.server_ca.issue_cert(
        "localhost", not_after=now - datetime.timedelta(days=1)
    )
    reason = _handshake_failure(loopback(_raw_options(leaf), _client(tls_files)))
    assert reason == "certificate verify failed: certificate has expired"
    event = server_log.only()
    assert event["failed"]
    assert event["reason"] == "the peer says our certificate has expired"


def test_client_refuses_not_yet_valid_server_certificate(tls_files: TLSFiles) -> None:
    """A client refuses a server certificate that is not valid yet, saying so."""
    now = datetime.datetime.now(datetime.UTC)
    leaf = tls_files.server_ca.issue_cert(
        "localhost",
        not_before=now + datetime.timedelta(days=1),
        not_after=now + datetime.timedelta(days=30),
    )
    reason = _handshake_failure(loopback(_raw_options(leaf), _client(tls_files)))
    assert reason == "certificate verify failed: certificate is not yet valid"


def test_client_verify_optional_is_refused(tls_files: TLSFiles) -> None:
    """client_creator refuses verify optional, a server-only policy."""
    settings = TLSSettings(ca=(tls_files.ca,), verify=VerifyMode.OPTIONAL)
    with pytest.raises(ConfigurationError) as info:
        client_creator(settings, "localhost")
    assert str(info.value) == (
        "verify: optional is a server policy; the client takes required or none"
    )


def test_client_verify_none_connects_to_untrusted_server(tls_files: TLSFiles) -> None:
    """With verify none the client connects to an untrusted, misnamed server."""
    client = client_creator(TLSSettings(verify=VerifyMode.NONE), "wrong.example")
    assert _echoed(loopback(_server(tls_files), client)) == b"hello"


def test_client_verify_none_still_sends_sni(tls_files: TLSFiles) -> None:
    """With verify none the client still sends the server name as SNI."""
    client = client_creator(TLSSettings(verify=VerifyMode.NONE), "wrong.example")
    connection = _open(_server(tls_files), client)
    assert connection.server_tls.getHandle().get_servername() == b"wrong.example"


def test_client_verify_none_sends_no_sni_for_ip(tls_files: TLSFiles) -> None:
    """With verify none the client sends no SNI for an IP address."""
    client = client_creator(TLSSettings(verify=VerifyMode.NONE), "127.0.0.1")
    connection = _open(_server(tls_files), client)
    assert connection.server_tls.getHandle().get_servername() is None


def test_client_verify_none_presents_certificate(tls_files: TLSFiles) -> None:
    """With verify none the client still presents its own certificate."""
    server = _server(tls_files, verify=VerifyMode.REQUIRED, ca=(tls_files.client_ca,))
    client = client_creator(
        TLSSettings(verify=VerifyMode.NONE, **_with_client_cert(tls_files)), "localhost"
    )
    connection = _open(server, client)
    assert _peer_certificate(connection) == _first_certificate(tls_files.client_cert)


# SNI.


def test_sni_sent_for_dns_name(tls_files: TLSFiles) -> None:
    """The client sends a DNS server name as SNI."""
    connection = _open(_server(tls_files), _client(tls_files, "localhost"))
    assert connection.server_tls.getHandle().get_servername() == b"localhost"


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_no_sni_for_ip_address(tls_files: TLSFiles, address: str) -> None:
    """The client sends no SNI when it connects to an IP address."""
    connection = _open(_server(tls_files), _client(tls_files, address))
    assert connection.server_tls.getHandle().get_servername() is None


@pytest.mark.parametrize("servername", ["bücher.example", "faß.example"])
def test_sni_for_international_name_same_with_verify_none(
    ca: trustme.CA, tmp_path: Path, servername: str
) -> None:
    """An international name is sent as the same IDNA SNI with and without verify."""
    chain, key = write_cert(ca.issue_cert(servername), tmp_path, "idn")
    root = tmp_path / "root.pem"
    ca.cert_pem.write_to_path(str(root))
    server = server_creator(TLSSettings(certificate=chain, private_key=key))
    verified = _open(server, client_creator(TLSSettings(ca=(root,)), servername))
    sent = verified.server_tls.getHandle().get_servername()
    assert sent is not None
    assert sent.startswith(b"xn--")
    insecure = client_creator(TLSSettings(verify=VerifyMode.NONE), servername)
    connection = _open(server, insecure)
    assert connection.server_tls.getHandle().get_servername() == sent


# Protocol versions.


def test_no_common_version(tls_files: TLSFiles, server_log: ServerLog) -> None:
    """A client capped at TLS 1.2 cannot talk to a server requiring 1.3."""
    server = _server(tls_files, min_tls=TLSVersion.TLSv1_3)
    client = _client(tls_files, max_tls=TLSVersion.TLSv1_2)
    reason = _handshake_failure(loopback(server, client))
    assert reason == "protocol version: the peer refused our TLS versions"
    event = server_log.only()
    assert event["failed"]
    assert event["reason"] == "protocol version: no TLS version in common"


def test_no_common_version_client_min(tls_files: TLSFiles) -> None:
    """A client requiring TLS 1.3 cannot talk to a server capped at 1.2."""
    server = _server(tls_files, max_tls=TLSVersion.TLSv1_2)
    client = _client(tls_files, min_tls=TLSVersion.TLSv1_3)
    reason = _handshake_failure(loopback(server, client))
    assert reason.startswith("protocol version: ")


@pytest.mark.parametrize(
    ("server_max", "client_max"),
    [
        (TLSVersion.TLSv1_2, TLSVersion.TLSv1_2),
        (TLSVersion.TLSv1_2, TLSVersion.TLSv1_3),
        (TLSVersion.TLSv1_3, TLSVersion.TLSv1_2),
    ],
)
def test_tls12_negotiated_when_one_side_caps_it(
    tls_files: TLSFiles, server_max: TLSVersion, client_max: TLSVersion
) -> None:
    """When either side allows at most TLS 1.2, TLS 1.2 is negotiated."""
    connection = _open(
        _server(tls_files, max_tls=server_max), _client(tls_files, max_tls=client_max)
    )
    assert connection.client_tls.getHandle().get_protocol_version_name() == "TLSv1.2"


def test_tls13_only_on_both_sides(tls_files: TLSFiles) -> None:
    """Minimum TLS 1.3 on both sides negotiates TLS 1.3."""
    connection = _open(
        _server(tls_files, min_tls=TLSVersion.TLSv1_3),
        _client(tls_files, min_tls=TLSVersion.TLSv1_3),
    )
    assert connection.client_tls.getHandle().get_protocol_version_name() == "TLSv1.3"


# Ciphers.


def test_server_cipher_is_used(tls_files: TLSFiles) -> None:
    """Over TLS 1.2, the only cipher the server allows is the one negotiated."""
    server = _server(
        tls_files, ciphers="ECDHE-ECDSA-AES256-GCM-SHA384", max_tls=TLSVersion.TLSv1_2
    )
    connection = _open(server, _client(tls_files))
    handle = connection.client_tls.getHandle()
    assert handle.get_protocol_version_name() == "TLSv1.2"
    assert handle.get_cipher_name() == "ECDHE-ECDSA-AES256-GCM-SHA384"


def test_client_cipher_is_used(tls_files: TLSFiles) -> None:
    """Over TLS 1.2, the only cipher the client offers is the one negotiated."""
    client = _client(
        tls_files, ciphers="ECDHE-ECDSA-CHACHA20-POLY1305", max_tls=TLSVersion.TLSv1_2
    )
    connection = _open(_server(tls_files), client)
    assert connection.client_tls.getHandle().get_cipher_name() == (
        "ECDHE-ECDSA-CHACHA20-POLY1305"
    )


def test_no_common_cipher(tls_files: TLSFiles, server_log: ServerLog) -> None:
    """Disjoint TLS 1.2 cipher lists make the handshake fail with no cipher in common."""
    server = _server(
        tls_files, ciphers="ECDHE-ECDSA-AES256-GCM-SHA384", max_tls=TLSVersion.TLSv1_2
    )
    client = _client(tls_files, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
    reason = _handshake_failure(loopback(server, client))
    assert reason.startswith("the peer refused the handshake (handshake failure")
    assert "no common cipher" in reason
    event = server_log.only()
    assert event["failed"]
    assert event["reason"] == "no cipher in common"


def test_cipher_string_leaves_tls13_suites(tls_files: TLSFiles) -> None:
    """The cipher string limits TLS 1.2 only; TLS 1.3 keeps its own suites."""
    server = _server(tls_files, ciphers="ECDHE-ECDSA-AES256-GCM-SHA384")
    connection = _open(server, _client(tls_files))
    handle = connection.client_tls.getHandle()
    assert handle.get_protocol_version_name() == "TLSv1.3"
    assert handle.get_cipher_name().startswith("TLS_")


# Intermediates.


def test_server_sends_intermediate(ca: trustme.CA, tmp_path: Path) -> None:
    """A server chain with its intermediate verifies for a client trusting only the root."""
    chain, key = write_cert(
        ca.create_child_ca().issue_cert("localhost"), tmp_path, "server"
    )
    root = tmp_path / "root.pem"
    ca.cert_pem.write_to_path(str(root))
    assert len(x509.load_pem_x509_certificates(chain.read_bytes())) == 2
    server = server_creator(TLSSettings(certificate=chain, private_key=key))
    client = client_creator(TLSSettings(ca=(root,)), "localhost")
    assert _echoed(loopback(server, client)) == b"hello"


def test_server_without_intermediate_fails(ca: trustme.CA, tmp_path: Path) -> None:
    """Without the intermediate in the chain file, a client trusting the root fails."""
    leaf = ca.create_child_ca().issue_cert("localhost")
    chain = tmp_path / "leaf-only.pem"
    chain.write_bytes(leaf.cert_chain_pems[0].bytes())
    key = tmp_path / "server.key"
    key.write_bytes(leaf.private_key_pem.bytes())
    key.chmod(0o600)  # private key material: owner only
    root = tmp_path / "root.pem"
    ca.cert_pem.write_to_path(str(root))
    server = server_creator(TLSSettings(certificate=chain, private_key=key))
    client = client_creator(TLSSettings(ca=(root,)), "localhost")
    assert _handshake_failure(loopback(server, client)) == UNKNOWN_CA
