"""
A certificate file without its intermediate CA is warned about at start, on reload and
by ``tlsecho check``, in one line; the common correct setups (a leaf issued directly by
a private root: trustme's, the development CA's; a file that goes up to the
intermediate) start without it.

The missing issuer is known to be an intermediate when its certificate is one the
server can see (another served chain, a ``--ca`` file, the platform's CA file) and is
not self-signed, or when the leaf names where its issuer is published (Authority
Information Access), as public CAs' leaves do.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import (
    AuthorityInformationAccessOID,
    ExtendedKeyUsageOID,
    NameOID,
)

from tlsecho._settings._chain_gaps import chain_gap

from _processes import TLSECHO, ServerProcess, identity, run_client, start_server
from conftest import TLSFiles

pytestmark = pytest.mark.subprocess

ISSUER_URL = "http://ca.example/intermediate.der"
#: What every warning of a missing intermediate says (and nothing else does).
GAP = "that is not in the file"


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _load(blob: trustme.Blob) -> x509.Certificate:
    return x509.load_pem_x509_certificate(blob.bytes())


def _leaf_with_issuer_url(
    issuer: trustme.CA,
    key: ec.EllipticCurvePrivateKey,
    url: str = ISSUER_URL,
    common_name: str = "localhost",
) -> bytes:
    """A localhost leaf from ``issuer`` that names where its issuer is published (as
    public CAs' leaves do)."""
    issuer_certificate = _load(issuer.cert_pem)
    issuer_key = serialization.load_pem_private_key(issuer.private_key_pem.bytes(), None)
    assert isinstance(issuer_key, ec.EllipticCurvePrivateKey)
    now = datetime.datetime.now(datetime.UTC)
    ski = issuer_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(issuer_certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value),
            critical=False,
        )
        .add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.CA_ISSUERS,
                        x509.UniformResourceIdentifier(url),
                    )
                ]
            ),
            critical=False,
        )
        .sign(issuer_key, hashes.SHA256())
    )
    return _pem(leaf)


def _write(directory: Path, name: str, chain: bytes, key: bytes) -> list[str]:
    """Write a chain and its key; return the --cert and --key arguments."""
    certificate, private_key = directory / f"{name}.pem", directory / f"{name}.key"
    certificate.write_bytes(chain)
    private_key.write_bytes(key)
    private_key.chmod(0o600)
    return ["--cert", str(certificate), "--key", str(private_key)]


@pytest.fixture
def root() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def intermediate(root: trustme.CA) -> trustme.CA:
    return root.create_child_ca()


def _gaps(server: ServerProcess) -> list[str]:
    return [line for line in server.lines if GAP in line]


