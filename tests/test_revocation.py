"""
Tests for revocation (issue 3, item 6): ``--crl FILE`` on the server (client
certificates) and on the client (the server's certificate), where a revoked
certificate fails verification with "certificate revoked"; and OCSP stapling from a
DER file (``--ocsp-response``) with the client's ``--require-ocsp-staple``.

CRLs and OCSP responses are built with ``cryptography`` and signed with the trustme
CAs' keys inside each test.
"""

from __future__ import annotations

import datetime
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
from cryptography.x509 import ocsp
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

from _loopback import loopback
from _processes import ServerProcess, identity, run_client, start_server
from conftest import ServerLog, TLSFiles, write_cert

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)


# Building CRLs and OCSP responses -----------------------------------------------------


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key(authority: trustme.CA) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(authority.private_key_pem.bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def _certificate(authority: trustme.CA) -> x509.Certificate:
    return x509.load_pem_x509_certificate(authority.cert_pem.bytes())


def _leaf(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def _crl(
    authority: trustme.CA,
    revoked: Sequence[x509.Certificate] = (),
    encoding: serialization.Encoding = serialization.Encoding.PEM,
) -> bytes:
    """A current CRL from ``authority`` revoking ``revoked``."""
    now = _now()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(_certificate(authority).subject)
        .last_update(now - HOUR)
        .next_update(now + 7 * DAY)
        .add_extension(x509.CRLNumber(1), critical=False)
    )
    for certificate in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(certificate.serial_number)
            .revocation_date(now - HOUR)
            .build()
        )
    return builder.sign(_key(authority), hashes.SHA256()).public_bytes(encoding)


def _ocsp_response(
    leaf: x509.Certificate,
    issuer: trustme.CA,
    status: ocsp.OCSPCertStatus = ocsp.OCSPCertStatus.GOOD,
    signer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    certificates: Sequence[x509.Certificate] = (),
    this_update: datetime.timedelta = -HOUR,
    next_update: datetime.timedelta = DAY,
) -> bytes:
    """A DER OCSP response about ``leaf``, signed by its issuer (or ``signer``)."""
    now = _now()
    signer_cert, signer_key = signer or (_certificate(issuer), _key(issuer))
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=leaf,
        issuer=_certificate(issuer),
        algorithm=hashes.SHA1(),
        cert_status=status,
        this_update=now + this_update,
        next_update=now + next_update,
        revocation_time=now - DAY if status is ocsp.OCSPCertStatus.REVOKED else None,
        revocation_reason=None,
    )
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, signer_cert)
    if certificates:
        builder = builder.certificates(list(certificates))
    response = builder.sign(signer_key, hashes.SHA256())
    return response.public_bytes(serialization.Encoding.DER)


