"""
Tests for several certificates on one listener chosen by SNI (issue 3, item 4):
repeatable ``--sni NAME=CERT[:KEY]`` and ``[[sni]]`` TOML tables, exact names and
``*.example.test`` wildcards (one label), the default certificate for other names,
and ``--sni-strict``, which refuses names no certificate is for with the
unrecognized_name alert.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from twisted.python import usage
from twisted.python.failure import Failure

from tlsecho import (
    ConfigurationError,
    HandshakeFailed,
    ServerConnectionCreator,
    SNICertificate,
    TLSSettings,
    TLSVersion,
    VerifyMode,
    client_creator,
    server_creator,
)
from tlsecho.tap import Options

from _loopback import OpenClient, loopback
from _processes import ServerProcess, run_client, start_server
from conftest import ServerLog, write_cert

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
EXACT = "echo.example.org"
WILDCARD = "*.example.test"
UNRECOGNIZED = "the server does not serve that name (unrecognized name)"


# Helpers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SNIFiles:
    """A default certificate (localhost) and two SNI certificates, all from one CA."""

    ca: Path
    default: tuple[Path, Path]
    exact: tuple[Path, Path]
    wildcard: tuple[Path, Path]


@pytest.fixture
def sni_files(tmp_path: Path, ca: trustme.CA) -> SNIFiles:
    """Certificates for localhost/127.0.0.1 (default), echo.example.org and
    *.example.test, and the CA file that issued them."""
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    return SNIFiles(
        ca=tmp_path / "ca.pem",
        default=write_cert(ca.issue_cert("localhost", "127.0.0.1"), tmp_path, "default"),
        exact=write_cert(ca.issue_cert(EXACT), tmp_path, "exact"),
        wildcard=write_cert(ca.issue_cert(WILDCARD), tmp_path, "wildcard"),
    )


def _entries(files: SNIFiles) -> tuple[SNICertificate, ...]:
    return (
        SNICertificate(EXACT, *files.exact),
        SNICertificate(WILDCARD, *files.wildcard),
    )


def _server(files: SNIFiles, strict: bool = False, **settings: object) -> object:
    cert, key = files.default
    return server_creator(
        TLSSettings(
            certificate=cert,
            private_key=key,
            sni=_entries(files),
            sni_strict=strict,
            **settings,  # type: ignore[arg-type]
        )
    )


def _dns_names(certificate: x509.Certificate) -> list[str]:
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return list(san.value.get_values_for_type(x509.DNSName))


def _served_names(server: object, servername: str) -> list[str]:
    """The DNS names of the certificate a client asking for ``servername`` receives."""
    client = client_creator(TLSSettings(verify=VerifyMode.NONE), servername)
    connection = loopback(server, client, client=OpenClient())  # type: ignore[arg-type]
    assert connection.client.handshake_done, connection.client.lost
    peer = connection.client_tls.getPeerCertificate()
    assert peer is not None
    return _dns_names(peer.to_cryptography())


def _verified_echo(server: object, files: SNIFiles, servername: str) -> bytes | Failure:
    """Echo with a client that verifies the chain and ``servername``."""
    client = client_creator(TLSSettings(ca=(files.ca,)), servername)
    results: list[bytes | Failure] = []
    loopback(server, client).client.result.addBoth(results.append)  # type: ignore[arg-type]
    (outcome,) = results
    return outcome


# Choosing the certificate -------------------------------------------------------------


@pytest.mark.parametrize(
    ("servername", "names"),
    [
        (EXACT, [EXACT]),
        ("ECHO.Example.ORG", [EXACT]),
        ("foo.example.test", [WILDCARD]),
        ("x-1.example.test", [WILDCARD]),
        ("localhost", ["localhost"]),
        ("unknown.example", ["localhost"]),
        ("example.test", ["localhost"]),
        ("a.b.example.test", ["localhost"]),
        ("sub.echo.example.org", ["localhost"]),
        ("127.0.0.1", ["localhost"]),
    ],
)
def test_certificate_chosen_by_name(
    sni_files: SNIFiles, servername: str, names: list[str]
) -> None:
    """The exact name (in any case) gets its certificate, one label under
    *.example.test gets the wildcard certificate, and any other name (deeper labels,
    the bare domain, no SNI for an IP address) gets the default certificate."""
    assert _served_names(_server(sni_files), servername) == names


@pytest.mark.parametrize("servername", [EXACT, "api.example.test", "localhost"])
@pytest.mark.parametrize("max_tls", [TLSVersion.TLSv1_2, TLSVersion.TLSv1_3])
def test_verifying_client_accepts_each_name(
    sni_files: SNIFiles, servername: str, max_tls: TLSVersion
) -> None:
    """A client that checks the chain and the host name echoes for every name the
    server has a certificate for, in TLS 1.2 and 1.3."""
    client = client_creator(TLSSettings(ca=(sni_files.ca,), max_tls=max_tls), servername)
    results: list[object] = []
    loopback(_server(sni_files), client).client.result.addBoth(results.append)
    assert results == [b"hello"]


def test_unknown_name_fails_the_clients_name_check(sni_files: SNIFiles) -> None:
    """Without --sni-strict, a name nobody serves gets the default certificate, which
    a verifying client then refuses as a host name mismatch."""
    outcome = _verified_echo(_server(sni_files), sni_files, "a.b.example.test")
    assert isinstance(outcome, Failure)
    assert outcome.value.reason.startswith(
        "certificate verify failed: hostname mismatch: not valid for 'a.b.example.test'"
    )


def test_sni_certificate_in_one_file(sni_files: SNIFiles, tmp_path: Path) -> None:
    """--sni NAME=CERT without :KEY reads the key from the certificate file."""
    cert, key = sni_files.exact
    combined = tmp_path / "combined.pem"
    combined.write_bytes(cert.read_bytes() + key.read_bytes())
    combined.chmod(0o600)
    entry = SNICertificate.parse(f"{EXACT}={combined}")
    assert (entry.name, entry.certificate, entry.private_key) == (EXACT, combined, None)
    default_cert, default_key = sni_files.default
    server = server_creator(
        TLSSettings(certificate=default_cert, private_key=default_key, sni=(entry,))
    )
    assert _served_names(server, EXACT) == [EXACT]


def test_sni_contexts_keep_the_client_certificate_policy(
    sni_files: SNIFiles, tmp_path: Path, client_authority: trustme.CA
) -> None:
    """A server requiring client certificates requires them for SNI names too."""
    client_ca = tmp_path / "client-ca.pem"
    client_authority.cert_pem.write_to_path(str(client_ca))
    server = _server(sni_files, verify=VerifyMode.REQUIRED, ca=(client_ca,))
    outcome = _verified_echo(server, sni_files, EXACT)
    assert isinstance(outcome, Failure)
    assert outcome.check(HandshakeFailed)
    assert outcome.value.reason == "server requires a client certificate"
    cert, key = write_cert(client_authority.issue_cert("client.example"), tmp_path, "c")
    client = client_creator(
        TLSSettings(ca=(sni_files.ca,), certificate=cert, private_key=key), EXACT
    )
    results: list[object] = []
    loopback(server, client).client.result.addBoth(results.append)  # type: ignore[arg-type]
    assert results == [b"hello"]


# --sni-strict -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "servername", ["unknown.example", "a.b.example.test", "example.test"]
)
def test_strict_refuses_unknown_names(
    sni_files: SNIFiles, server_log: ServerLog, servername: str
) -> None:
    """With --sni-strict a name no certificate is for fails the handshake with
    unrecognized_name, and the server logs the name."""
    client = client_creator(TLSSettings(verify=VerifyMode.NONE), servername)
    results: list[Failure] = []
    loopback(_server(sni_files, strict=True), client).client.result.addErrback(
        results.append  # type: ignore[arg-type]
    )
    (failure,) = results
    assert failure.check(HandshakeFailed)
    assert failure.value.reason == UNRECOGNIZED
    (event,) = server_log.connections()
    assert event["failed"]
    assert event["reason"] == f"unrecognized name {servername!r} (--sni-strict)"


@pytest.mark.parametrize(
    "servername", [EXACT, "www.example.test", "localhost", "127.0.0.1"]
)
def test_strict_serves_known_names(sni_files: SNIFiles, servername: str) -> None:
    """With --sni-strict, the SNI names, a name the default certificate covers, and a
    client sending no SNI (an IP address) are all served."""
    outcome = _verified_echo(_server(sni_files, strict=True), sni_files, servername)
    assert outcome == b"hello"


def test_strict_without_sni_entries(sni_files: SNIFiles) -> None:
    """--sni-strict alone refuses names the default certificate is not valid for."""
    cert, key = sni_files.default
    server = server_creator(TLSSettings(certificate=cert, private_key=key, sni_strict=True))
    assert _verified_echo(server, sni_files, "localhost") == b"hello"
    client = client_creator(TLSSettings(verify=VerifyMode.NONE), EXACT)
    results: list[object] = []
    loopback(server, client).client.result.addBoth(results.append)
    (outcome,) = results
    assert isinstance(outcome, Failure)
    assert outcome.value.reason == UNRECOGNIZED


# Configuration ------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["echo.example.org", "=cert.pem", "echo.example.org="])
def test_malformed_sni_value(text: str) -> None:
    """A sni value that is not NAME=CERT[:KEY] is a ConfigurationError naming sni."""
    with pytest.raises(ConfigurationError) as info:
        SNICertificate.parse(text)
    assert str(info.value) == f"sni: expected NAME=CERT[:KEY], got {text!r}"


def test_missing_sni_certificate_file(sni_files: SNIFiles, tmp_path: Path) -> None:
    """An --sni certificate file that does not exist is refused, naming the entry and
    the file."""
    cert, key = sni_files.default
    missing = tmp_path / "missing.pem"
    with pytest.raises(ConfigurationError) as info:
        TLSSettings(
            certificate=cert, private_key=key, sni=(SNICertificate(EXACT, missing),)
        )
    assert str(info.value) == f"sni {EXACT}= {missing}: no such file"


def test_sni_key_must_match(sni_files: SNIFiles) -> None:
    """An sni entry whose key belongs to another certificate is refused."""
    cert, key = sni_files.default
    with pytest.raises(ConfigurationError) as info:
        TLSSettings(
            certificate=cert,
            private_key=key,
            sni=(SNICertificate(EXACT, sni_files.exact[0], sni_files.wildcard[1]),),
        )
    assert str(info.value).startswith(f"sni {EXACT}= {sni_files.wildcard[1]}: ")
    assert "private key does not match" in str(info.value)


def test_sni_is_a_server_option(sni_files: SNIFiles) -> None:
    """client_creator refuses settings with SNI certificates."""
    with pytest.raises(ConfigurationError, match=r"^sni/"):
        client_creator(
            TLSSettings(ca=(sni_files.ca,), sni=(SNICertificate(EXACT, *sni_files.exact),)),
            EXACT,
        )


def _parse(*arguments: str) -> Options:
    options = Options()
    options.parseOptions(list(arguments))
    return options


def test_sni_flags(sni_files: SNIFiles) -> None:
    """Repeated --sni flags and --sni-strict reach the server's settings."""
    cert, key = sni_files.default
    options = _parse(
        "--cert",
        str(cert),
        "--key",
        str(key),
        "--sni",
        f"{EXACT}={sni_files.exact[0]}:{sni_files.exact[1]}",
        "--sni",
        f"{WILDCARD}={sni_files.wildcard[0]}:{sni_files.wildcard[1]}",
        "--sni-strict",
    )
    settings = options["configuration"].settings
    assert settings.sni == _entries(sni_files)
    assert settings.sni_strict is True


