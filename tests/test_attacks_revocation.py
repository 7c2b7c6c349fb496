"""
Attacks on revocation and resumption (issue 10, items 13 and 14): delta CRLs,
CRLs that cannot work, hostile OCSP staples, and sessions carried to another
SNI name or to an instance with other admission rules.  The hostile peers and
data are built in L{hostile.revocation}.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

import pytest
import trustme
from cryptography.x509 import ocsp
from OpenSSL import SSL

from tlsecho import ConfigurationError, Material, TLSSettings
from tlsecho._tls._tickets import client_hello_server_name

from _processes import (
    TLSECHO,
    ServerProcess,
    identity,
    run_client,
    run_twistd,
    start_server,
)
from conftest import TLSFiles, write_cert
from hostile.revocation import (
    DAY,
    authority_certificate,
    crl,
    leaf_of,
    ocsp_response,
    stapling_server,
    visit,
)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _ticket_key(directory: Path) -> Path:
    path = directory / "ticket.key"
    if not path.exists():
        path.write_bytes(os.urandom(80))
        path.chmod(0o600)
    return path


def _mutual(files: TLSFiles) -> list[str]:
    return [*identity(files), "--ca", str(files.client_ca), "--verify", "required"]


def _client_mtls(files: TLSFiles) -> list[str]:
    return [
        "--ca",
        str(files.ca),
        "--cert",
        str(files.client_cert),
        "--key",
        str(files.client_key),
    ]


def _issuer(files: TLSFiles) -> str:
    return authority_certificate(files.client_authority).subject.rfc4514_string()


# Delta CRLs ---------------------------------------------------------------------------


def _base_and_delta(files: TLSFiles, directory: Path) -> tuple[Path, Path]:
    """A base CRL revoking nothing, and a delta CRL on top revoking the client."""
    base = _write(directory / "base.crl", crl(files.client_authority, number=1))
    delta = _write(
        directory / "delta.crl",
        crl(
            files.client_authority,
            [leaf_of(files.client_cert)],
            number=2,
            delta_of=1,
        ),
    )
    return base, delta


def test_server_refuses_a_delta_crl_at_start(tls_files: TLSFiles, tmp_path: Path) -> None:
    """A server given a base CRL and a delta CRL revoking the client does not start
    (rather than admit the client): one line naming --crl, the delta file and why."""
    base, delta = _base_and_delta(tls_files, tmp_path)
    result = run_twistd(
        *_mutual(tls_files),
        "--listen",
        "tcp:0:interface=127.0.0.1",
        "--crl",
        str(base),
        "--crl",
        str(delta),
        timeout=30,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(
        f"tlsecho: --crl {delta}: is a delta CRL (it carries the Delta CRL Indicator "
        "extension), which tlsecho does not apply; give the complete CRL instead"
    )


def test_client_refuses_a_delta_crl(tls_files: TLSFiles, tmp_path: Path) -> None:
    """tlsecho client --crl with a delta CRL exits 2 with one line, before connecting."""
    _, delta = _base_and_delta(tls_files, tmp_path)
    result = run_client("127.0.0.1:1", "--ca", str(tls_files.ca), "--crl", str(delta))
    assert result.returncode == 2, result.stderr
    assert result.stderr.decode().splitlines() == [
        f"tlsecho client: --crl {delta}: is a delta CRL (it carries the Delta CRL "
        "Indicator extension), which tlsecho does not apply; give the complete CRL "
        "instead"
    ]


def test_second_crl_in_one_pem_file_is_not_ignored(
    tls_files: TLSFiles, tmp_path: Path
) -> None:
    """A PEM file holding two CRLs is read whole: the second, revoking the client,
    counts (it is not silently dropped after the first)."""
    other = trustme.CA()
    bundle = _write(
        tmp_path / "bundle.crl",
        crl(other) + crl(tls_files.client_authority, [leaf_of(tls_files.client_cert)]),
    )
    settings = TLSSettings(crl=(bundle,))
    assert len(Material.load(settings).crls) == 2


def test_server_applies_the_second_crl_of_a_bundle(
    servers: list[ServerProcess], tls_files: TLSFiles, tmp_path: Path
) -> None:
    """The client revoked by the second CRL of a PEM bundle is refused as revoked."""
    other = trustme.CA()
    bundle = _write(
        tmp_path / "bundle.crl",
        crl(other) + crl(tls_files.client_authority, [leaf_of(tls_files.client_cert)]),
    )
    server = start_server(servers, *_mutual(tls_files), "--crl", str(bundle))
    result = run_client(server.address, *_client_mtls(tls_files))
    assert result.returncode == 4, result.stderr
    server.wait_for(r"certificate verify failed: certificate revoked")


# CRLs that cannot work ----------------------------------------------------------------


_BROKEN = {
    "expired": ({"last_update": -2 * DAY, "next_update": -DAY}, "has expired"),
    "not-yet-valid": (
        {"last_update": DAY, "next_update": 7 * DAY},
        "is not valid yet",
    ),
}


def _broken_crl(files: TLSFiles, directory: Path, kind: str) -> Path:
    if kind in _BROKEN:
        data = crl(files.client_authority, **_BROKEN[kind][0])  # type: ignore[arg-type]
    elif kind == "bad-signature":
        # Names the client CA as issuer, signed by another key.
        data = crl(files.client_authority, signer=trustme.CA())
    else:  # wrong-issuer: a CA that is not among the trust roots
        data = crl(trustme.CA())
    return _write(directory / f"{kind}.crl", data)


_START_WARNING = {
    "expired": r"has expired \(next update was on \d{4}-\d\d-\d\d",
    "not-yet-valid": r"is not valid yet \(valid from \d{4}-\d\d-\d\d",
    "bad-signature": r"is not signed by the CA certificate .* it names as its issuer",
    "wrong-issuer": r"is issued by .*, which is not among the --ca certificates",
}

_CONNECTION_REASON = {
    "expired": "certificate verify failed: the CRL for {issuer} has expired",
    "not-yet-valid": "certificate verify failed: the CRL for {issuer} is not valid yet",
    "bad-signature": (
        "certificate verify failed: the CRL for {issuer} has a bad signature"
    ),
    "wrong-issuer": "certificate verify failed: no CRL for {issuer} (--crl)",
}


@pytest.mark.parametrize("kind", list(_START_WARNING))
def test_server_crl_that_cannot_work_is_named(
    servers: list[ServerProcess], tls_files: TLSFiles, tmp_path: Path, kind: str
) -> None:
    """A server CRL that cannot work is warned about at start (naming --crl and the
    file) and named as the reason each client is refused, not the client's certificate."""
    path = _broken_crl(tls_files, tmp_path, kind)
    server = start_server(servers, *_mutual(tls_files), "--crl", str(path))
    server.wait_for(rf"--crl {path}: the CRL .*{_START_WARNING[kind]}")
    result = run_client(server.address, *_client_mtls(tls_files))
    assert result.returncode == 4, result.stderr
    reason = _CONNECTION_REASON[kind].format(issuer=_issuer(tls_files))
    line = server.wait_for(r"TLS handshake failed: .*").group(0)
    assert line == f"TLS handshake failed: {reason}"


