"""
``tlsecho check``: validates a server configuration without listening, reports on it,
and exits 0 (fine), 1 (warnings only) or 2 (errors).
"""

from __future__ import annotations

import datetime
import json
import subprocess
from pathlib import Path

import pytest

from test_twistd_plugin import BAD_INPUTS

from _processes import TLSECHO
from conftest import TLSFiles, write_cert


def _check(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TLSECHO, "check", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _good(tls_files: TLSFiles) -> list[str]:
    return ["--cert", str(tls_files.server_cert), "--key", str(tls_files.server_key)]


def test_good_configuration_reports_and_exits_zero(tls_files: TLSFiles) -> None:
    """A valid configuration prints the certificate, chain, key, policy and 'ok'."""
    result = _check(
        *_good(tls_files), "--ca", str(tls_files.client_ca), "--verify", "required"
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "names: DNS:localhost, IP:127.0.0.1, IP:::1" in out
    assert "days left" in out
    assert "chain: in order" in out
    assert f"key: {tls_files.server_key} matches the certificate; file mode 0600" in out
    assert "CA certificates: 1 from 1 file(s)" in out
    assert "protocols: TLS 1.2 to TLS 1.3 (profile intermediate)" in out
    assert "TLS 1.2 ciphers: ECDHE-ECDSA-AES128-GCM-SHA256:" in out
    assert "groups: X25519MLKEM768:X25519:prime256v1:secp384r1" in out
    assert "session tickets: keys of each process's own" in out
    assert out.rstrip().endswith("result: ok")


def test_shared_ticket_keys_are_reported(tls_files: TLSFiles, tmp_path: Path) -> None:
    """With --ticket-key-file the report names the shared key file (never the keys)."""
    key = tmp_path / "ticket.key"
    key.write_bytes(bytes(range(80)))
    key.chmod(0o600)
    result = _check(*_good(tls_files), "--ticket-key-file", str(key), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ticket_key_file"] == str(key)
    assert bytes(range(80)).hex() not in result.stdout
    text = _check(*_good(tls_files), "--ticket-key-file", str(key)).stdout
    assert f"session tickets: keys from {key}, shared" in text


def test_modern_profile_reports_tls13_only(tls_files: TLSFiles) -> None:
    """With --profile modern the report shows TLS 1.3 only and no TLS 1.2 ciphers."""
    result = _check(*_good(tls_files), "--profile", "modern")
    assert result.returncode == 0, result.stderr
    assert "protocols: TLS 1.3 to TLS 1.3 (profile modern)" in result.stdout
    assert "TLS 1.2 ciphers: (TLS 1.2 off)" in result.stdout


def test_json_report(tls_files: TLSFiles) -> None:
    """--json prints the same report as a JSON document."""
    result = _check(*_good(tls_files), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    (served,) = data["served"]
    assert served["certificates"][0]["names"] == ["DNS:localhost", "IP:127.0.0.1", "IP:::1"]
    assert served["key_file_mode"] == "0600"
    assert data["tls_versions"] == ["1.2", "1.3"]
    assert data["warnings"] == []


def test_expiring_certificate_is_a_warning(tls_files: TLSFiles, tmp_path: Path) -> None:
    """A certificate that expires within 30 days is reported and the exit status is 1."""
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=10)
    cert, key = write_cert(
        tls_files.server_ca.issue_cert("localhost", not_after=soon), tmp_path, "soon"
    )
    result = _check("--cert", str(cert), "--key", str(key))
    assert result.returncode == 1, result.stderr
    assert "warning: --cert: certificate" in result.stdout
    assert "expires in 9 days" in result.stdout or "expires in 10 days" in result.stdout
    assert result.stdout.rstrip().endswith("result: warnings")


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_an_error(case: str, tls_files: TLSFiles, tmp_path: Path) -> None:
    """Every bad-input class of DESIGN.md makes check exit 2 with one line naming it."""
    workdir = tmp_path / "bad"
    workdir.mkdir()
    arguments, option, path = BAD_INPUTS[case](tls_files, workdir)
    result = _check(*arguments)
    assert result.returncode == 2, result.stdout + result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("tlsecho check: error: ")
    assert option in line
    if path is not None:
        assert str(path) in line
    assert "Traceback" not in result.stdout + result.stderr


def test_bad_input_as_json(tls_files: TLSFiles, tmp_path: Path) -> None:
    """With --json, errors come as a JSON document too."""
    result = _check("--cert", str(tmp_path / "missing.pem"), "--json")
    assert result.returncode == 2
    assert json.loads(result.stdout) == {
        "errors": [f"--cert {tmp_path / 'missing.pem'}: no such file"]
    }