def test_toml_sni_tables(sni_files: SNIFiles) -> None:
    """[[sni]] tables in the --config file (paths relative to it) serve their names,
    and sni-strict = true refuses others."""
    directory = sni_files.ca.parent
    config = directory / "tlsecho.toml"
    config.write_text(
        'cert = "default.pem"\n'
        'key = "default.key"\n'
        "sni-strict = true\n"
        "\n"
        "[[sni]]\n"
        f'name = "{EXACT}"\n'
        'cert = "exact.pem"\n'
        'key = "exact.key"\n'
        "\n"
        "[[sni]]\n"
        f'name = "{WILDCARD}"\n'
        'cert = "wildcard.pem"\n'
        'key = "wildcard.key"\n'
    )
    configuration = _parse("--config", str(config))["configuration"]
    assert configuration.settings.sni == _entries(sni_files)
    server = configuration.creator
    assert isinstance(server, ServerConnectionCreator)
    assert _served_names(server, EXACT) == [EXACT]
    assert _served_names(server, "api.example.test") == [WILDCARD]
    assert _verified_echo(server, sni_files, "localhost") == b"hello"
    outcome = _verified_echo(server, sni_files, "unknown.example")
    assert isinstance(outcome, Failure)
    assert outcome.value.reason == UNRECOGNIZED


