"""
Tests for client-certificate authorization (issue 3, item 2): after the chain
verifies, ``--allow-cn``, ``--allow-dns``, ``--allow-uri`` and ``--allow-spki`` decide
which client certificates get in; a certificate passes if it matches any rule.  A
refused client gets the bad_certificate alert, the server logs who it was and why,
and ``tlsecho client`` exits 4 with "not authorized by the server".

Client certificates are built with ``cryptography`` and signed by the trustme client
CA, so each test controls exactly the CN, DNS names and URIs (SPIFFE IDs) they carry.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from twisted.python import usage
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
from tlsecho.tap import Options

from _docs import doc_block
from _loopback import Loopback, loopback
from _processes import ServerProcess, identity, run_client, run_twistd, start_server
from conftest import ServerLog, TLSFiles

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
SPIFFE_X = "spiffe://example.org/ns/x"
SPIFFE_Y = "spiffe://example.org/ns/y"
REFUSED = "the peer rejected our certificate (bad certificate)"


# Helpers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientCert:
    """A client certificate and key written to files, and its SPKI SHA-256."""

    cert: Path
    key: Path
    spki: bytes

    @property
    def spki_base64(self) -> str:
        return base64.b64encode(self.spki).decode()

    @property
    def spki_hex(self) -> str:
        return self.spki.hex()


def _issue(
    authority: trustme.CA,
    directory: Path,
    name: str,
    common_name: str | None = None,
    dns: Sequence[str] = (),
    uris: Sequence[str] = (),
) -> ClientCert:
    """A client certificate from ``authority`` with exactly these names (key 0600)."""
    issuer_key = serialization.load_pem_private_key(authority.private_key_pem.bytes(), None)
    issuer = x509.load_pem_x509_certificate(authority.cert_pem.bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    subject = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tlsecho tests")]
    if common_name is not None:
        subject.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(subject))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns]
    names += [x509.UniformResourceIdentifier(u) for u in uris]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    certificate = builder.sign(issuer_key, hashes.SHA256())  # type: ignore[arg-type]
    cert_path = directory / f"{name}.pem"
    key_path = directory / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return ClientCert(cert_path, key_path, hashlib.sha256(spki).digest())


@pytest.fixture
def alice(tls_files: TLSFiles, tmp_path: Path) -> ClientCert:
    """A client certificate for CN=alice, DNS alice.example, URI spiffe://.../ns/x."""
    return _issue(
        tls_files.client_authority,
        tmp_path,
        "alice",
        common_name="alice",
        dns=["alice.example"],
        uris=[SPIFFE_X],
    )


@pytest.fixture
def mallory(tls_files: TLSFiles, tmp_path: Path) -> ClientCert:
    """A certificate from the same client CA with none of alice's names or key."""
    return _issue(
        tls_files.client_authority,
        tmp_path,
        "mallory",
        common_name="mallory",
        dns=["mallory.example"],
        uris=[SPIFFE_Y],
    )


def _server(
    files: TLSFiles, verify: VerifyMode = VerifyMode.REQUIRED, **rules: object
) -> object:
    return server_creator(
        TLSSettings(
            certificate=files.server_cert,
            private_key=files.server_key,
            ca=(files.client_ca,),
            verify=verify,
            **rules,
        )
    )


def _echo_as(
    server: object,
    files: TLSFiles,
    client: ClientCert,
    max_tls: TLSVersion | None = None,
) -> bytes | Failure:
    """Echo in memory presenting ``client``; the client's result."""
    creator = client_creator(
        TLSSettings(
            ca=(files.ca,), certificate=client.cert, private_key=client.key, max_tls=max_tls
        ),
        "localhost",
    )
    connection: Loopback = loopback(server, creator)  # type: ignore[arg-type]
    results: list[bytes | Failure] = []
    connection.client.result.addBoth(results.append)
    (outcome,) = results
    return outcome


def _assert_refused(outcome: bytes | Failure) -> None:
    assert isinstance(outcome, Failure), f"echo unexpectedly succeeded: {outcome!r}"
    assert outcome.check(HandshakeFailed), outcome.getTraceback()
    assert outcome.value.reason == REFUSED


