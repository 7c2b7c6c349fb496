"""
The example configuration in etc/ is valid: every key it sets is accepted.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tlsecho import ServerConfiguration, TLSVersion, VerifyMode

from conftest import TLSFiles

ETC = Path(__file__).resolve().parent.parent / "etc"


def test_example_configuration_loads(tmp_path: Path, tls_files: TLSFiles) -> None:
    """etc/tlsecho.toml, beside a certificate and key, gives a valid configuration."""
    etc = tmp_path / "etc"
    etc.mkdir()
    shutil.copy(ETC / "tlsecho.toml", etc / "tlsecho.toml")
    shutil.copy(tls_files.server_cert, etc / "server.pem")
    shutil.copy(tls_files.server_key, etc / "server.key")
    configuration = ServerConfiguration.from_options({"config": str(etc / "tlsecho.toml")})
    assert configuration.listen == ("tcp:8443:interface=127.0.0.1",)
    assert configuration.settings.certificate == etc / "server.pem"
    assert configuration.settings.verify is VerifyMode.NONE
    assert configuration.settings.policy.min_tls is TLSVersion.TLSv1_2
    assert configuration.settings.policy.max_tls is TLSVersion.TLSv1_3
    assert configuration.development is None


def test_example_configuration_service_keys(tmp_path: Path, tls_files: TLSFiles) -> None:
    """The service keys of etc/tlsecho.toml are accepted by the server's options."""
    from tlsecho.tap import Options

    etc = tmp_path / "etc"
    etc.mkdir()
    shutil.copy(ETC / "tlsecho.toml", etc / "tlsecho.toml")
    shutil.copy(tls_files.server_cert, etc / "server.pem")
    shutil.copy(tls_files.server_key, etc / "server.key")
    options = Options()
    options.parseOptions(["--config", str(etc / "tlsecho.toml")])
    assert options["handshake-timeout"] == 10.0
    assert options["idle-timeout"] == 300.0
    assert options["max-connections"] == 10_000
    assert options["log-format"] == "text"