def _check(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TLSECHO, "check", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


# Warned about --------------------------------------------------------------------------


def test_leaf_without_intermediate_warns_at_start_and_reload(
    servers: list, tmp_path: Path, root: trustme.CA, intermediate: trustme.CA
) -> None:
    """A trustme leaf issued by an intermediate, alone in its --cert file, while the
    --sni file of another certificate from the same intermediate holds the whole
    chain (so the intermediate is known, not self-signed): one warning line at start
    naming the file, the intermediate and the fix; and one more on each reload. A
    client that trusts the root alone indeed fails with "unknown CA"."""
    leaf = intermediate.issue_cert("localhost", "127.0.0.1")
    arguments = _write(
        tmp_path, "server", leaf.cert_chain_pems[0].bytes(), leaf.private_key_pem.bytes()
    )
    other = intermediate.issue_cert("other.example")
    other_arguments = _write(
        tmp_path,
        "other",
        b"".join(blob.bytes() for blob in other.cert_chain_pems),
        other.private_key_pem.bytes(),
    )
    sni = f"other.example={other_arguments[1]}:{other_arguments[3]}"
    server = start_server(servers, *arguments, "--sni", sni)
    issuer = _load(intermediate.cert_pem).subject.rfc4514_string()
    subject = _load(leaf.cert_chain_pems[0]).subject.rfc4514_string()
    (line,) = _gaps(server)
    assert "#warn]" in line
    assert line.split("] ", 1)[1] == (
        f"--cert {arguments[1]}: the chain stops at {subject}, whose issuer {issuer} "
        f"is an intermediate CA (its certificate is in --sni other.example= "
        f"{other_arguments[1]}, not self-signed) that is not in the file: clients "
        f'that do not already hold {issuer} will fail with "unknown CA"; append its '
        f"certificate to the file, after {subject}"
    )
    # What it warns of: a client that trusts the root alone cannot verify the leaf.
    root_file = tmp_path / "root.pem"
    root.cert_pem.write_to_path(str(root_file))
    result = run_client(server.address, "--ca", str(root_file))
    assert result.returncode == 4, result.stderr
    assert b"unknown CA" in result.stderr
    # (The server is running by now, its SIGHUP handler set.)
    os.kill(server.process.pid, signal.SIGHUP)
    server.wait_for("reloaded the TLS configuration")
    deadline = time.monotonic() + 10
    while len(_gaps(server)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_gaps(server)) == 2, server.output


def test_leaf_naming_its_issuer_url_warns(
    servers: list, tmp_path: Path, intermediate: trustme.CA
) -> None:
    """A leaf that says where its issuer is published (Authority Information Access),
    alone in its file, is warned about with that URL; tlsecho check says it too and
    exits 1 (warnings)."""
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    arguments = _write(
        tmp_path, "server", _leaf_with_issuer_url(intermediate, key), key_pem
    )
    server = start_server(servers, *arguments)
    (line,) = _gaps(server)
    assert f"(the certificate says it is published at {ISSUER_URL})" in line
    assert line.split("] ", 1)[1].startswith(f"--cert {arguments[1]}: the chain stops at")
    result = _check(*arguments)
    assert result.returncode == 1, result.stdout + result.stderr
    assert len([line for line in result.stdout.splitlines() if GAP in line]) == 1
    assert result.stdout.rstrip().endswith("result: warnings")


# Not warned about ----------------------------------------------------------------------


def test_leaf_issued_by_a_private_root_starts_clean(
    servers: list, tls_files: TLSFiles
) -> None:
    """trustme's default: a leaf issued directly by the root, alone in its file."""
    server = start_server(servers, *identity(tls_files))
    assert _gaps(server) == []
    result = _check(*identity(tls_files))
    assert result.stdout.rstrip().endswith("result: ok"), result.stdout


def test_leaf_issued_by_a_root_in_ca_starts_clean(
    servers: list, tls_files: TLSFiles
) -> None:
    """The root that issued the leaf is in --ca (self-signed): nothing is missing."""
    server = start_server(
        servers, *identity(tls_files), "--verify", "optional", "--ca", str(tls_files.ca)
    )
    assert _gaps(server) == []


def test_intermediate_in_ca_is_sent_and_not_warned(
    servers: list, tmp_path: Path, root: trustme.CA, intermediate: trustme.CA
) -> None:
    """The leaf alone in its file, its intermediate in the server's --ca: OpenSSL
    completes the chain from there and sends it, so there is nothing to warn of (a
    client trusting the root alone echoes)."""
    leaf = intermediate.issue_cert("localhost", "127.0.0.1")
    arguments = _write(
        tmp_path, "server", leaf.cert_chain_pems[0].bytes(), leaf.private_key_pem.bytes()
    )
    bundle = tmp_path / "client-ca.pem"
    bundle.write_bytes(root.cert_pem.bytes() + intermediate.cert_pem.bytes())
    server = start_server(servers, *arguments, "--verify", "optional", "--ca", str(bundle))
    assert _gaps(server) == []
    root_file = tmp_path / "root.pem"
    root.cert_pem.write_to_path(str(root_file))
    result = run_client(server.address, "--ca", str(root_file))
    assert (result.returncode, result.stdout) == (0, b"hello\n"), result.stderr


def test_development_certificate_starts_clean(servers: list) -> None:
    """The development certificate is issued by the development CA directly."""
    server = start_server(servers)
    assert "development certificate" in server.output
    assert _gaps(server) == []


def test_full_chain_starts_clean(
    servers: list, tmp_path: Path, intermediate: trustme.CA
) -> None:
    """Leaf and intermediate in the file (trustme's chain): the root is for clients."""
    leaf = intermediate.issue_cert("localhost", "127.0.0.1")
    chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    arguments = _write(tmp_path, "server", chain, leaf.private_key_pem.bytes())
    server = start_server(servers, *arguments)
    assert _gaps(server) == []


# The rule, in memory --------------------------------------------------------------------


def test_issuer_url_with_the_issuer_a_platform_root_is_not_warned(
    root: trustme.CA,
) -> None:
    """A leaf naming its issuer's URL, whose issuer the platform holds as a root (a
    root that issues leaves itself): no warning; the platform is asked only then."""
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = x509.load_pem_x509_certificate(_leaf_with_issuer_url(root, key))
    asked: list[bool] = []

    def platform() -> list[tuple[str, x509.Certificate]]:
        asked.append(True)
        return [("the platform's CA file", _load(root.cert_pem))]

    assert chain_gap("--cert", None, [leaf], [], platform=platform) is None
    assert asked == [True]
    # Without the URL (trustme's own leaves) the platform is not even asked.
    plain = _load(root.issue_cert("localhost").cert_chain_pems[0])
    assert chain_gap("--cert", None, [plain], [], platform=platform) is None
    assert asked == [True]


def test_certificate_text_in_the_warning_is_escaped(intermediate: trustme.CA) -> None:
    """The certificate's subject and issuer URL are its own text: a terminal escape,
    a carriage return or a line break in them reaches the warning escaped, on one line."""
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = x509.load_pem_x509_certificate(
        _leaf_with_issuer_url(
            intermediate,
            key,
            url="http://ca.example/\x1b[2J\r\n2026 [-] forged line",
            common_name="evil\x1b[31m\rname",
        )
    )
    warning = chain_gap("--cert", None, [leaf], [], platform=list)
    assert warning is not None
    assert warning.isprintable(), warning
    assert "\\x1b[2J\\r\\n2026" in warning
    assert "evil\\x1b[31m\\rname" in warning


def test_same_name_other_key_is_not_the_issuer(intermediate: trustme.CA) -> None:
    """A CA certificate with the issuer's name but another key (the authority and
    subject key identifiers differ) is not taken for the issuer."""
    leaf = _load(intermediate.issue_cert("localhost").cert_chain_pems[0])
    (unit,) = leaf.issuer.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    namesake_root = trustme.CA(organization_unit_name=str(unit.value))
    assert _load(namesake_root.cert_pem).subject == leaf.issuer
    # The real intermediate, seen: warned.
    seen = [("--sni a.example= a.pem", _load(intermediate.cert_pem))]
    assert chain_gap("--cert", None, [leaf], seen, platform=list) is not None
    # A self-signed namesake with another key is not the issuer: no root seen, and
    # nothing to go by, so no warning either way; but it must not count as a root
    # that hides the real, seen intermediate.
    both = [("--sni b.example= b.pem", _load(namesake_root.cert_pem)), *seen]
    assert chain_gap("--cert", None, [leaf], both, platform=list) is not None
    assert chain_gap("--cert", None, [leaf], both, (_load(namesake_root.cert_pem),)) == (
        chain_gap("--cert", None, [leaf], both, platform=list)
    )
