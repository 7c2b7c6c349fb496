"""
The built wheel, installed non-editable into a fresh virtual environment, is what
users get: it must carry the twistd plugin and nothing that breaks Twisted's
plugin namespace.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: The fresh environment must not see the checkout through PYTHONPATH.
CLEAN_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel pip builds from this checkout."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        timeout=600,
    )
    (built,) = out.glob("tlsecho-*.whl")
    return built


def test_wheel_contains_the_plugin_and_types(wheel: Path) -> None:
    """The wheel ships the plugin module, py.typed and the subpackages."""
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "twisted/plugins/tlsecho_plugin.py" in names
    assert "tlsecho/py.typed" in names
    assert "tlsecho/tap.py" in names
    for package in ("_settings", "_tls", "_tls/_openssl_internals", "_net", "_app"):
        assert f"tlsecho/{package}/__init__.py" in names


def test_wheel_has_no_twisted_package_markers(wheel: Path) -> None:
    """The wheel has no twisted/__init__.py, twisted/plugins/__init__.py or dropin.cache."""
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "twisted/__init__.py" not in names
    assert "twisted/plugins/__init__.py" not in names
    assert not [n for n in names if n.endswith("dropin.cache")]
    assert not [
        n
        for n in names
        if n.startswith("twisted/") and n != "twisted/plugins/tlsecho_plugin.py"
    ]


def test_fresh_virtualenv_lists_the_plugin(wheel: Path, tmp_path: Path) -> None:
    """A non-editable install into a fresh venv makes twistd --help list tlsecho."""
    environment = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(environment)
    python = environment / "bin" / "python"
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            str(wheel),
        ],
        check=True,
        timeout=900,
        env=CLEAN_ENV,
    )
    listing = subprocess.run(
        [str(environment / "bin" / "twistd"), "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=CLEAN_ENV,
    )
    assert any(line.split()[:1] == ["tlsecho"] for line in listing.stdout.splitlines()), (
        listing.stdout
    )
    usage = subprocess.run(
        [str(environment / "bin" / "twistd"), "tlsecho", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=CLEAN_ENV,
    )
    assert "--listen" in usage.stdout
    client = subprocess.run(
        [str(environment / "bin" / "tlsecho"), "client", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=CLEAN_ENV,
    )
    assert "HOST:PORT" in client.stdout
    version = subprocess.run(
        [str(environment / "bin" / "tlsecho"), "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=CLEAN_ENV,
        cwd=tmp_path,
    )
    # From the installed package's metadata: no checkout is in sight.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert version.stdout.startswith(f"tlsecho {project['version']} (Twisted "), version
