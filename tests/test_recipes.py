"""
The mutual-TLS recipe of docs/security.md, end to end: examples/pki.sh makes the PKI
with the documented openssl commands, the documented server command serves with it, and
the documented client commands (tlsecho client, openssl s_client -verify_return_error)
connect with the outcomes the docs promise.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from _docs import ROOT, doc_block
from _processes import LOOPBACK_LISTEN, TLSECHO, TWIST_COMMAND, ServerProcess

pytestmark = pytest.mark.subprocess

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
PKI = ROOT / "examples" / "pki.sh"
DOC = "docs/security.md"


def make_pki(directory: Path) -> dict[str, Path]:
    """Run examples/pki.sh in C{directory}; the files it made, by name."""
    result = subprocess.run(
        ["sh", str(ROOT / "examples" / "pki.sh")],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "server.pem: OK" in result.stdout
    assert "client.pem: OK" in result.stdout
    return {path.name: path for path in directory.iterdir()}


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """A directory holding the recipe's PKI."""
    make_pki(tmp_path)
    return tmp_path


def test_the_recipe_makes_one_consistent_set_of_files(pki: Path) -> None:
    """Eight files, named as the docs use them; keys private; CAs fit strict validation."""
    names = {p.name for p in pki.iterdir()}
    assert names == {
        f"{who}{part}.{ext}"
        for who in ("server", "client")
        for part in ("", "-ca")
        for ext in ("pem", "key")
    }
    for key in pki.glob("*.key"):
        assert key.stat().st_mode & 0o077 == 0, key
    for name in ("server-ca.pem", "client-ca.pem"):
        ca = x509.load_pem_x509_certificate((pki / name).read_bytes())
        usage = ca.extensions.get_extension_for_class(x509.KeyUsage)
        assert usage.critical
        assert usage.value.key_cert_sign
        assert usage.value.crl_sign
        ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = ca.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        assert aki.key_identifier == ski.digest
    for leaf, ca_name in (("server.pem", "server-ca.pem"), ("client.pem", "client-ca.pem")):
        cert = x509.load_pem_x509_certificate((pki / leaf).read_bytes())
        ca = x509.load_pem_x509_certificate((pki / ca_name).read_bytes())
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        assert aki.key_identifier == ski.digest
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_the_doc_shows_the_script_the_test_runs() -> None:
    """docs/security.md shows examples/pki.sh whole (test_docs checks it is identical)."""
    text = (ROOT / DOC).read_text()
    assert "<!-- example: examples/pki.sh -->" in text
    assert PKI.read_text().strip() in text


def _commands() -> list[str]:
    """The documented commands, one per entry (continuation lines joined)."""
    text = doc_block(DOC, "tests/test_recipes.py").text
    return [line for line in text.replace("\\\n", " ").splitlines() if line.strip()]


def test_documented_mutual_tls_commands(pki: Path, servers: list[ServerProcess]) -> None:
    """
    The server command, run as documented but on a free loopback port; then each
    client command against it, with the outcome the docs state.
    """
    server_line, good, refused, refusal, s_client = _commands()
    assert server_line.startswith("twist tlsecho ")
    # The files are the recipe's, in its directory.
    arguments = [
        str(pki / word) if (pki / word).is_file() else word
        for word in shlex.split(server_line)[2:]
    ]
    server = ServerProcess(
        ["--listen", LOOPBACK_LISTEN, *arguments], command=[*TWIST_COMMAND]
    )
    servers.append(server)
    port = server.port

    def client(line: str) -> subprocess.CompletedProcess[bytes]:
        payload, command = line.split(" | ")
        assert payload == "echo hi"
        words = shlex.split(command.replace("localhost:8443", f"localhost:{port}"))
        assert words[:2] == ["tlsecho", "client"]
        return subprocess.run(
            [TLSECHO, *words[1:]],
            input=b"hi\n",
            capture_output=True,
            cwd=pki,
            timeout=60,
            check=False,
        )

    ok = client(good)
    assert (ok.returncode, ok.stdout) == (0, b"hi\n"), ok.stderr
    no = client(refused)
    message = re.fullmatch(r"# (tlsecho client: .*?)\s+\(exit (\d+)\)", refusal)
    assert message, refusal
    assert no.returncode == int(message[2]), no.stderr
    assert no.stderr.decode().strip() == message[1].replace("8443", str(port))

    words = shlex.split(s_client.replace("localhost:8443", f"localhost:{port}"))
    assert words[:2] == ["openssl", "s_client"]
    assert words[-2:] == ["<", "/dev/null"]
    assert "-verify_return_error" in words
    session = subprocess.run(
        [OPENSSL, *words[1:-2]],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=pki,
        timeout=60,
        check=False,
    )
    assert session.returncode == 0, session.stdout + session.stderr
    assert "Verify return code: 0 (ok)" in session.stdout


def test_s_client_refuses_without_the_ca(pki: Path, servers: list[ServerProcess]) -> None:
    """-verify_return_error makes the s_client check mean something: another CA fails."""
    server = ServerProcess(
        [
            "--listen",
            LOOPBACK_LISTEN,
            "--cert",
            str(pki / "server.pem"),
            "--key",
            str(pki / "server.key"),
        ],
        command=[*TWIST_COMMAND],
    )
    servers.append(server)
    session = subprocess.run(
        [
            OPENSSL,
            "s_client",
            "-verify_return_error",
            "-CAfile",
            str(pki / "client-ca.pem"),
            "-verify_hostname",
            "localhost",
            "-connect",
            f"localhost:{server.port}",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert session.returncode != 0, session.stdout