def _refusal_line(client: ClientCert, common_name: str) -> str:
    """What the server says about a refused client: identity and SPKI pin."""
    return (
        f"client certificate not authorized (CN={common_name}, DNS:{common_name}.example, "
        f"URI:{SPIFFE_X if common_name == 'alice' else SPIFFE_Y}, "
        f"SPKI sha256/{client.spki_base64}): no --allow-* rule matches"
    )


def _rule(kind: str, client: ClientCert) -> dict[str, tuple[str, ...]]:
    """The TLSSettings rule of ``kind`` that authorizes alice's certificate."""
    return {
        "cn": {"allow_cn": ("alice",)},
        "dns": {"allow_dns": ("alice.example",)},
        "uri": {"allow_uri": (SPIFFE_X,)},
        "spki-base64": {"allow_spki": (client.spki_base64,)},
        "spki-hex": {"allow_spki": (client.spki_hex,)},
    }[kind]


def _flags(kind: str, client: ClientCert) -> list[str]:
    """The server flags of the rule of ``kind`` that authorizes ``client`` (alice)."""
    ((name, (value,)),) = _rule(kind, client).items()
    return ["--" + name.replace("_", "-"), value]


RULES = ["cn", "dns", "uri", "spki-base64", "spki-hex"]


# In memory ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", RULES)
def test_matching_certificate_is_authorized(
    tls_files: TLSFiles, alice: ClientCert, server_log: ServerLog, kind: str
) -> None:
    """A client certificate that matches the one --allow-* rule is served."""
    server = _server(tls_files, **_rule(kind, alice))
    assert _echo_as(server, tls_files, alice) == b"hello"
    assert not server_log.only()["failed"]


@pytest.mark.parametrize("kind", RULES)
def test_other_certificate_is_refused_and_logged(
    tls_files: TLSFiles,
    alice: ClientCert,
    mallory: ClientCert,
    server_log: ServerLog,
    kind: str,
) -> None:
    """A verified client certificate that matches no rule is refused with
    bad_certificate, and the server logs its CN, names and SPKI pin and why."""
    server = _server(tls_files, **_rule(kind, alice))
    _assert_refused(_echo_as(server, tls_files, mallory))
    event = server_log.only()
    assert event["failed"]
    assert event["reason"] == _refusal_line(mallory, "mallory")


def test_refusal_over_tls12(
    tls_files: TLSFiles, alice: ClientCert, mallory: ClientCert, server_log: ServerLog
) -> None:
    """Over TLS 1.2 too, an unauthorized certificate is refused with bad_certificate
    and an authorized one served."""
    server = _server(tls_files, allow_cn=("alice",))
    _assert_refused(_echo_as(server, tls_files, mallory, max_tls=TLSVersion.TLSv1_2))
    assert server_log.only()["reason"].startswith(
        "client certificate not authorized (CN=mallory,"
    )
    assert _echo_as(server, tls_files, alice, max_tls=TLSVersion.TLSv1_2) == b"hello"


def test_any_matching_rule_authorizes(
    tls_files: TLSFiles, alice: ClientCert, mallory: ClientCert
) -> None:
    """With rules of several kinds, a certificate matching any one of them passes and
    one matching none is refused."""
    server = _server(
        tls_files,
        allow_cn=("bob",),
        allow_dns=("carol.example",),
        allow_uri=("spiffe://example.org/ns/z",),
        allow_spki=(alice.spki_base64,),
    )
    assert _echo_as(server, tls_files, alice) == b"hello"
    _assert_refused(_echo_as(server, tls_files, mallory))


def test_repeated_rules_each_authorize(
    tls_files: TLSFiles, alice: ClientCert, mallory: ClientCert
) -> None:
    """A repeated --allow-cn authorizes every name given."""
    server = _server(tls_files, allow_cn=("alice", "mallory"))
    assert _echo_as(server, tls_files, alice) == b"hello"
    assert _echo_as(server, tls_files, mallory) == b"hello"