@pytest.mark.parametrize("kind", list(_START_WARNING))
def test_check_warns_about_a_crl_that_cannot_work(
    tls_files: TLSFiles, tmp_path: Path, kind: str
) -> None:
    """tlsecho check names a CRL that cannot work as a warning and exits 1."""
    path = _broken_crl(tls_files, tmp_path, kind)
    result = subprocess.run(
        [TLSECHO, "check", *_mutual(tls_files), "--crl", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    warnings = [line for line in result.stdout.splitlines() if "--crl" in line]
    assert len(warnings) == 1, result.stdout
    assert warnings[0].startswith(f"warning: --crl {path}: the CRL ")


def test_check_is_quiet_about_a_good_crl(tls_files: TLSFiles, tmp_path: Path) -> None:
    """A current CRL from the client CA draws no warning."""
    path = _write(tmp_path / "good.crl", crl(tls_files.client_authority))
    settings = TLSSettings(
        ca=(tls_files.client_ca,), crl=(path,), verify=None, certificate=None
    )
    assert Material.load(settings).warnings() == []


@pytest.mark.parametrize("kind", ["expired", "not-yet-valid", "bad-signature"])
def test_client_crl_that_cannot_work_is_named(
    servers: list[ServerProcess], tls_files: TLSFiles, tmp_path: Path, kind: str
) -> None:
    """tlsecho client --crl that cannot work warns first, then exits 4 naming the CRL,
    not the server's certificate."""
    authority = tls_files.server_ca
    if kind == "bad-signature":
        data = crl(authority, signer=trustme.CA())
    else:
        data = crl(authority, **_BROKEN[kind][0])  # type: ignore[arg-type]
    path = _write(tmp_path / f"{kind}.crl", data)
    server = start_server(servers, *identity(tls_files))
    result = run_client(server.address, "--ca", str(tls_files.ca), "--crl", str(path))
    assert result.returncode == 4, result.stderr
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"tlsecho client: warning: --crl {path}: the CRL ")
    issuer = authority_certificate(authority).subject.rfc4514_string()
    reason = _CONNECTION_REASON[kind].format(issuer=issuer)
    assert lines[1].startswith(f"tlsecho client: {reason} (server ")


# OCSP staples the client must refuse --------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("revoked", "certificate revoked (stapled OCSP response)"),
        ("unknown", "the stapled OCSP response does not know the certificate"),
        # OpenSSL 4 servers match the staple to the certificate and send none:
        # still a refusal (the check of the serial itself is tested below).
        ("another", "the server stapled no OCSP response"),
    ],
)
def test_client_refuses_a_hostile_staple(
    tls_files: TLSFiles, tmp_path: Path, kind: str, reason: str
) -> None:
    """tlsecho client --require-ocsp-staple exits 4 with the reason when the server
    staples a signed response saying "revoked", "unknown", or one about another
    certificate of the same CA."""
    leaf = leaf_of(tls_files.server_cert)
    if kind == "another":
        other, _ = write_cert(
            tls_files.server_ca.issue_cert("other.example"), tmp_path, "other"
        )
        staple = ocsp_response(leaf_of(other), tls_files.server_ca)
    else:
        status = {
            "revoked": ocsp.OCSPCertStatus.REVOKED,
            "unknown": ocsp.OCSPCertStatus.UNKNOWN,
        }[kind]
        staple = ocsp_response(leaf, tls_files.server_ca, status)
    # The same server, stapling a good response, satisfies the client: the
    # refusals below are about the staple alone.
    good = ocsp_response(leaf, tls_files.server_ca)
    with stapling_server(tls_files.server_cert, tls_files.server_key, good) as port:
        ok = run_client(
            f"127.0.0.1:{port}", "--ca", str(tls_files.ca), "--require-ocsp-staple"
        )
    assert (ok.returncode, ok.stdout) == (0, b"hello\n"), ok.stderr
    with stapling_server(tls_files.server_cert, tls_files.server_key, staple) as port:
        result = run_client(
            f"127.0.0.1:{port}", "--ca", str(tls_files.ca), "--require-ocsp-staple"
        )
    assert result.returncode == 4, result.stderr
    assert result.stdout == b""
    assert result.stderr.decode().splitlines() == [
        f"tlsecho client: {reason} (server '127.0.0.1' at 127.0.0.1:{port})"
    ]


