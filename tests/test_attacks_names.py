"""
Attacks on the client's check of the server's names (issue 10, items 1, 13 and
14), performed against the real client creator in memory and against
C{tlsecho client} facing a real C{twistd tlsecho}; and the server's refusal of
client certificates whose names cannot be read under C{--allow-*}.  The hostile
certificates come from L{hostile.names}.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography import x509
from twisted.python.failure import Failure

import tlsecho._tls._client_creator as client_creators
import tlsecho._tls._server_checks as server_checks
from tlsecho import (
    HandshakeFailed,
    TLSSettings,
    TLSVersion,
    VerifyMode,
    client_creator,
    server_creator,
)

from _loopback import loopback
from _processes import identity, run_client, start_json_server, start_server
from conftest import ServerLog, TLSFiles
from hostile.names import (
    ENCIPHER_ONLY_USAGE,
    UNUSABLE_NAMES,
    Authority,
    Leaf,
    UnusableName,
    dns,
    ip,
    loopback_network,
    rsa_key,
    subject_alt_names,
)

EXCLUDED = (
    "certificate verify failed: name constraint violated "
    "(a name is in a subtree its CA excludes)"
)
NO_USABLE_NAME = "certificate verify failed: no usable name in the certificate ("
VERSIONS = pytest.mark.parametrize(
    "max_tls", [TLSVersion.TLSv1_2, TLSVersion.TLSv1_3], ids=["TLSv1.2", "TLSv1.3"]
)


# Helpers --------------------------------------------------------------------------


@pytest.fixture
def root() -> Authority:
    """A root CA the client trusts."""
    return Authority.root()


def _root_file(root: Authority, tmp_path: Path) -> Path:
    return root.write_root(tmp_path / "hostile-root.pem")


def _echo(
    leaf: Leaf,
    root: Authority,
    tmp_path: Path,
    reference: str,
    **client_settings: Any,
) -> bytes | Failure:
    """Echo in memory: a server with C{leaf}, a client trusting C{root} for C{reference}."""
    certificate, key = leaf.write(tmp_path, "hostile-server")
    server = server_creator(TLSSettings(certificate=certificate, private_key=key))
    client = client_creator(
        TLSSettings(ca=(_root_file(root, tmp_path),), **client_settings), reference
    )
    results: list[bytes | Failure] = []
    loopback(server, client).client.result.addBoth(results.append)
    assert results, "the echo exchange did not finish"
    return results[0]


def _refusal(outcome: bytes | Failure) -> str:
    """The client's one-line reason, asserting it refused during the handshake."""
    assert isinstance(outcome, Failure), f"the client accepted it: {outcome!r}"
    assert outcome.check(HandshakeFailed), outcome.getTraceback()
    reason: str = outcome.value.reason
    assert "\n" not in reason
    return reason


def _nothing_sent(server_log: ServerLog) -> None:
    """The server saw the handshake fail and none of the payload."""
    event = server_log.only()
    assert event["failed"]
    assert event["bytes_in"] == 0


# Item 1: names that cannot be read or used ----------------------------------------


@VERSIONS
@pytest.mark.parametrize("kind", sorted(UNUSABLE_NAMES))
def test_unusable_server_name_is_refused(
    kind: str, max_tls: TLSVersion, root: Authority, tmp_path: Path, server_log: ServerLog
) -> None:
    """A server certificate from a trusted CA whose names cannot be read or used is
    refused with one line, before any payload is sent."""
    case: UnusableName = UNUSABLE_NAMES[kind]
    leaf = root.issue(case.san, common_name=case.common_name)
    reason = _refusal(_echo(leaf, root, tmp_path, case.reference, max_tls=max_tls))
    if kind == "space-padded":
        # service-identity strips the space and matches; OpenSSL's check refuses.
        assert reason.startswith(
            f"certificate verify failed: hostname mismatch: not valid for "
            f"{case.reference!r} (OpenSSL's host check"
        ), reason
    else:
        assert reason.startswith(NO_USABLE_NAME), reason
    _nothing_sent(server_log)


def test_unusable_name_next_to_a_matching_one_is_refused(
    root: Authority, tmp_path: Path
) -> None:
    """A certificate whose subjectAltName cannot be read is refused even when it also
    names the host: the names are read whole or not at all."""
    san = subject_alt_names(dns(b"localhost"), dns(b"caf\xc3\xa9\xff.example"))
    reason = _refusal(_echo(root.issue(san), root, tmp_path, "localhost"))
    assert reason.startswith(NO_USABLE_NAME), reason