def _responder(
    issuer: trustme.CA, ocsp_signing: bool = True
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A responder certificate issued by ``issuer`` (delegated for OCSP signing, or
    with only serverAuth)."""
    key = ec.generate_private_key(ec.SECP256R1())
    usage_oid = (
        ExtendedKeyUsageOID.OCSP_SIGNING
        if ocsp_signing
        else ExtendedKeyUsageOID.SERVER_AUTH
    )
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "OCSP responder")])
        )
        .issuer_name(_certificate(issuer).subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - HOUR)
        .not_valid_after(now + 7 * DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage_oid]), critical=False)
        .sign(_key(issuer), hashes.SHA256())
    )
    return certificate, key


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _outcome(server: object, client: object) -> bytes | Failure:
    results: list[bytes | Failure] = []
    loopback(server, client).client.result.addBoth(results.append)  # type: ignore[arg-type]
    (outcome,) = results
    return outcome


def _failure_reason(outcome: bytes | Failure) -> str:
    assert isinstance(outcome, Failure), f"echo unexpectedly succeeded: {outcome!r}"
    assert outcome.check(HandshakeFailed), outcome.getTraceback()
    reason: str = outcome.value.reason
    return reason


# CRLs on the server: client certificates ----------------------------------------------


def _crl_server(
    files: TLSFiles, crl: Path, verify: VerifyMode = VerifyMode.REQUIRED
) -> object:
    return server_creator(
        TLSSettings(
            certificate=files.server_cert,
            private_key=files.server_key,
            ca=(files.client_ca,),
            verify=verify,
            crl=(crl,),
        )
    )


def _mutual_client(files: TLSFiles, **settings: object) -> object:
    return client_creator(
        TLSSettings(
            ca=(files.ca,),
            certificate=files.client_cert,
            private_key=files.client_key,
            **settings,  # type: ignore[arg-type]
        ),
        "localhost",
    )


@pytest.mark.parametrize("max_tls", [TLSVersion.TLSv1_2, TLSVersion.TLSv1_3])
@pytest.mark.parametrize("verify", [VerifyMode.REQUIRED, VerifyMode.OPTIONAL])
def test_server_refuses_revoked_client_certificate(
    tls_files: TLSFiles,
    tmp_path: Path,
    server_log: ServerLog,
    verify: VerifyMode,
    max_tls: TLSVersion,
) -> None:
    """A client certificate listed in the server's --crl is refused; the server logs
    "certificate revoked" and the client is told its certificate is revoked."""
    crl = _write(
        tmp_path / "client.crl",
        _crl(tls_files.client_authority, [_leaf(tls_files.client_cert)]),
    )
    outcome = _outcome(
        _crl_server(tls_files, crl, verify), _mutual_client(tls_files, max_tls=max_tls)
    )
    assert _failure_reason(outcome) == "the peer says our certificate is revoked"
    event = server_log.only()
    assert event["failed"]
    assert event["reason"] == "certificate verify failed: certificate revoked"


@pytest.mark.parametrize(
    "encoding", [serialization.Encoding.PEM, serialization.Encoding.DER], ids=["PEM", "DER"]
)
def test_server_accepts_client_certificate_not_listed(
    tls_files: TLSFiles, tmp_path: Path, encoding: serialization.Encoding
) -> None:
    """A CRL (PEM or DER) from the client CA that lists another certificate lets the
    client in."""
    other = _leaf(tls_files.ca)  # any certificate but the client's
    crl = _write(
        tmp_path / "client.crl", _crl(tls_files.client_authority, [other], encoding)
    )
    outcome = _outcome(_crl_server(tls_files, crl), _mutual_client(tls_files))
    assert outcome == b"hello"


def test_server_der_crl_revokes(tls_files: TLSFiles, tmp_path: Path) -> None:
    """A DER CRL revokes as a PEM one does."""
    der = _crl(
        tls_files.client_authority,
        [_leaf(tls_files.client_cert)],
        serialization.Encoding.DER,
    )
    crl = _write(tmp_path / "client.der", der)
    outcome = _outcome(_crl_server(tls_files, crl), _mutual_client(tls_files))
    assert _failure_reason(outcome) == "the peer says our certificate is revoked"


def test_server_crl_flags_are_repeatable(tls_files: TLSFiles, tmp_path: Path) -> None:
    """Repeated --crl flags each reach the server's settings."""
    first = _write(tmp_path / "a.crl", _crl(tls_files.client_authority))
    second = _write(tmp_path / "b.crl", _crl(tls_files.server_ca))
    options = Options()
    options.parseOptions(
        [
            *identity(tls_files),
            "--ca",
            str(tls_files.client_ca),
            "--verify",
            "required",
            "--crl",
            str(first),
            "--crl",
            str(second),
        ]
    )
    configuration = options["configuration"]
    assert configuration.settings.crl == (first, second)
    assert len(configuration.material.crls) == 2


# CRLs on the client: the server's certificate -----------------------------------------


@pytest.mark.parametrize("max_tls", [TLSVersion.TLSv1_2, TLSVersion.TLSv1_3])
def test_client_refuses_revoked_server_certificate(
    tls_files: TLSFiles, tmp_path: Path, max_tls: TLSVersion
) -> None:
    """A client whose --crl lists the server's certificate fails with "certificate
    revoked"."""
    crl = _write(
        tmp_path / "server.crl", _crl(tls_files.server_ca, [_leaf(tls_files.server_cert)])
    )
    server = server_creator(
        TLSSettings(certificate=tls_files.server_cert, private_key=tls_files.server_key)
    )
    client = client_creator(
        TLSSettings(ca=(tls_files.ca,), crl=(crl,), max_tls=max_tls), "localhost"
    )
    reason = _failure_reason(_outcome(server, client))
    assert reason == "certificate verify failed: certificate revoked"


def test_client_accepts_server_certificate_not_listed(
    tls_files: TLSFiles, tmp_path: Path
) -> None:
    """A client --crl from the server's CA that does not list its certificate echoes."""
    crl = _write(tmp_path / "server.crl", _crl(tls_files.server_ca))
    server = server_creator(
        TLSSettings(certificate=tls_files.server_cert, private_key=tls_files.server_key)
    )
    client = client_creator(TLSSettings(ca=(tls_files.ca,), crl=(crl,)), "localhost")
    assert _outcome(server, client) == b"hello"


# Bad CRL files ------------------------------------------------------------------------


@pytest.mark.parametrize("content", ["garbage", "certificate", "empty", "missing"])
def test_bad_crl_file_is_an_error(
    tls_files: TLSFiles, tmp_path: Path, content: str
) -> None:
    """A --crl file that is missing or holds no CRL (garbage, a certificate, nothing) is
    a ConfigurationError naming --crl and the file."""
    path = tmp_path / "bad.crl"
    if content != "missing":
        path.write_bytes(
            {
                "garbage": b"this is not a CRL\n",
                "certificate": tls_files.ca.read_bytes(),
                "empty": b"",
            }[content]
        )
    with pytest.raises(ConfigurationError) as info:
        TLSSettings(crl=(path,))
    assert info.value.option == "crl"
    assert info.value.path == path
    expected = (
        "no such file"
        if content == "missing"
        else "holds no certificate revocation list (PEM or DER)"
    )
    assert str(info.value) == f"crl {path}: {expected}"


def test_bad_crl_file_stops_the_server(tls_files: TLSFiles, tmp_path: Path) -> None:
    """The server's option parser refuses a bad --crl file before anything starts."""
    bad = _write(tmp_path / "bad.crl", b"not a CRL")
    options = Options()
    with pytest.raises(usage.UsageError) as info:
        options.parseOptions(
            [
                *identity(tls_files),
                "--ca",
                str(tls_files.client_ca),
                "--verify",
                "required",
                "--crl",
                str(bad),
            ]
        )
    assert str(info.value).startswith(f"--crl {bad}: holds no certificate revocation list")


# CRLs from outside --------------------------------------------------------------------


def test_server_crl_from_outside(
    servers: list, tls_files: TLSFiles, tmp_path: Path
) -> None:
    """twistd tlsecho --crl revoking the client's certificate makes tlsecho client exit 4
    and the server log "certificate revoked"; with a CRL not listing it, it echoes."""
    arguments = [
        *identity(tls_files),
        "--ca",
        str(tls_files.client_ca),
        "--verify",
        "required",
    ]
    client_arguments = [
        "--ca",
        str(tls_files.ca),
        "--cert",
        str(tls_files.client_cert),
        "--key",
        str(tls_files.client_key),
    ]
    revoking = _write(
        tmp_path / "revoking.crl",
        _crl(tls_files.client_authority, [_leaf(tls_files.client_cert)]),
    )
    server = start_server(servers, *arguments, "--crl", str(revoking))
    refused = run_client(server.address, *client_arguments)
    stderr = refused.stderr.decode()
    assert refused.returncode == 4, stderr
    assert len(stderr.splitlines()) == 1, stderr
    assert "revoked" in stderr
    server.wait_for(r"TLS handshake failed: certificate verify failed: certificate revoked")

    clean = _write(tmp_path / "clean.crl", _crl(tls_files.client_authority))
    server = start_server(servers, *arguments, "--crl", str(clean))
    accepted = run_client(server.address, *client_arguments)
    assert (accepted.returncode, accepted.stdout) == (0, b"hello\n"), accepted.stderr


def test_client_crl_from_outside(
    servers: list, tls_files: TLSFiles, tmp_path: Path
) -> None:
    """tlsecho client --crl revoking the server's certificate exits 4 with one line
    saying "certificate revoked"."""
    crl = _write(
        tmp_path / "server.crl", _crl(tls_files.server_ca, [_leaf(tls_files.server_cert)])
    )
    server = start_server(
        servers, "--cert", str(tls_files.server_cert), "--key", str(tls_files.server_key)
    )
    result = run_client(server.address, "--ca", str(tls_files.ca), "--crl", str(crl))
    stderr = result.stderr.decode()
    assert result.returncode == 4, stderr
    assert stderr.splitlines() == [
        "tlsecho client: certificate verify failed: certificate revoked "
        f"(server '127.0.0.1' at {server.address})"
    ]
    assert result.stdout == b""


def test_client_bad_crl_exits_2(tmp_path: Path) -> None:
    """tlsecho client --crl with a file that is not a CRL exits 2 naming --crl."""
    bad = _write(tmp_path / "bad.crl", b"nope")
    result = run_client("127.0.0.1:1", "--crl", str(bad))
    assert result.returncode == 2, result.stderr
    assert result.stderr.decode().splitlines() == [
        f"tlsecho client: --crl {bad}: holds no certificate revocation list (PEM or DER)"
    ]


# OCSP stapling ------------------------------------------------------------------------


@dataclass(frozen=True)
class StaplingPKI:
    """A root CA (trusted by clients), an intermediate, and a server certificate the
    intermediate issued (its file holds the leaf, then the intermediate)."""

    root: trustme.CA
    intermediate: trustme.CA
    ca: Path
    cert: Path
    key: Path

    @property
    def leaf(self) -> x509.Certificate:
        return _leaf(self.cert)


@pytest.fixture
def pki(tmp_path: Path) -> StaplingPKI:
    """A server certificate from an intermediate CA, and the root clients trust."""
    root = trustme.CA()
    intermediate = root.create_child_ca()
    cert, key = write_cert(
        intermediate.issue_cert("localhost", "127.0.0.1"), tmp_path, "srv"
    )
    root.cert_pem.write_to_path(str(tmp_path / "root.pem"))
    return StaplingPKI(root, intermediate, tmp_path / "root.pem", cert, key)


def _stapling_server(pki: StaplingPKI, response: Path | None) -> object:
    return server_creator(
        TLSSettings(certificate=pki.cert, private_key=pki.key, ocsp_response=response)
    )


def _forced_staple_server(pki: StaplingPKI, data: bytes) -> object:
    """A server that staples ``data`` unchecked, as a misconfigured or hostile server
    would (tlsecho itself refuses to load a bad response: see the start-up tests)."""
    creator = server_creator(TLSSettings(certificate=pki.cert, private_key=pki.key))
    creator._default.getContext().set_ocsp_server_callback(lambda connection, _: data)
    return creator


def _staple_client(ca: Path, max_tls: TLSVersion | None = None) -> object:
    return client_creator(
        TLSSettings(ca=(ca,), require_ocsp_staple=True, max_tls=max_tls), "localhost"
    )


@pytest.mark.parametrize("max_tls", [TLSVersion.TLSv1_2, TLSVersion.TLSv1_3])
def test_good_staple_satisfies_client(
    pki: StaplingPKI, tmp_path: Path, max_tls: TLSVersion
) -> None:
    """A good, current staple signed by the server certificate's issuer satisfies a
    client that requires one."""
    response = _write(tmp_path / "good.der", _ocsp_response(pki.leaf, pki.intermediate))
    outcome = _outcome(_stapling_server(pki, response), _staple_client(pki.ca, max_tls))
    assert outcome == b"hello"


def test_good_staple_for_certificate_issued_by_the_root(
    tls_files: TLSFiles, tmp_path: Path
) -> None:
    """A staple signed by the trusted root that issued the server certificate directly
    (so the server sends no issuer certificate) satisfies the client too."""
    leaf = _leaf(tls_files.server_cert)
    response = _write(tmp_path / "good.der", _ocsp_response(leaf, tls_files.server_ca))
    server = server_creator(
        TLSSettings(
            certificate=tls_files.server_cert,
            private_key=tls_files.server_key,
            ocsp_response=response,
        )
    )
    assert _outcome(server, _staple_client(tls_files.ca)) == b"hello"


def test_delegated_responder_staple_satisfies_client(
    pki: StaplingPKI, tmp_path: Path
) -> None:
    """A staple signed by a responder the issuer certified for OCSP signing (and
    included in the response) satisfies the client."""
    responder = _responder(pki.intermediate)
    data = _ocsp_response(
        pki.leaf, pki.intermediate, signer=responder, certificates=[responder[0]]
    )
    response = _write(tmp_path / "delegated.der", data)
    assert _outcome(_stapling_server(pki, response), _staple_client(pki.ca)) == b"hello"


def test_responder_without_ocsp_signing_is_rejected(
    pki: StaplingPKI, tmp_path: Path
) -> None:
    """A staple signed by a certificate of the issuer that is not delegated for OCSP
    signing is rejected by the client."""
    responder = _responder(pki.intermediate, ocsp_signing=False)
    data = _ocsp_response(
        pki.leaf, pki.intermediate, signer=responder, certificates=[responder[0]]
    )
    reason = _failure_reason(
        _outcome(_forced_staple_server(pki, data), _staple_client(pki.ca))
    )
    assert reason == "the stapled OCSP response is not signed by the certificate's issuer"


def test_staple_from_unrelated_ca_is_rejected(pki: StaplingPKI, tmp_path: Path) -> None:
    """A staple about the server certificate but signed by an unrelated CA is rejected
    by the client that requires a staple."""
    stranger = trustme.CA()
    data = _ocsp_response(
        pki.leaf,
        pki.intermediate,
        signer=(_certificate(stranger), _key(stranger)),
    )
    reason = _failure_reason(
        _outcome(_forced_staple_server(pki, data), _staple_client(pki.ca))
    )
    assert reason == "the stapled OCSP response is not signed by the certificate's issuer"


def test_expired_staple_is_rejected(pki: StaplingPKI, tmp_path: Path) -> None:
    """A staple whose next update lies in the past is rejected by the client."""
    data = _ocsp_response(
        pki.leaf, pki.intermediate, this_update=-2 * DAY, next_update=-DAY
    )
    reason = _failure_reason(
        _outcome(_forced_staple_server(pki, data), _staple_client(pki.ca))
    )
    assert reason == "the stapled OCSP response has expired"


@pytest.mark.parametrize("max_tls", [TLSVersion.TLSv1_2, TLSVersion.TLSv1_3])
def test_no_staple_fails_client_that_requires_one(
    pki: StaplingPKI, max_tls: TLSVersion
) -> None:
    """A client requiring a staple fails against a server that has none, saying so."""
    reason = _failure_reason(
        _outcome(_stapling_server(pki, None), _staple_client(pki.ca, max_tls))
    )
    assert reason == "the server stapled no OCSP response"


def test_client_not_asking_ignores_staples(pki: StaplingPKI, tmp_path: Path) -> None:
    """A client that does not require a staple is served by a stapling server."""
    response = _write(tmp_path / "good.der", _ocsp_response(pki.leaf, pki.intermediate))
    client = client_creator(TLSSettings(ca=(pki.ca,)), "localhost")
    assert _outcome(_stapling_server(pki, response), client) == b"hello"


# Bad OCSP response files --------------------------------------------------------------


def test_revoked_response_refused_at_start(pki: StaplingPKI, tmp_path: Path) -> None:
    """An --ocsp-response saying the certificate is revoked is refused when the settings
    are made, naming --ocsp-response and the file."""
    data = _ocsp_response(pki.leaf, pki.intermediate, status=ocsp.OCSPCertStatus.REVOKED)
    response = _write(tmp_path / "revoked.der", data)
    with pytest.raises(ConfigurationError) as info:
        _stapling_server(pki, response)
    assert str(info.value) == (
        f"ocsp_response {response}: the OCSP response says certificate is revoked"
    )


def test_response_for_another_certificate_refused(pki: StaplingPKI, tmp_path: Path) -> None:
    """An ocsp_response about another certificate of the same issuer is refused."""
    other = pki.intermediate.issue_cert("other.example")
    other_leaf = x509.load_pem_x509_certificate(other.cert_chain_pems[0].bytes())
    response = _write(tmp_path / "other.der", _ocsp_response(other_leaf, pki.intermediate))
    with pytest.raises(ConfigurationError) as info:
        _stapling_server(pki, response)
    assert str(info.value) == (
        f"ocsp_response {response}: the OCSP response is about another certificate "
        "than certificate"
    )


@pytest.mark.parametrize("kind", ["garbage", "pem-crl", "unsuccessful"])
def test_malformed_or_unsuccessful_response_refused(
    pki: StaplingPKI, tmp_path: Path, kind: str
) -> None:
    """An --ocsp-response that is not a DER OCSP response, or reports no success, is
    refused naming --ocsp-response."""
    data = {
        "garbage": b"\x30\x03garbage",
        "pem-crl": _crl(pki.intermediate),
        "unsuccessful": ocsp.OCSPResponseBuilder.build_unsuccessful(
            ocsp.OCSPResponseStatus.TRY_LATER
        ).public_bytes(serialization.Encoding.DER),
    }[kind]
    response = _write(tmp_path / "bad.der", data)
    with pytest.raises(ConfigurationError) as info:
        _stapling_server(pki, response)
    assert info.value.option == "ocsp_response"
    assert info.value.path == response
    if kind == "unsuccessful":
        assert info.value.reason == "OCSP response status is TRY_LATER"
    else:
        assert info.value.reason == "holds no DER OCSP response"


def test_revoked_response_stops_the_server(pki: StaplingPKI, tmp_path: Path) -> None:
    """The server's option parser refuses a revoked --ocsp-response before starting."""
    data = _ocsp_response(pki.leaf, pki.intermediate, status=ocsp.OCSPCertStatus.REVOKED)
    response = _write(tmp_path / "revoked.der", data)
    options = Options()
    with pytest.raises(usage.UsageError) as info:
        options.parseOptions(
            [
                "--cert",
                str(pki.cert),
                "--key",
                str(pki.key),
                "--ocsp-response",
                str(response),
            ]
        )
    assert str(info.value) == (
        f"--ocsp-response {response}: the OCSP response says --cert is revoked"
    )


# OCSP from outside --------------------------------------------------------------------


def _serve_stapled(servers: list, pki: StaplingPKI, response: Path) -> ServerProcess:
    return start_server(
        servers,
        "--cert",
        str(pki.cert),
        "--key",
        str(pki.key),
        "--ocsp-response",
        str(response),
    )


def test_openssl_sees_the_staple(servers: list, pki: StaplingPKI, tmp_path: Path) -> None:
    """openssl s_client -status receives the stapled response: status successful, the
    certificate good."""
    response = _write(tmp_path / "good.der", _ocsp_response(pki.leaf, pki.intermediate))
    server = _serve_stapled(servers, pki, response)
    session = subprocess.run(
        [
            OPENSSL,
            "s_client",
            "-connect",
            f"127.0.0.1:{server.port}",
            "-servername",
            "localhost",
            "-CAfile",
            str(pki.ca),
            "-status",
        ],
        input=b"",
        capture_output=True,
        timeout=20,
        check=False,
    )
    stdout = session.stdout.decode()
    assert session.returncode == 0, stdout + session.stderr.decode()
    assert "OCSP Response Status: successful" in stdout
    assert "Cert Status: good" in stdout


def test_client_command_requires_staple(
    servers: list, pki: StaplingPKI, tmp_path: Path
) -> None:
    """tlsecho client --require-ocsp-staple echoes against a stapling server, and exits
    4 with one line saying there is no OCSP response against one that does not staple."""
    response = _write(tmp_path / "good.der", _ocsp_response(pki.leaf, pki.intermediate))
    stapling = _serve_stapled(servers, pki, response)
    ok = run_client(stapling.address, "--ca", str(pki.ca), "--require-ocsp-staple")
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, b"hello\n", b"")
    plain = start_server(servers, "--cert", str(pki.cert), "--key", str(pki.key))
    refused = run_client(plain.address, "--ca", str(pki.ca), "--require-ocsp-staple")
    assert refused.returncode == 4, refused.stderr
    assert refused.stdout == b""
    lines = refused.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert "no OCSP response" in lines[0]