def test_uri_rule_matches_the_whole_uri(tls_files: TLSFiles, tmp_path: Path) -> None:
    """--allow-uri matches a SPIFFE ID exactly: neither a prefix nor a longer path
    passes."""
    server = _server(tls_files, allow_uri=("spiffe://example.org/ns",))
    child = _issue(tls_files.client_authority, tmp_path, "child", uris=[SPIFFE_X])
    _assert_refused(_echo_as(server, tls_files, child))
    exact = _issue(
        tls_files.client_authority, tmp_path, "ns", uris=["spiffe://example.org/ns"]
    )
    assert _echo_as(server, tls_files, exact) == b"hello"


def test_cn_rule_does_not_match_a_dns_name(
    tls_files: TLSFiles, alice: ClientCert, tmp_path: Path
) -> None:
    """--allow-cn looks at the subject CN only: a certificate with that name only as a
    SAN DNS name is refused."""
    server = _server(tls_files, allow_cn=("alice.example",))
    _assert_refused(_echo_as(server, tls_files, alice))
    named = _issue(tls_files.client_authority, tmp_path, "cn", common_name="alice.example")
    assert _echo_as(server, tls_files, named) == b"hello"


def test_dns_rule_ignores_case_and_trailing_dot(
    tls_files: TLSFiles, alice: ClientCert
) -> None:
    """--allow-dns compares host names as DNS does: case-insensitively, with or without
    the trailing dot."""
    server = _server(tls_files, allow_dns=("Alice.Example.",))
    assert _echo_as(server, tls_files, alice) == b"hello"


def test_spki_pin_forms(tls_files: TLSFiles, alice: ClientCert) -> None:
    """An SPKI pin may be upper-case hex with colons, or carry a sha256/ prefix."""
    upper = ":".join(f"{b:02X}" for b in alice.spki)
    for pin in (upper, "sha256/" + alice.spki_base64):
        server = _server(tls_files, allow_spki=(pin,))
        assert _echo_as(server, tls_files, alice) == b"hello", pin


