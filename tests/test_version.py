"""
tlsecho says its version, and what it runs on: C{tlsecho --version},
C{tlsecho.__version__}, the server's start line and C{tlsecho check}.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import tomllib
from pathlib import Path

import OpenSSL
import pytest
import twisted
from OpenSSL.SSL import OPENSSL_VERSION, OpenSSL_version

import tlsecho
from tlsecho._app import _version

from _processes import TLSECHO, TWIST_COMMAND, ServerProcess, start_server
from conftest import TLSFiles

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT_VERSION: str = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
    "version"
]
OPENSSL = OpenSSL_version(OPENSSL_VERSION).decode().removeprefix("OpenSSL ")
#: What every surface prints, for this checkout and these libraries.
LINE = (
    f"tlsecho {PYPROJECT_VERSION} (Twisted {twisted.__version__}, "
    f"pyOpenSSL {OpenSSL.__version__}, OpenSSL {OPENSSL})"
)


def test_dunder_version_is_the_projects() -> None:
    """tlsecho.__version__ is pyproject.toml's version, whether installed or not."""
    assert tlsecho.__version__ == PYPROJECT_VERSION
    assert _version.package_version() == PYPROJECT_VERSION


def test_version_command() -> None:
    """tlsecho --version prints one line: tlsecho's version and its libraries'."""
    result = subprocess.run(
        [TLSECHO, "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, LINE + "\n", "")


def test_metadata_of_this_package_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    """The installed package's metadata gives the version when it is this tlsecho."""

    class Installed:
        version = "9.8.7"

        @staticmethod
        def locate_file(path: str) -> Path:
            return _version._HERE.parent / path

    # Another copy's metadata (a build's egg-info in the current directory) first.
    monkeypatch.setattr(
        importlib.metadata, "distributions", lambda **kw: [Elsewhere(), Installed]
    )
    assert _version.package_version() == "9.8.7"


class Elsewhere:
    """The metadata of a tlsecho installed somewhere else."""

    version = "9.8.7"

    @staticmethod
    def locate_file(path: str) -> Path:
        return Path("/nonexistent/site-packages") / path


def test_metadata_of_another_copy_is_ignored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A tlsecho installed elsewhere does not say this one's version: the
    checkout this module is in does."""
    package = tmp_path / "src" / "tlsecho"
    package.mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text('[project]\nversion = "1.2.3"\n')
    monkeypatch.setattr(_version, "_HERE", package)
    monkeypatch.setattr(importlib.metadata, "distributions", lambda **kw: [Elsewhere()])
    assert _version.package_version() == "1.2.3"


def test_unknown_without_metadata_or_checkout(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With neither metadata nor a pyproject.toml, the version is 0+unknown."""

    monkeypatch.setattr(importlib.metadata, "distributions", lambda **kw: [])
    monkeypatch.setattr(_version, "_HERE", tmp_path / "src" / "tlsecho")
    assert _version.package_version() == "0+unknown"


@pytest.mark.subprocess
@pytest.mark.parametrize("runner", ["twistd", "twist"])
def test_start_line(runner: str, servers: list[ServerProcess], tls_files: TLSFiles) -> None:
    """The server's first line names its version and its libraries', under both runners."""
    command = {"twist": TWIST_COMMAND}.get(runner)
    extra = {"command": command} if command else {}
    server = start_server(
        servers,
        "--cert",
        str(tls_files.server_cert),
        "--key",
        str(tls_files.server_key),
        **extra,  # type: ignore[arg-type]
    )
    starting = [line for line in server.lines if "starting tlsecho" in line]
    assert len(starting) == 1, server.output
    assert starting[0].endswith(f"starting {LINE}"), server.output
    first = server.output.index("starting tlsecho")
    assert first < server.output.index("tlsecho listening on")


@pytest.mark.subprocess
def test_start_line_with_workers(servers: list[ServerProcess], tls_files: TLSFiles) -> None:
    """With --workers the main process says the versions once; workers do not repeat it."""
    server = start_server(
        servers,
        "--cert",
        str(tls_files.server_cert),
        "--key",
        str(tls_files.server_key),
        "--workers",
        "2",
    )
    server.wait_for(r"started worker 2")
    server.wait_for(r"\[worker 2\]")
    starting = [line for line in server.lines if "starting tlsecho" in line]
    assert len(starting) == 1, server.output
    assert starting[0].endswith(f"starting {LINE} with 2 workers"), server.output


def _check(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TLSECHO, "check", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def test_check_reports_versions(tls_files: TLSFiles) -> None:
    """tlsecho check begins with the version line; --json has them as fields."""
    files = ["--cert", str(tls_files.server_cert), "--key", str(tls_files.server_key)]
    text = _check(*files)
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[0] == LINE
    data = json.loads(_check(*files, "--json").stdout)
    assert data["versions"] == {
        "tlsecho": PYPROJECT_VERSION,
        "twisted": twisted.__version__,
        "pyopenssl": OpenSSL.__version__,
        "openssl": OPENSSL,
    }
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", data["versions"]["openssl"])