@pytest.mark.parametrize(
    ("common_name", "reference"),
    [
        ("www.bank.com", "www.bank.com"),
        ("localhost", "localhost"),
        ("127.0.0.1", "127.0.0.1"),
    ],
)
def test_no_san_leaf_does_not_escape_name_constraints(
    common_name: str, reference: str, root: Authority, tmp_path: Path
) -> None:
    """An intermediate limited to example.org cannot vouch for another name with a
    leaf that has no subjectAltName, only that name as its subject CN."""
    constrained = root.intermediate(permitted=[x509.DNSName("example.org")])
    leaf = constrained.issue(None, common_name=common_name)
    reason = _refusal(_echo(leaf, root, tmp_path, reference))
    assert reason == (
        NO_USABLE_NAME + "it has no subjectAltName; the subject CN is not a name to check)"
    )


def test_a_failing_name_check_is_a_refusal(
    tls_files: TLSFiles, monkeypatch: pytest.MonkeyPatch, server_log: ServerLog
) -> None:
    """Whatever the name check raises, the certificate is refused with one line."""

    def broken(*arguments: object, **keywords: object) -> None:
        raise RuntimeError("the name check broke")

    monkeypatch.setattr(server_checks, "verify_service_identity", broken)
    client = client_creator(TLSSettings(ca=(tls_files.ca,)), "localhost")
    server = server_creator(
        TLSSettings(certificate=tls_files.server_cert, private_key=tls_files.server_key)
    )
    results: list[object] = []
    loopback(server, client).client.result.addBoth(results.append)
    (outcome,) = results
    reason = _refusal(outcome)  # type: ignore[arg-type]
    assert reason == (
        "certificate verify failed: the host name check failed "
        "(RuntimeError: the name check broke)"
    )
    _nothing_sent(server_log)


