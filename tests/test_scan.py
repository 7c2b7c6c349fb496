"""
An independent TLS scanner, sslyze, run against the real ``twistd tlsecho`` server: the
default profile must be Mozilla "intermediate" compliant and ``--profile modern``
Mozilla "modern" compliant, and the scan results (its JSON output) must show nothing
below TLS 1.2, only forward-secret AEAD cipher suites, no compression, no
client-initiated renegotiation, no 0-RTT, and none of the known vulnerabilities.

sslyze pins its own cryptography version, so it lives in its own virtual environment,
created once (``pip install``, from PyPI) under ``$XDG_CACHE_HOME/tlsecho-test-sslyze``
(default ``~/.cache/tlsecho-test-sslyze``) and reused.  If it cannot be installed
because the package index cannot be reached, the tests skip, saying so once; under
``TLSECHO_REQUIRE_TOOLS=1`` (set by ``.ci/run``) they fail instead, as they do for any
other failure to install.  They are marked ``scanner``: ``pytest -m "not scanner"``
leaves them out.

To scan by hand (the certificate must chain to the CA given to sslyze, live at most
90 days for "modern" and 366 for "intermediate", and have a non-critical
subjectAltName: trustme's leaves do not qualify, hence L{_scan_certificate})::

    python3 -m venv ~/.cache/tlsecho-test-sslyze
    ~/.cache/tlsecho-test-sslyze/bin/pip install 'sslyze>=6.3,<7'
    twistd -n --pidfile= tlsecho --cert server.pem --key server.key \\
        --listen tcp:8443:interface=127.0.0.1 &
    ~/.cache/tlsecho-test-sslyze/bin/sslyze --mozilla_config=intermediate \\
        --certinfo_ca_file ca.pem --json_out scan.json 'localhost:8443{127.0.0.1}'

and for the modern profile, the server with ``--profile modern`` and sslyze with
``--mozilla_config=modern``.  ``localhost:PORT{127.0.0.1}`` makes sslyze connect to
127.0.0.1 with SNI and certificate name ``localhost``.  Its exit status is 0 for a
compliant server and 1 otherwise, but also 0 when it could not connect at all: read
its "COMPLIANCE AGAINST TLS CONFIGURATION" section.
"""

from __future__ import annotations

import datetime
import fcntl
import ipaddress
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from test_recipes import make_pki

from _docs import doc_block
from _processes import TWIST_COMMAND, ServerProcess, start_server

pytestmark = [pytest.mark.scanner, pytest.mark.subprocess]

#: The sslyze release line the assertions below are written for (its JSON layout).
SSLYZE_REQUIREMENT = "sslyze>=6.3,<7"
#: Seconds for creating the virtual environment and installing sslyze.
INSTALL_TIMEOUT = 900
#: Seconds for one scan.
SCAN_TIMEOUT = 180


# sslyze -------------------------------------------------------------------------------


def _cache_home() -> Path:
    configured = os.environ.get("XDG_CACHE_HOME")
    return Path(configured) if configured else Path.home() / ".cache"