def test_staple_about_another_certificate_is_refused_by_the_check(
    tls_files: TLSFiles, tmp_path: Path
) -> None:
    """The client's staple check refuses a good, issuer-signed response about another
    certificate: OpenSSL 4 servers (tlsecho's, the hostile one above) will not
    staple one, so the check is driven directly with what a server could send."""
    from tlsecho._settings._revocation import check_ocsp_staple

    other, _ = write_cert(tls_files.server_ca.issue_cert("other.example"), tmp_path, "o")
    staple = ocsp_response(leaf_of(other), tls_files.server_ca)
    issuer = authority_certificate(tls_files.server_ca)
    assert check_ocsp_staple(staple, leaf_of(other), issuer) is None
    assert check_ocsp_staple(staple, leaf_of(tls_files.server_cert), issuer) == (
        "the stapled OCSP response is about another certificate"
    )


# A session resumed under another SNI name ---------------------------------------------


@pytest.mark.parametrize(
    "max_tls", [SSL.TLS1_2_VERSION, SSL.TLS1_3_VERSION], ids=["TLS1.2", "TLS1.3"]
)
def test_session_does_not_resume_under_another_name(
    servers: list[ServerProcess], tls_files: TLSFiles, tmp_path: Path, max_tls: int
) -> None:
    """A session made for one SNI name, offered with another, gets a full handshake
    with the certificate for the new name, and the log shows the name sent."""
    other_cert, other_key = write_cert(
        tls_files.server_ca.issue_cert("other.example", common_name="other.example"),
        tmp_path,
        "other",
    )
    server = start_server(
        servers, *identity(tls_files), "--sni", f"other.example={other_cert}:{other_key}"
    )
    first = visit(server.port, tls_files.ca, b"localhost", max_tls=max_tls)
    assert first.echoed == b"resume?\n"
    # The session is a good one: it resumes under its own name.
    again = visit(server.port, tls_files.ca, b"localhost", first.session, max_tls=max_tls)
    assert again.resumed
    moved = visit(
        server.port, tls_files.ca, b"other.example", first.session, max_tls=max_tls
    )
    assert not moved.resumed
    assert moved.served is not None
    assert moved.served.startswith("CN=other.example,")
    assert moved.echoed == b"resume?\n"
    server.wait_for(r"SNI other\.example")