def test_openssl_host_check_is_a_second_gate(
    root: Authority, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Were service-identity to accept any certificate, OpenSSL's own host check
    still refuses a certificate for another name."""
    monkeypatch.setattr(server_checks, "verify_service_identity", lambda *a: None)
    leaf = root.issue(subject_alt_names(dns(b"other.example")))
    reason = _refusal(_echo(leaf, root, tmp_path, "payments.example"))
    assert reason.startswith(
        "certificate verify failed: hostname mismatch: not valid for "
        "'payments.example' (OpenSSL's host check"
    ), reason


def test_service_identity_is_a_gate_of_its_own(
    root: Authority, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Were OpenSSL's host check not set, service-identity still refuses a
    certificate for another name."""
    monkeypatch.setattr(client_creators, "expect_peer_name", lambda *a: None)
    leaf = root.issue(subject_alt_names(dns(b"other.example")))
    reason = _refusal(_echo(leaf, root, tmp_path, "payments.example"))
    assert reason == (
        "certificate verify failed: hostname mismatch: not valid for "
        "'payments.example' (it is for other.example)"
    )


def test_a_verify_callback_that_approves_nothing_is_not_enough(
    tls_files: TLSFiles, monkeypatch: pytest.MonkeyPatch, server_log: ServerLog
) -> None:
    """The handshake is accepted only when the name check positively approved the
    very certificate the server sent: a verify step that says yes without
    checking fails the connection when the handshake completes."""
    monkeypatch.setattr(server_checks.NameCheck, "__call__", lambda self, *a: True)
    client = client_creator(TLSSettings(ca=(tls_files.ca,)), "localhost")
    server = server_creator(
        TLSSettings(certificate=tls_files.server_cert, private_key=tls_files.server_key)
    )
    results: list[object] = []
    loopback(server, client).client.result.addBoth(results.append)
    (outcome,) = results
    assert _refusal(outcome) == (  # type: ignore[arg-type]
        "certificate verify failed: the server's certificate was not checked"
    )
    assert server_log.only()["bytes_in"] == 0


# Item 1, from outside: tlsecho client against twistd tlsecho -----------------------


@pytest.mark.parametrize("kind", ["invalid-utf8", "no-san-other-host", "no-san-ip"])
def test_cli_refuses_unusable_server_name(
    kind: str, root: Authority, tmp_path: Path, servers: list
) -> None:
    """tlsecho client exits 4 with one line and no traceback against a server whose
    certificate has no usable name, for a host name or an IP address."""
    case = UNUSABLE_NAMES[kind]
    certificate, key = root.issue(case.san, common_name=case.common_name).write(
        tmp_path, "hostile-server"
    )
    server = start_server(servers, "--cert", str(certificate), "--key", str(key))
    arguments = ["--ca", str(_root_file(root, tmp_path))]
    if case.reference != "127.0.0.1":
        arguments += ["--servername", case.reference]
    result = run_client(server.address, *arguments)
    stderr = result.stderr.decode()
    assert result.returncode == 4, stderr
    assert stderr.startswith(f"tlsecho client: {NO_USABLE_NAME}"), stderr
    assert stderr.count("\n") == 1, stderr
    assert result.stdout == b""


# Item 1, server side: client certificates with unreadable names ------------------


#: Client certificate names that cannot even be parsed.
UNREADABLE_CLIENT_NAMES = {
    "invalid-utf8": dns(b"caf\xc3\xa9\xff.example"),
    "ip-of-five-octets": ip(b"\x7f\x00\x00\x01\x00"),
}


@pytest.mark.parametrize(
    "allow",
    [{"allow_dns": ("alice.example",)}, {"allow_cn": ("alice",)}],
    ids=["dns", "cn"],
)
@pytest.mark.parametrize("kind", sorted(UNREADABLE_CLIENT_NAMES))
def test_server_refuses_client_certificate_with_unreadable_names(
    kind: str,
    allow: dict[str, Any],
    root: Authority,
    tls_files: TLSFiles,
    tmp_path: Path,
    server_log: ServerLog,
) -> None:
    """Under --allow-*, a client certificate from the trusted CA whose names cannot
    be read is refused, even if it also carries the allowed name."""
    san = subject_alt_names(dns(b"alice.example"), UNREADABLE_CLIENT_NAMES[kind])
    certificate, key = root.issue(san, common_name="alice").write(tmp_path, "mallory")
    server = server_creator(
        TLSSettings(
            certificate=tls_files.server_cert,
            private_key=tls_files.server_key,
            ca=(_root_file(root, tmp_path),),
            verify=VerifyMode.REQUIRED,
            **allow,
        )
    )
    client = client_creator(
        TLSSettings(ca=(tls_files.ca,), certificate=certificate, private_key=key),
        "localhost",
    )
    results: list[object] = []
    loopback(server, client).client.result.addBoth(results.append)
    (outcome,) = results
    assert isinstance(outcome, Failure), outcome
    _nothing_sent(server_log)


# Item 13: one normalised reference name --------------------------------------------


@pytest.mark.parametrize("reference", ["localhost", "localhost.", "LocalHost."])
@pytest.mark.parametrize("leaf_name", [b"localhost", b"localhost."])
def test_trailing_dot_does_not_escape_an_excluded_name(
    reference: str, leaf_name: bytes, root: Authority, tmp_path: Path
) -> None:
    """Under an intermediate that excludes localhost, neither a leaf for localhost
    nor one for "localhost." is accepted, whether the client asks for localhost,
    "localhost." or "LocalHost.": all three give the same refusal."""
    constrained = root.intermediate(excluded=[x509.DNSName("localhost")])
    leaf = constrained.issue(subject_alt_names(dns(leaf_name)))
    reason = _refusal(_echo(leaf, root, tmp_path, reference))
    assert reason == _refusal(_echo(leaf, root, tmp_path, "localhost"))
    if leaf_name == b"localhost":
        assert reason == EXCLUDED, reason
    else:
        assert reason == (
            "certificate verify failed: hostname mismatch: not valid for 'localhost' "
            "(it is for localhost.)"
        )


@pytest.mark.parametrize("reference", ["LocalHost.", "localhost."])
def test_reference_name_is_normalised_for_sni(
    reference: str, tls_files: TLSFiles, server_log: ServerLog
) -> None:
    """The client sends the normalised name as SNI (no trailing dot, lower case) and
    accepts the certificate for it."""
    server = server_creator(
        TLSSettings(certificate=tls_files.server_cert, private_key=tls_files.server_key)
    )
    client = client_creator(TLSSettings(ca=(tls_files.ca,)), reference)
    results: list[object] = []
    loopback(server, client).client.result.addBoth(results.append)
    assert results == [b"hello"]
    assert server_log.only()["sni"] == "localhost"


@pytest.mark.parametrize(
    "leaf_address", ["127.0.0.1", "::ffff:127.0.0.1"], ids=["IPv4", "mapped"]
)
def test_mapped_address_does_not_escape_an_excluded_range(
    leaf_address: str, root: Authority, tmp_path: Path
) -> None:
    """Under an intermediate that excludes 127.0.0.0/8, a client for
    ::ffff:127.0.0.1 accepts neither a leaf for 127.0.0.1 nor one for
    ::ffff:127.0.0.1."""
    constrained = root.intermediate(excluded=[loopback_network()])
    packed = ipaddress.ip_address(leaf_address).packed
    leaf = constrained.issue(subject_alt_names(ip(packed)))
    reason = _refusal(_echo(leaf, root, tmp_path, "::ffff:127.0.0.1"))
    assert reason == _refusal(_echo(leaf, root, tmp_path, "127.0.0.1"))
    if leaf_address == "127.0.0.1":
        assert reason == EXCLUDED, reason
    else:
        assert reason == (
            "certificate verify failed: hostname mismatch: not valid for '127.0.0.1' "
            "(it is for ::ffff:7f00:1)"
        )


def test_mapped_address_is_checked_as_ipv4(tls_files: TLSFiles) -> None:
    """A client for ::ffff:127.0.0.1 accepts a certificate for 127.0.0.1: the mapped
    address is the IPv4 address."""
    server = server_creator(
        TLSSettings(certificate=tls_files.server_cert, private_key=tls_files.server_key)
    )
    client = client_creator(TLSSettings(ca=(tls_files.ca,)), "::ffff:127.0.0.1")
    results: list[object] = []
    loopback(server, client).client.result.addBoth(results.append)
    assert results == [b"hello"]


def test_cli_sends_the_normalised_name(tls_files: TLSFiles, servers: list) -> None:
    """tlsecho client --servername LOCALHOST. sends SNI "localhost" and checks the
    certificate for it."""
    server, port = start_json_server(servers, *identity(tls_files))
    result = run_client(
        f"127.0.0.1:{port}", "--ca", str(tls_files.ca), "--servername", "LOCALHOST."
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"hello\n"
    assert server.wait_for(r'"sni":"([^"]*)"').group(1) == "localhost"


@pytest.mark.parametrize(
    ("arguments", "option"),
    [
        (["--servername", "bad name!"], "--servername"),
        (["--servername", "a..example"], "--servername"),
    ],
)
def test_cli_refuses_a_name_it_cannot_check(arguments: list[str], option: str) -> None:
    """A reference name that is neither a host name nor an IP address is a usage
    error naming the option, before anything connects."""
    result = run_client("127.0.0.1:9", *arguments)
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert stderr.startswith(f"tlsecho client: {option}: {arguments[-1]!r} is "), stderr
    assert stderr.count("\n") == 1, stderr


# Item 13: a key that may not sign ---------------------------------------------------


@pytest.mark.parametrize(
    ("key_type", "max_tls"),
    [
        ("ECDSA", TLSVersion.TLSv1_3),
        ("RSA", TLSVersion.TLSv1_3),
        # ECDHE-RSA: the server signs its key share.  (An ECDSA key that may not
        # sign is not even offered by OpenSSL's TLS 1.2 server.)
        ("RSA", TLSVersion.TLSv1_2),
    ],
    ids=["ECDSA-TLSv1.3", "RSA-TLSv1.3", "RSA-TLSv1.2"],
)
def test_server_key_that_may_not_sign_is_refused(
    key_type: str,
    max_tls: TLSVersion,
    root: Authority,
    tmp_path: Path,
    server_log: ServerLog,
) -> None:
    """A server certificate whose keyUsage allows only keyEncipherment is refused
    when the server signs the handshake with it (RFC 5280 4.2.1.3)."""
    leaf = root.issue(
        subject_alt_names(dns(b"localhost")),
        key_usage=ENCIPHER_ONLY_USAGE,
        key=rsa_key() if key_type == "RSA" else None,
    )
    reason = _refusal(_echo(leaf, root, tmp_path, "localhost", max_tls=max_tls))
    assert reason == (
        "certificate verify failed: the server's key may not be used for this "
        "handshake (its keyUsage lacks digitalSignature)"
    )
    _nothing_sent(server_log)


# Item 14: the development CA's scope -----------------------------------------------


def test_ca_option_replaces_the_development_ca(servers: list, tmp_path: Path) -> None:
    """With --ca naming another CA, the client does not trust the development CA,
    even for a loopback server: "unknown CA"."""
    server = start_server(servers)
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    result = run_client(server.address, "--ca", str(other))
    stderr = result.stderr.decode()
    assert result.returncode == 4, stderr
    assert stderr.startswith("tlsecho client: certificate verify failed: unknown CA "), (
        stderr
    )
    assert result.stdout == b""
    # And without --ca the same server is trusted: it was the CA, not the server.
    assert run_client(server.address).returncode == 0


def test_service_identity_still_reports_mismatches(tls_files: TLSFiles) -> None:
    """A usable certificate for other names still says which names it is for."""
    server = server_creator(
        TLSSettings(certificate=tls_files.server_cert, private_key=tls_files.server_key)
    )
    client = client_creator(TLSSettings(ca=(tls_files.ca,)), "wrong.example")
    results: list[object] = []
    loopback(server, client).client.result.addBoth(results.append)
    assert _refusal(results[0]) == (  # type: ignore[arg-type]
        "certificate verify failed: hostname mismatch: not valid for 'wrong.example' "
        "(it is for localhost, 127.0.0.1, ::1)"
    )