def _works(python: Path) -> bool:
    """Whether C{python} is a virtual environment with a usable sslyze."""
    if not (python.parent / "sslyze").exists():
        return False
    result = subprocess.run(
        [str(python), "-c", "import sslyze"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    return result.returncode == 0


def index_unreachable() -> str | None:
    """
    Why pip cannot reach the package index (its last line of output), or L{None}
    if it can: it fetches sslyze's own distribution file, nothing else.
    """
    with tempfile.TemporaryDirectory() as directory:
        try:
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--disable-pip-version-check",
                    "--no-deps",
                    "--no-cache-dir",
                    "--retries",
                    "1",
                    "--timeout",
                    "15",
                    "-q",
                    "-d",
                    directory,
                    SSLYZE_REQUIREMENT,
                ],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return "pip download timed out"
    if result.returncode == 0:
        return None
    lines = (result.stderr or result.stdout).strip().splitlines()
    return lines[-1] if lines else f"pip download exited {result.returncode}"


def install_failed(home: Path, step: list[str], output: str) -> NoReturn:
    """
    Skip, with one reason, if sslyze could not be installed because the package
    index cannot be reached, unless C{TLSECHO_REQUIRE_TOOLS} is set; fail otherwise.
    """
    if not os.environ.get("TLSECHO_REQUIRE_TOOLS"):
        why = index_unreachable()
        if why is not None:
            pytest.skip(
                f"sslyze is not installed in {home} and the package index cannot be "
                f"reached to install it ({why})"
            )
    pytest.fail(f"cannot install sslyze ({' '.join(step)}):\n{output}")


@pytest.fixture(scope="session")
def sslyze() -> Path:
    """
    The sslyze command, installed on first use into a cached virtual environment.

    A failure to install fails the test, but for an unreachable package index
    outside CI, which skips it (L{install_failed}).  A lock file keeps concurrent test
    runs from building the environment at the same time.
    """
    home = _cache_home() / "tlsecho-test-sslyze"
    python = home / "bin" / "python"
    home.parent.mkdir(parents=True, exist_ok=True)
    with open(home.parent / "tlsecho-test-sslyze.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _works(python):
            steps = [
                [sys.executable, "-m", "venv", "--clear", str(home)],
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "-q",
                    SSLYZE_REQUIREMENT,
                ],
            ]
            for step in steps:
                result = subprocess.run(
                    step,
                    capture_output=True,
                    text=True,
                    timeout=INSTALL_TIMEOUT,
                    check=False,
                )
                if result.returncode != 0:
                    install_failed(home, step, result.stdout + result.stderr)
            assert _works(python), f"sslyze does not import in {home}"
    return home / "bin" / "sslyze"


# Certificates -------------------------------------------------------------------------


@dataclass(frozen=True)
class ScanFiles:
    """A server certificate and key that pass sslyze's checks, and their CA."""

    cert: Path
    key: Path
    ca: Path


def _scan_certificate(directory: Path, key_type: trustme.KeyType) -> ScanFiles:
    """
    A trustme CA, and a leaf for localhost and 127.0.0.1 signed by its key that meets
    Mozilla's certificate rules as sslyze checks them.

    trustme's own leaves do not: their subjectAltName is critical although their
    subject is not empty (RFC 5280 section 4.2.1.6 forbids it, and the path
    validation sslyze uses rejects it), and they live for a thousand years where
    Mozilla allows 366 days (intermediate) or 90 (modern).  This one lives 30 days.
    """
    authority = trustme.CA(key_type=key_type)
    ca_key = serialization.load_pem_private_key(authority.private_key_pem.bytes(), None)
    ca_cert = x509.load_pem_x509_certificate(authority.cert_pem.bytes())
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if key_type is trustme.KeyType.RSA:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    usage = dict.fromkeys(
        [
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ],
        False,
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, **usage), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),
            critical=False,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = ScanFiles(
        directory / "scan.pem", directory / "scan.key", directory / "scan-ca.pem"
    )
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    files.key.chmod(0o600)
    authority.cert_pem.write_to_path(str(files.ca))
    return files


# Scans --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scan:
    """One sslyze run: its exit status, its text report and its JSON result."""

    returncode: int
    report: str
    result: dict[str, Any]
    port: int

    def command(self, name: str) -> dict[str, Any]:
        """The result of one scan command, which must have completed."""
        attempt = self.result["scan_result"][name]
        assert attempt["status"] == "COMPLETED", (name, attempt)
        return attempt["result"]

    def assert_compliant(self, configuration: str) -> None:
        """sslyze found the server compliant with the Mozilla C{configuration}."""
        assert f'against Mozilla\'s "{configuration}" configuration' in self.report
        verdict = re.search(rf"^\s*localhost:{self.port}: (.*)$", self.report, re.M)
        assert verdict, self.report
        assert verdict[1] == "OK - Compliant.", self.report
        assert self.returncode == 0, self.report


def _scan(
    sslyze: Path, server: ServerProcess, files: ScanFiles, configuration: str, out: Path
) -> Scan:
    """Scan the server with the checks of Mozilla's C{configuration}, plus 0-RTT."""
    result = subprocess.run(
        [
            str(sslyze),
            f"--mozilla_config={configuration}",
            "--certinfo",
            "--certinfo_ca_file",
            str(files.ca),
            "--early_data",
            "--json_out",
            str(out),
            # Host name localhost (SNI and certificate check), address 127.0.0.1.
            f"localhost:{server.port}{{127.0.0.1}}",
        ],
        capture_output=True,
        text=True,
        timeout=SCAN_TIMEOUT,
        check=False,
    )
    report = result.stdout + result.stderr
    assert out.exists(), report
    document = json.loads(out.read_text())
    assert not document["invalid_server_strings"], report
    (server_result,) = document["server_scan_results"]
    assert server_result["connectivity_status"] == "COMPLETED", report
    assert server_result["server_location"]["ip_address"] == "127.0.0.1"
    return Scan(result.returncode, report, server_result, server.port)


PROFILES = {"intermediate": [], "modern": ["--profile", "modern"]}