def test_server_refuses_to_staple_a_forged_response(
    pki: StaplingPKI, tmp_path: Path
) -> None:
    """A response signed by an unrelated CA is refused at start-up, naming the file."""
    stranger = trustme.CA()
    data = _ocsp_response(
        pki.leaf, pki.intermediate, signer=(_certificate(stranger), _key(stranger))
    )
    path = _write(tmp_path / "forged.der", data)
    with pytest.raises(ConfigurationError) as info:
        TLSSettings(certificate=pki.cert, private_key=pki.key, ocsp_response=path)
    assert str(info.value) == (
        f"ocsp_response {path}: the OCSP response is not signed by the certificate's issuer"
    )


def test_server_refuses_to_staple_an_expired_response(
    pki: StaplingPKI, tmp_path: Path
) -> None:
    """A response whose next update is past is refused at start-up, naming the file."""
    data = _ocsp_response(
        pki.leaf, pki.intermediate, this_update=-2 * DAY, next_update=-DAY
    )
    path = _write(tmp_path / "old.der", data)
    with pytest.raises(ConfigurationError) as info:
        TLSSettings(certificate=pki.cert, private_key=pki.key, ocsp_response=path)
    assert str(info.value) == f"ocsp_response {path}: the OCSP response has expired"


def test_client_command_root_issued_staple(
    servers: list, tls_files: TLSFiles, tmp_path: Path
) -> None:
    """tlsecho client --require-ocsp-staple accepts a good staple for a server
    certificate the trusted root issued directly."""
    leaf = _leaf(tls_files.server_cert)
    response = _write(tmp_path / "good.der", _ocsp_response(leaf, tls_files.server_ca))
    server = start_server(
        servers,
        *identity(tls_files),
        "--ocsp-response",
        str(response),
    )
    result = run_client(server.address, "--ca", str(tls_files.ca), "--require-ocsp-staple")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"hello\n", b"")