def test_toml_sni_table_needs_name_and_cert(sni_files: SNIFiles) -> None:
    """An [[sni]] table without cert is refused, naming --config and the file."""
    config = sni_files.ca.parent / "bad.toml"
    config.write_text(
        'cert = "default.pem"\nkey = "default.key"\n[[sni]]\nname = "echo.example.org"\n'
    )
    with pytest.raises(usage.UsageError) as info:
        _parse("--config", str(config))
    assert str(info.value) == (
        f"--config {config}: each [[sni]] entry needs name and cert strings and may "
        'have key (write [[sni]] with name = "a.example" and cert = "a.pem", one table '
        "per name)"
    )


# From outside: twistd tlsecho, openssl s_client, tlsecho client -----------------------


def _serve(servers: list, files: SNIFiles, *extra: str) -> ServerProcess:
    cert, key = files.default
    return start_server(
        servers,
        "--cert",
        str(cert),
        "--key",
        str(key),
        "--sni",
        f"{EXACT}={files.exact[0]}:{files.exact[1]}",
        "--sni",
        f"{WILDCARD}={files.wildcard[0]}:{files.wildcard[1]}",
        *extra,
    )


def _s_client_subject_names(server: ServerProcess, files: SNIFiles, name: str) -> str:
    """Connect with openssl s_client -servername NAME; the served certificate as text."""
    session = subprocess.run(
        [
            OPENSSL,
            "s_client",
            "-connect",
            f"127.0.0.1:{server.port}",
            "-servername",
            name,
            "-CAfile",
            str(files.ca),
            "-verify_hostname",
            name,
            "-verify_return_error",
        ],
        input=b"",
        capture_output=True,
        timeout=20,
        check=False,
    )
    assert session.returncode == 0, session.stdout.decode() + session.stderr.decode()
    text = subprocess.run(
        [OPENSSL, "x509", "-noout", "-ext", "subjectAltName"],
        input=session.stdout,
        capture_output=True,
        timeout=20,
        check=True,
    )
    return text.stdout.decode()