# Sessions carried to other admission rules --------------------------------------------


@pytest.fixture
def people(tls_files: TLSFiles, tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    """Client certificates for alice and bob from the client CA."""
    return {
        name: write_cert(
            tls_files.client_authority.issue_cert(f"{name}.example", common_name=name),
            tmp_path,
            name,
        )
        for name in ("alice", "bob")
    }


@pytest.mark.parametrize(
    "max_tls", [SSL.TLS1_2_VERSION, SSL.TLS1_3_VERSION], ids=["TLS1.2", "TLS1.3"]
)
def test_session_for_alice_does_not_resume_where_only_bob_may_enter(
    servers: list[ServerProcess],
    tls_files: TLSFiles,
    tmp_path: Path,
    people: dict[str, tuple[Path, Path]],
    max_tls: int,
) -> None:
    """Two instances sharing --ticket-key-file, one with --allow-cn alice, one with
    --allow-cn bob: alice's session from the first is not resumed by the second,
    which refuses her."""
    key = _ticket_key(tmp_path)
    shared = [*_mutual(tls_files), "--ticket-key-file", str(key)]
    for_alice = start_server(servers, *shared, "--allow-cn", "alice")
    for_bob = start_server(servers, *shared, "--allow-cn", "bob")
    cert, key_file = people["alice"]
    first = visit(
        for_alice.port, tls_files.ca, session=None, max_tls=max_tls, cert=cert, key=key_file
    )
    assert first.echoed == b"resume?\n"
    # The keys are shared: where the rules are the same, the session resumes.
    also_alice = start_server(servers, *shared, "--allow-cn", "alice")
    assert visit(
        also_alice.port,
        tls_files.ca,
        session=first.session,
        max_tls=max_tls,
        cert=cert,
        key=key_file,
    ).resumed
    carried = visit(
        for_bob.port,
        tls_files.ca,
        session=first.session,
        max_tls=max_tls,
        cert=cert,
        key=key_file,
    )
    assert not carried.resumed
    assert carried.echoed != b"resume?\n"
    for_bob.wait_for(r"client certificate not authorized \(CN=alice")


def test_session_does_not_resume_across_a_revoking_crl(
    servers: list[ServerProcess],
    tls_files: TLSFiles,
    tmp_path: Path,
    people: dict[str, tuple[Path, Path]],
) -> None:
    """Two instances sharing --ticket-key-file, whose CRLs differ (the second
    revokes alice): alice's session from the first is not resumed by the second."""
    key = _ticket_key(tmp_path)
    shared = [*_mutual(tls_files), "--ticket-key-file", str(key)]
    cert, key_file = people["alice"]
    clean = _write(tmp_path / "clean.crl", crl(tls_files.client_authority))
    revoking = _write(
        tmp_path / "revoking.crl",
        crl(tls_files.client_authority, [leaf_of(cert)], number=2),
    )
    first_server = start_server(servers, *shared, "--crl", str(clean))
    second_server = start_server(servers, *shared, "--crl", str(revoking))
    first = visit(first_server.port, tls_files.ca, cert=cert, key=key_file)
    assert first.echoed == b"resume?\n"
    carried = visit(
        second_server.port, tls_files.ca, session=first.session, cert=cert, key=key_file
    )
    assert not carried.resumed
    assert carried.echoed != b"resume?\n"
    second_server.wait_for(r"certificate verify failed: certificate revoked")


def test_session_does_not_resume_after_a_reload_changes_the_rules(
    servers: list[ServerProcess],
    tls_files: TLSFiles,
    tmp_path: Path,
    people: dict[str, tuple[Path, Path]],
) -> None:
    """A SIGHUP that replaces --allow-cn alice by bob (in the configuration file):
    alice's session from before is not resumed, and she is refused."""
    config = tmp_path / "tlsecho.toml"
    config.write_text('allow-cn = ["alice"]\n')
    server = start_server(
        servers,
        *_mutual(tls_files),
        "--ticket-key-file",
        str(_ticket_key(tmp_path)),
        "--config",
        str(config),
    )
    cert, key_file = people["alice"]
    first = visit(server.port, tls_files.ca, cert=cert, key=key_file)
    assert first.echoed == b"resume?\n"
    assert visit(
        server.port, tls_files.ca, session=first.session, cert=cert, key=key_file
    ).resumed
    config.write_text('allow-cn = ["bob"]\n')
    os.kill(server.process.pid, signal.SIGHUP)
    server.wait_for("reloaded the TLS configuration")
    carried = visit(
        server.port, tls_files.ca, session=first.session, cert=cert, key=key_file
    )
    assert not carried.resumed
    assert carried.echoed != b"resume?\n"
    server.wait_for(r"client certificate not authorized \(CN=alice")


def test_library_refuses_a_delta_crl(tls_files: TLSFiles, tmp_path: Path) -> None:
    """TLSSettings(crl=...) with a delta CRL is a ConfigurationError naming crl."""
    _, delta = _base_and_delta(tls_files, tmp_path)
    with pytest.raises(ConfigurationError) as raised:
        TLSSettings(crl=(delta,))
    assert raised.value.option == "crl"
    assert raised.value.path == delta
    assert "\n" not in str(raised.value)


def _client_hello(servername: bytes | None) -> bytes:
    """The ClientHello a pyOpenSSL client sends, as OpenSSL hands it over."""
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    connection = SSL.Connection(context, None)
    connection.set_connect_state()
    if servername is not None:
        connection.set_tlsext_host_name(servername)
    with contextlib.suppress(SSL.WantReadError):
        connection.do_handshake()
    record = connection.bio_read(65536)
    return record[5:]  # one record: strip its 5-byte header


@pytest.mark.parametrize("servername", [b"other.example", None])
def test_client_hello_server_name_is_read(servername: bytes | None) -> None:
    """The SNI name sessions are bound to is read from a real ClientHello."""
    assert client_hello_server_name(_client_hello(servername)) == servername


def test_malformed_client_hello_is_an_error_not_a_name() -> None:
    """Every truncation of a ClientHello is refused (ValueError), never misread."""
    message = _client_hello(b"other.example")
    for cut in range(len(message)):
        truncated = message[:cut]
        with contextlib.suppress(ValueError):
            name = client_hello_server_name(truncated)
            # A cut inside the declared length must not yield a name.
            raise AssertionError(f"cut at {cut} gave {name!r}")


def test_no_resumption_where_the_name_cannot_be_bound(
    tls_files: TLSFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where SSL_set_session_id_context is out of reach, sessions are not resumed at
    all (fail closed): no tickets, no session cache."""
    from tlsecho import server_creator
    from tlsecho._tls._openssl_internals import Unavailable, _symbols

    def unavailable(name: str, signature: str) -> None:
        raise Unavailable("example.so does not list it (stripped?)")

    monkeypatch.setattr(_symbols, "openssl_function", unavailable)
    creator = server_creator(
        TLSSettings(certificate=tls_files.server_cert, private_key=tls_files.server_key)
    )
    context = creator._default.getContext()
    assert context.set_options(0) & SSL.OP_NO_TICKET  # returns the options set
    assert context.get_session_cache_mode() == SSL.SESS_CACHE_OFF