@pytest.fixture(params=list(PROFILES))
def scan(
    request: pytest.FixtureRequest,
    sslyze: Path,
    servers: list[ServerProcess],
    tmp_path: Path,
) -> Scan:
    """A scan of the server with an ECDSA certificate, in each profile."""
    profile: str = request.param
    files = _scan_certificate(tmp_path, trustme.KeyType.ECDSA)
    server = start_server(
        servers, "--cert", str(files.cert), "--key", str(files.key), *PROFILES[profile]
    )
    return _scan(sslyze, server, files, profile, tmp_path / "scan.json")


# Tests --------------------------------------------------------------------------------


def test_profile_is_mozilla_compliant(scan: Scan, request: pytest.FixtureRequest) -> None:
    """sslyze finds each profile compliant with the Mozilla configuration of its name."""
    scan.assert_compliant(request.node.callspec.params["scan"])


def test_intermediate_with_rsa_certificate_is_mozilla_compliant(
    sslyze: Path, servers: list[ServerProcess], tmp_path: Path
) -> None:
    """sslyze finds the default profile compliant with an RSA certificate too."""
    files = _scan_certificate(tmp_path, trustme.KeyType.RSA)
    server = start_server(servers, "--cert", str(files.cert), "--key", str(files.key))
    scan = _scan(sslyze, server, files, "intermediate", tmp_path / "scan.json")
    scan.assert_compliant("intermediate")
    robot = scan.command("robot")["robot_result"]
    assert robot == "NOT_VULNERABLE_RSA_NOT_SUPPORTED"


def test_nothing_below_tls12(scan: Scan, request: pytest.FixtureRequest) -> None:
    """sslyze finds no SSL 2.0, SSL 3.0, TLS 1.0 or 1.1; TLS 1.2 only in intermediate."""
    for name in ("ssl_2_0", "ssl_3_0", "tls_1_0", "tls_1_1"):
        result = scan.command(f"{name}_cipher_suites")
        assert not result["is_tls_version_supported"], name
        assert result["accepted_cipher_suites"] == [], name
    tls12 = scan.command("tls_1_2_cipher_suites")["is_tls_version_supported"]
    assert tls12 == (request.node.callspec.params["scan"] == "intermediate")
    assert scan.command("tls_1_3_cipher_suites")["is_tls_version_supported"]


def test_only_forward_secret_aead_suites(scan: Scan) -> None:
    """Every suite sslyze gets accepted has an ephemeral ECDH key and an AEAD cipher."""
    accepted = [
        suite
        for version in ("tls_1_2", "tls_1_3")
        for suite in scan.command(f"{version}_cipher_suites")["accepted_cipher_suites"]
    ]
    assert accepted
    aead = re.compile(r"_(AES_(128|256)_GCM|CHACHA20_POLY1305)_SHA(256|384)$")
    for suite in accepted:
        name = suite["cipher_suite"]["name"]
        assert name.startswith(("TLS_ECDHE_", "TLS_AES_", "TLS_CHACHA20_")), name
        assert aead.search(name), name
        assert suite["ephemeral_key"]["type_name"] == "ECDH", name


def test_only_mozilla_groups(scan: Scan) -> None:
    """sslyze finds key exchange possible over X25519, P-256 and P-384 and nothing else."""
    curves = {c["name"] for c in scan.command("elliptic_curves")["supported_curves"]}
    assert curves == {"X25519", "secp256r1", "secp384r1"}


def test_no_compression(scan: Scan) -> None:
    """sslyze finds TLS compression (CRIME) not supported."""
    assert scan.command("tls_compression")["supports_compression"] is False


def test_no_client_renegotiation(scan: Scan) -> None:
    """sslyze finds secure renegotiation announced and client renegotiation refused."""
    result = scan.command("session_renegotiation")
    assert result["supports_secure_renegotiation"] is True
    assert result["is_vulnerable_to_client_renegotiation_dos"] is False
    assert result["client_renegotiations_success_count"] == 0


def test_no_early_data(scan: Scan) -> None:
    """sslyze finds TLS 1.3 early data (0-RTT) not accepted."""
    assert scan.command("tls_1_3_early_data")["supports_early_data"] is False


def test_no_known_vulnerability(scan: Scan) -> None:
    """sslyze finds no Heartbleed, ROBOT or CCS injection, and finds TLS_FALLBACK_SCSV."""
    assert scan.command("heartbleed")["is_vulnerable_to_heartbleed"] is False
    assert scan.command("robot")["robot_result"].startswith("NOT_VULNERABLE")
    assert scan.command("openssl_ccs_injection")["is_vulnerable_to_ccs_injection"] is False
    assert scan.command("tls_fallback_scsv")["supports_fallback_scsv"] is True
    assert scan.command("tls_extended_master_secret")["supports_ems_extension"] is True