def test_documented_pin_recipe_authorizes(
    tls_files: TLSFiles, alice: ClientCert, tmp_path: Path
) -> None:
    """The pin computed by the openssl pipeline of docs/security.md (x509 -pubkey | pkey
    -pubin -outform der | dgst -sha256 -binary | base64), run as printed on the
    certificate as client.pem, authorizes that certificate."""
    shutil.copy(alice.cert, tmp_path / "client.pem")
    script = doc_block("docs/security.md", "tests/test_authorization.py").text
    assert script.startswith("openssl x509 -in client.pem -pubkey -noout")
    result = subprocess.run(
        ["sh", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
        env={**os.environ, "PATH": f"{Path(OPENSSL).parent}:{os.environ['PATH']}"},
    )
    pin = result.stdout.strip()
    assert pin == alice.spki_base64
    assert _echo_as(_server(tls_files, allow_spki=(pin,)), tls_files, alice) == b"hello"


def test_rules_with_optional_verification_are_an_error(tls_files: TLSFiles) -> None:
    """--allow-* with --verify optional is refused: clients without a certificate
    would pass the rules unchecked."""
    settings = TLSSettings(
        certificate=tls_files.server_cert,
        private_key=tls_files.server_key,
        ca=(tls_files.client_ca,),
        verify=VerifyMode.OPTIONAL,
        allow_cn=("alice",),
    )
    with pytest.raises(ConfigurationError) as info:
        server_creator(settings)
    assert str(info.value) == (
        "allow_cn/allow_dns/allow_uri/allow_spki: need verify required "
        "(and ca): with optional, clients without a certificate would get in unchecked"
    )


def test_chain_is_verified_before_rules(
    tls_files: TLSFiles, tmp_path: Path, server_log: ServerLog
) -> None:
    """A certificate from an untrusted CA is refused as unknown CA even though its CN
    matches a rule: the rules only narrow verified certificates."""
    stranger = _issue(trustme.CA(), tmp_path, "stranger", common_name="alice")
    server = _server(tls_files, allow_cn=("alice",))
    outcome = _echo_as(server, tls_files, stranger)
    assert isinstance(outcome, Failure)
    assert outcome.value.reason == "the peer does not trust our certificate (unknown CA)"
    assert server_log.only()["reason"].startswith("certificate verify failed: unknown CA")


# Configuration errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "value"),
    [
        ("allow_cn", "alice"),
        ("allow_dns", "alice.example"),
        ("allow_uri", SPIFFE_X),
        ("allow_spki", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="),
    ],
)
def test_rules_without_verify_are_an_error(
    tls_files: TLSFiles, rule: str, value: str
) -> None:
    """An allow_* rule on a server that does not ask for client certificates is a
    ConfigurationError naming the allow_* fields and verify."""
    settings = TLSSettings(
        certificate=tls_files.server_cert,
        private_key=tls_files.server_key,
        ca=(tls_files.client_ca,),
        **{rule: (value,)},  # type: ignore[arg-type]
    )
    with pytest.raises(ConfigurationError) as info:
        server_creator(settings)
    assert rule in info.value.option
    assert str(info.value).startswith(
        "allow_cn/allow_dns/allow_uri/allow_spki: need verify required (and ca)"
    )


@pytest.mark.parametrize(
    "pin",
    [
        "not-a-pin",
        "",
        "0" * 63,
        "g" * 64,
        base64.b64encode(b"\x01" * 31).decode(),
        base64.b64encode(b"\x01" * 33).decode(),
    ],
    ids=["words", "empty", "63-hex", "non-hex", "31-bytes", "33-bytes"],
)
def test_malformed_pin_is_an_error(pin: str) -> None:
    """A --allow-spki value that is not 32 bytes in hex or base64 is a
    ConfigurationError naming --allow-spki and the value."""
    with pytest.raises(ConfigurationError) as info:
        TLSSettings(allow_spki=(pin,))
    assert info.value.option == "allow_spki"
    assert str(info.value) == (
        f"allow_spki: {pin!r} is not a SHA-256 SPKI pin "
        "(64 hex digits or 44 base64 characters)"
    )


def test_server_options_refuse_rules_without_verify(tls_files: TLSFiles) -> None:
    """The server's option parser refuses --allow-cn without --verify, before anything
    starts."""
    options = Options()
    with pytest.raises(usage.UsageError) as info:
        options.parseOptions(
            [
                *identity(tls_files),
                "--allow-cn",
                "alice",
            ]
        )
    assert str(info.value).startswith("--allow-cn/")
    assert "need --verify" in str(info.value)


# From outside: twistd tlsecho and tlsecho client --------------------------------------


def _serve(servers: list, files: TLSFiles, *arguments: str) -> ServerProcess:
    return start_server(
        servers,
        "--cert",
        str(files.server_cert),
        "--key",
        str(files.server_key),
        "--verify",
        "required",
        "--ca",
        str(files.client_ca),
        *arguments,
    )


def _client_as(
    server: ServerProcess, files: TLSFiles, client: ClientCert, *extra: str
) -> subprocess.CompletedProcess[bytes]:
    return run_client(
        server.address,
        "--ca",
        str(files.ca),
        "--servername",
        "localhost",
        "--cert",
        str(client.cert),
        "--key",
        str(client.key),
        *extra,
        payload=b"hello\n",
        timeout=30,
    )


def test_server_flags_become_rules(tls_files: TLSFiles, alice: ClientCert) -> None:
    """Each --allow-* flag, repeated, reaches the server's authorization rules."""
    options = Options()
    options.parseOptions(
        [
            *identity(tls_files),
            "--ca",
            str(tls_files.client_ca),
            "--verify",
            "required",
            "--allow-cn",
            "alice",
            "--allow-cn",
            "bob",
            "--allow-dns",
            "Alice.Example",
            "--allow-uri",
            SPIFFE_X,
            "--allow-spki",
            alice.spki_base64,
            "--allow-spki",
            alice.spki_hex.upper(),
        ]
    )
    allowed = options["configuration"].settings.allowed
    assert allowed.common_names == {"alice", "bob"}
    assert allowed.dns_names == {"alice.example"}
    assert allowed.uris == {SPIFFE_X}
    assert allowed.spki_pins == {alice.spki}


@pytest.mark.parametrize("kind", ["cn", "uri", "spki-hex"])
def test_client_command_authorized_and_refused(
    servers: list, tls_files: TLSFiles, alice: ClientCert, mallory: ClientCert, kind: str
) -> None:
    """Against twistd tlsecho with one --allow-* rule, tlsecho client with the matching
    certificate echoes (exit 0), and with another certificate exits 4 with one line
    saying "not authorized by the server"; the server logs who was refused."""
    server = _serve(servers, tls_files, *_flags(kind, alice))
    allowed = _client_as(server, tls_files, alice)
    assert (allowed.returncode, allowed.stdout) == (0, b"hello\n"), allowed.stderr
    refused = _client_as(server, tls_files, mallory)
    stderr = refused.stderr.decode()
    assert refused.returncode == 4, stderr
    assert len(stderr.splitlines()) == 1, stderr
    assert stderr.startswith("tlsecho client: not authorized by the server")
    assert refused.stdout == b""
    server.wait_for(
        r"TLS handshake failed: client certificate not authorized \(CN=mallory, "
        r"DNS:mallory\.example, URI:spiffe://example\.org/ns/y, SPKI sha256/"
        + mallory.spki_base64.replace("+", r"\+")
        + r"\): no --allow-\* rule matches"
    )


def test_client_command_refused_over_tls12(
    servers: list, tls_files: TLSFiles, alice: ClientCert, mallory: ClientCert
) -> None:
    """tlsecho client --max-tls 1.2 with an unauthorized certificate exits 4 with "not
    authorized by the server" too."""
    server = _serve(servers, tls_files, "--allow-cn", "alice")
    refused = _client_as(server, tls_files, mallory, "--max-tls", "1.2")
    assert refused.returncode == 4, refused.stderr
    assert b"not authorized by the server" in refused.stderr


@pytest.mark.parametrize(
    "version",
    # Under TLS 1.3 the alert comes after the client's Finished: -ign_eof makes
    # s_client wait for it instead of quitting at the end of its (empty) input.
    [["-tls1_2"], ["-tls1_3", "-ign_eof"]],
    ids=["1.2", "1.3"],
)
def test_refusal_alert_is_bad_certificate(
    servers: list, tls_files: TLSFiles, mallory: ClientCert, version: list[str]
) -> None:
    """openssl s_client with an unauthorized certificate receives the bad_certificate
    alert (42), in TLS 1.2 and 1.3."""
    server = _serve(servers, tls_files, "--allow-uri", SPIFFE_X)
    result = subprocess.run(
        [
            OPENSSL,
            "s_client",
            "-connect",
            f"127.0.0.1:{server.port}",
            "-servername",
            "localhost",
            "-CAfile",
            str(tls_files.ca),
            "-cert",
            str(mallory.cert),
            "-key",
            str(mallory.key),
            *version,
        ],
        input=b"",
        capture_output=True,
        timeout=20,
        check=False,
    )
    stderr = result.stderr.decode()
    assert result.returncode != 0, result.stdout.decode()
    assert "alert bad certificate" in stderr
    assert "SSL alert number 42" in stderr


@pytest.mark.parametrize(
    ("arguments", "culprit"),
    [
        (["--allow-cn", "alice"], "--allow-cn/--allow-dns/--allow-uri/--allow-spki: need"),
        (
            ["--verify", "required", "--allow-spki", "not-a-pin"],
            "--allow-spki: 'not-a-pin' is not a SHA-256 SPKI pin",
        ),
    ],
    ids=["without-verify", "malformed-pin"],
)
def test_twistd_refuses_bad_rules(
    tls_files: TLSFiles, arguments: list[str], culprit: str
) -> None:
    """twistd tlsecho exits 2 with one line naming the option for --allow-* without
    --verify and for a malformed --allow-spki pin."""
    result = run_twistd(
        *identity(tls_files),
        "--ca",
        str(tls_files.client_ca),
        "--listen",
        "tcp:0:interface=127.0.0.1",
        *arguments,
        timeout=20,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"tlsecho: {culprit}")