@pytest.mark.parametrize(
    ("name", "san"),
    [(EXACT, f"DNS:{EXACT}"), ("api.example.test", f"DNS:{WILDCARD}")],
)
def test_openssl_sees_the_right_certificate(
    servers: list, sni_files: SNIFiles, name: str, san: str
) -> None:
    """openssl s_client -servername gets, and verifies for that name, the certificate
    of the matching --sni entry."""
    server = _serve(servers, sni_files)
    assert san in _s_client_subject_names(server, sni_files, name)


def test_strict_from_outside(servers: list, sni_files: SNIFiles) -> None:
    """Against twistd tlsecho --sni-strict, openssl s_client asking for an unknown name
    receives the unrecognized_name alert (112), tlsecho client exits 4 saying so, and a
    name the default certificate covers still echoes."""
    server = _serve(servers, sni_files, "--sni-strict")
    session = subprocess.run(
        [
            OPENSSL,
            "s_client",
            "-connect",
            f"127.0.0.1:{server.port}",
            "-servername",
            "unknown.example",
        ],
        input=b"",
        capture_output=True,
        timeout=20,
        check=False,
    )
    stderr = session.stderr.decode()
    assert session.returncode != 0
    assert "unrecognized name" in stderr
    assert "SSL alert number 112" in stderr
    refused = run_client(
        server.address, "--ca", str(sni_files.ca), "--servername", "unknown.example"
    )
    assert refused.returncode == 4, refused.stderr
    assert refused.stderr.decode().splitlines() == [
        f"tlsecho client: {UNRECOGNIZED} (server 'unknown.example' at {server.address})"
    ]
    for name in ["localhost", EXACT, "www.example.test"]:
        served = run_client(server.address, "--ca", str(sni_files.ca), "--servername", name)
        assert (served.returncode, served.stdout) == (0, b"hello\n"), served.stderr
    server.wait_for(r"TLS handshake failed: unrecognized name 'unknown\.example'")
    assert "Traceback" not in server.output
    assert server.process.poll() is None


def test_client_command_without_strict_gets_default(
    servers: list, sni_files: SNIFiles
) -> None:
    """Without --sni-strict, tlsecho client --servername for an unknown name gets the
    default certificate and fails its own name check (exit 4, naming the name)."""
    server = _serve(servers, sni_files)
    result = run_client(
        server.address, "--ca", str(sni_files.ca), "--servername", "a.b.example.test"
    )
    assert result.returncode == 4, result.stderr
    assert b"not valid for 'a.b.example.test' (it is for localhost" in result.stderr


def test_toml_sni_from_outside(servers: list, sni_files: SNIFiles) -> None:
    """twistd tlsecho --config with [[sni]] tables serves each name its certificate."""
    config = sni_files.ca.parent / "served.toml"
    config.write_text(
        'cert = "default.pem"\nkey = "default.key"\n'
        f'[[sni]]\nname = "{EXACT}"\ncert = "exact.pem"\nkey = "exact.key"\n'
    )
    server = start_server(servers, "--config", str(config))
    result = run_client(server.address, "--ca", str(sni_files.ca), "--servername", EXACT)
    assert (result.returncode, result.stdout) == (0, b"hello\n"), result.stderr