def test_documented_scan_of_the_recipe_pki(
    sslyze: Path, servers: list[ServerProcess], tmp_path: Path
) -> None:
    """
    The hand scan of docs/security.md, run as printed (but for the port and the
    sslyze path) on the certificates of its PKI recipe (examples/pki.sh), finds the
    server Mozilla "intermediate" compliant: the recipe's CA passes strict validation.
    """
    make_pki(tmp_path)
    text = doc_block("docs/security.md", "tests/test_scan.py").text
    lines = [line for line in text.replace("\\\n", " ").splitlines() if line.strip()]
    venv_line, pip_line, server_line, scan_line = lines
    assert venv_line == "python3 -m venv ~/.cache/tlsecho-test-sslyze"
    assert shlex.split(pip_line)[-2:] == ["install", SSLYZE_REQUIREMENT]
    server_words = shlex.split(server_line)
    assert server_words[:2] == ["twist", "tlsecho"]
    assert server_words[-1] == "&"
    arguments = [
        str(tmp_path / word) if (tmp_path / word).is_file() else word
        for word in server_words[2:-1]
    ]
    listen = arguments.index("--listen")
    assert arguments[listen + 1] == "tcp:8443:interface=127.0.0.1"
    arguments[listen + 1] = "tcp:0:interface=127.0.0.1"
    server = start_server(servers, *arguments, listen=None, command=TWIST_COMMAND)
    words = shlex.split(scan_line.replace("8443", str(server.port)))
    assert words[0] == "~/.cache/tlsecho-test-sslyze/bin/sslyze"
    out = tmp_path / "scan.json"
    result = subprocess.run(
        [str(sslyze), *words[1:], "--json_out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=SCAN_TIMEOUT,
        check=False,
    )
    report = result.stdout + result.stderr
    document = json.loads(out.read_text())
    (server_result,) = document["server_scan_results"]
    assert server_result["connectivity_status"] == "COMPLETED", report
    scan = Scan(result.returncode, report, server_result, server.port)
    scan.assert_compliant("intermediate")
    deployment = scan.command("certificate_info")["certificate_deployments"][0]
    # The recipe's CA passes sslyze's strict path validation (the failure).
    (trust,) = [
        t
        for t in deployment["path_validation_results"]
        if t["trust_store"]["name"] == "Supplied CA file"
    ]
    assert trust["trust_store"]["path"] == "server-ca.pem"
    assert trust["validation_error"] is None, trust
    assert trust["verified_certificate_chain"], trust


# Installing sslyze --------------------------------------------------------------------


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """pip with no configuration and an index nothing listens at."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple/")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    monkeypatch.delenv("PIP_NO_INDEX", raising=False)


@pytest.mark.usefixtures("offline")
def test_unreachable_index_is_detected() -> None:
    """With an index nothing listens at, the probe says why in one line."""
    why = index_unreachable()
    assert why is not None
    assert "\n" not in why


@pytest.mark.usefixtures("offline")
def test_unreachable_index_skips_with_one_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Outside CI, an unreachable index skips the scanner tests, saying why."""
    monkeypatch.delenv("TLSECHO_REQUIRE_TOOLS", raising=False)
    with pytest.raises(pytest.skip.Exception) as info:
        install_failed(tmp_path, ["pip", "install", SSLYZE_REQUIREMENT], "no network")
    assert str(info.value.msg).startswith(
        f"sslyze is not installed in {tmp_path} and the package index cannot be reached"
    )


@pytest.mark.usefixtures("offline")
def test_unreachable_index_fails_under_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Under TLSECHO_REQUIRE_TOOLS (.ci/run) nothing skips: a failed install fails."""
    monkeypatch.setenv("TLSECHO_REQUIRE_TOOLS", "1")
    with pytest.raises(pytest.fail.Exception, match="cannot install sslyze"):
        install_failed(tmp_path, ["pip", "install", SSLYZE_REQUIREMENT], "no network")


def test_other_install_failures_fail(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A failure that is not the index (the index answers) fails, never skips."""
    monkeypatch.delenv("TLSECHO_REQUIRE_TOOLS", raising=False)
    monkeypatch.setattr(sys.modules[__name__], "index_unreachable", lambda: None)
    with pytest.raises(pytest.fail.Exception, match="cannot install sslyze"):
        install_failed(tmp_path, ["pip", "install", SSLYZE_REQUIREMENT], "broken wheel")
