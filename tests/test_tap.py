"""
Tests for the twistd plugin's options, parsed directly (no subprocess): flags and the
C{--config} TOML file become one validated L{ServerConfiguration}; every invalid setting
is a one-line L{usage.UsageError}; L{makeService} assembles one listener per C{--listen}.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from twisted.application.service import MultiService
from twisted.internet.ssl import TLSVersion
from twisted.python import usage

from tlsecho import DEFAULT_CIPHERS, ServerConfiguration, VerifyMode
from tlsecho.tap import Options, makeService

from conftest import TLSFiles

DEFAULT_LISTEN = "tcp:8443:interface=127.0.0.1"
LOOPBACK = "tcp:0:interface=127.0.0.1"


def _parse(*arguments: str | Path) -> Options:
    """Options parsed from C{arguments}."""
    options = Options()
    options.parseOptions([str(a) for a in arguments])
    return options


def _configuration(*arguments: str | Path) -> ServerConfiguration:
    """The configuration the options make from C{arguments}."""
    configuration = _parse(*arguments)["configuration"]
    assert isinstance(configuration, ServerConfiguration)
    return configuration


def _usage_error(*arguments: str | Path) -> str:
    """The message of the UsageError C{arguments} raise, checked to be one line."""
    with pytest.raises(usage.UsageError) as info:
        _parse(*arguments)
    message = str(info.value)
    assert "\n" not in message
    assert "Traceback" not in message
    return message


def _cert_args(files: TLSFiles) -> list[str | Path]:
    return ["--cert", files.server_cert, "--key", files.server_key]


def _write_config(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_cert_and_key_build_configuration(tls_files: TLSFiles) -> None:
    """--cert and --key give a configuration with those files and every default."""
    configuration = _configuration(*_cert_args(tls_files))
    settings = configuration.settings
    assert settings.certificate == tls_files.server_cert
    assert settings.private_key == tls_files.server_key
    assert settings.ca == ()
    assert settings.verify is None
    assert settings.policy.ciphers == DEFAULT_CIPHERS
    assert settings.policy.min_tls is TLSVersion.TLSv1_2
    assert settings.policy.max_tls is TLSVersion.TLSv1_3
    assert configuration.development is None


def test_listen_defaults_to_loopback_8443(tls_files: TLSFiles) -> None:
    """Without --listen the server listens on tcp:8443:interface=127.0.0.1."""
    assert _configuration(*_cert_args(tls_files)).listen == (DEFAULT_LISTEN,)


def test_listen_is_repeatable_and_ordered(tls_files: TLSFiles) -> None:
    """Each --listen adds one description, in the order given."""
    configuration = _configuration(
        *_cert_args(tls_files),
        "--listen",
        LOOPBACK,
        "--listen",
        r"tcp6:0:interface=\:\:1",
        "--listen",
        "unix:/tmp/tlsecho-test.sock",
    )
    assert configuration.listen == (
        LOOPBACK,
        r"tcp6:0:interface=\:\:1",
        "unix:/tmp/tlsecho-test.sock",
    )


def test_ca_is_repeatable(tls_files: TLSFiles) -> None:
    """Each --ca adds one CA file, and all their certificates are trusted."""
    configuration = _configuration(
        *_cert_args(tls_files), "--ca", tls_files.client_ca, "--ca", tls_files.ca
    )
    assert configuration.settings.ca == (tls_files.client_ca, tls_files.ca)
    assert len(configuration.material.trusted) == 2


def test_policy_flags_are_typed(tls_files: TLSFiles) -> None:
    """--verify, --ciphers, --min-tls and --max-tls become typed settings."""
    settings = _configuration(
        *_cert_args(tls_files),
        "--ca",
        tls_files.client_ca,
        "--verify",
        "required",
        "--ciphers",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "--min-tls",
        "1.3",
        "--max-tls",
        "1.3",
    ).settings
    assert settings.verify is VerifyMode.REQUIRED
    assert settings.ciphers == "ECDHE-ECDSA-AES128-GCM-SHA256"
    assert settings.min_tls is TLSVersion.TLSv1_3
    assert settings.max_tls is TLSVersion.TLSv1_3


def test_verify_optional_with_ca(tls_files: TLSFiles) -> None:
    """--verify optional with --ca is accepted."""
    settings = _configuration(
        *_cert_args(tls_files), "--ca", tls_files.client_ca, "--verify", "optional"
    ).settings
    assert settings.verify is VerifyMode.OPTIONAL


def test_key_defaults_to_cert_file(tls_files: TLSFiles, tmp_path: Path) -> None:
    """With --cert alone, the key is read from the --cert file."""
    combined = tmp_path / "combined.pem"
    combined.write_bytes(
        tls_files.server_cert.read_bytes() + tls_files.server_key.read_bytes()
    )
    combined.chmod(0o600)  # private key material: owner only
    configuration = _configuration("--cert", combined)
    assert configuration.settings.certificate == combined
    assert configuration.material.key is not None


def test_non_loopback_listen_allowed_with_certificate(tls_files: TLSFiles) -> None:
    """With a real certificate, a listener on every interface is accepted."""
    configuration = _configuration(
        *_cert_args(tls_files), "--listen", "tcp:0:interface=0.0.0.0"
    )
    assert configuration.listen == ("tcp:0:interface=0.0.0.0",)


def test_development_default_without_cert(state_home: Path) -> None:
    """Without --cert the development certificate in the state directory is served."""
    configuration = _configuration()
    development = configuration.development
    assert development is not None
    assert development.certificate.parent == state_home / "tlsecho"
    assert configuration.settings.certificate == development.certificate
    assert configuration.settings.private_key == development.private_key
    assert configuration.listen == (DEFAULT_LISTEN,)


def test_development_default_allows_loopback_listens() -> None:
    """The development certificate may listen on IPv4 and IPv6 loopback and UNIX."""
    configuration = _configuration(
        "--listen",
        LOOPBACK,
        "--listen",
        r"tcp6:0:interface=\:\:1",
        "--listen",
        "unix:/tmp/tlsecho-test.sock",
    )
    assert configuration.development is not None
    assert len(configuration.listen) == 3


def test_unknown_verify_mode() -> None:
    """An unknown --verify value is a UsageError naming the option and the value."""
    assert _usage_error("--verify", "sometimes") == (
        "--verify: unknown verify mode 'sometimes' (expected none, optional or required)"
    )


def test_min_tls_above_max_tls(tls_files: TLSFiles) -> None:
    """--min-tls above --max-tls is a UsageError naming both."""
    assert _usage_error(*_cert_args(tls_files), "--min-tls", "1.3", "--max-tls", "1.2") == (
        "--min-tls: 1.3 is above --max-tls 1.2"
    )


def test_unknown_tls_version(tls_files: TLSFiles) -> None:
    """An unknown TLS version is a UsageError naming the option."""
    message = _usage_error(*_cert_args(tls_files), "--min-tls", "1.4")
    assert message.startswith("--min-tls: unknown TLS version '1.4'")


def test_legacy_tls_version_points_to_profile_old(tls_files: TLSFiles) -> None:
    """TLS 1.1 without --profile old is a UsageError pointing to --profile old."""
    message = _usage_error(*_cert_args(tls_files), "--min-tls", "1.1")
    assert message.endswith("use --profile old to test legacy peers")


@pytest.mark.parametrize("mode", ["required", "optional"])
def test_verify_without_ca(tls_files: TLSFiles, mode: str) -> None:
    """--verify required or optional without --ca is a UsageError saying --ca is needed."""
    message = _usage_error(*_cert_args(tls_files), "--verify", mode)
    assert message.startswith(f"--verify: {mode} needs --ca")


def test_missing_cert_file(tmp_path: Path) -> None:
    """A --cert file that does not exist is a UsageError naming the option and file."""
    missing = tmp_path / "nope.pem"
    assert _usage_error("--cert", missing) == f"--cert {missing}: no such file"


def test_missing_ca_file(tls_files: TLSFiles, tmp_path: Path) -> None:
    """A --ca file that does not exist is a UsageError naming it."""
    missing = tmp_path / "nope-ca.pem"
    message = _usage_error(*_cert_args(tls_files), "--ca", missing)
    assert message == f"--ca {missing}: no such file"


def test_key_without_cert(tls_files: TLSFiles) -> None:
    """--key without --cert is a UsageError."""
    message = _usage_error("--key", tls_files.server_key)
    assert message.startswith("--key")
    assert "needs --cert" in message


@pytest.mark.parametrize("description", ["ssl:8443", "tls:8443", "SSL:8443"])
def test_tls_listen_rejected(tls_files: TLSFiles, description: str) -> None:
    """A --listen that already asks for TLS is a UsageError saying tlsecho adds TLS."""
    message = _usage_error(*_cert_args(tls_files), "--listen", description)
    assert message.startswith(f"--listen: {description!r}: tlsecho adds TLS itself")


def test_bad_listen_description(tls_files: TLSFiles) -> None:
    """An unparseable --listen is a UsageError naming the description."""
    message = _usage_error(*_cert_args(tls_files), "--listen", "bogus:8443")
    assert message.startswith("--listen: bad endpoint description 'bogus:8443'")


def test_listen_port_out_of_range(tls_files: TLSFiles) -> None:
    """A --listen port above 65535 is a UsageError, not a failure when binding."""
    description = "tcp:65536:interface=127.0.0.1"
    message = _usage_error(*_cert_args(tls_files), "--listen", description)
    assert message.startswith(f"--listen: bad endpoint description {description!r}")


@pytest.mark.parametrize(
    "description",
    ["tcp:8443", "tcp:8443:interface=0.0.0.0", "tcp:8443:interface=192.0.2.1"],
)
def test_non_loopback_listen_with_development_default(description: str) -> None:
    """With the development certificate a non-loopback --listen is a UsageError."""
    message = _usage_error("--listen", description)
    assert message.startswith(f"--listen: {description!r} is not loopback-only")
    assert "--cert" in message


def test_unknown_flag() -> None:
    """An unknown flag is a UsageError."""
    with pytest.raises(usage.UsageError):
        _parse("--port", "8443")


def test_error_under_twistd_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Run by twistd (with a parent), a bad setting prints one line and exits 2."""
    options = Options()
    options.parent = usage.Options()
    with pytest.raises(SystemExit) as info:
        options.parseOptions(["--verify", "sometimes"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("tlsecho: --verify: unknown verify mode 'sometimes'")


def test_config_file_supplies_settings(tls_files: TLSFiles, tmp_path: Path) -> None:
    """Settings from a --config file are used when no flag gives them."""
    config = _write_config(
        tmp_path / "tlsecho.toml",
        f'listen = ["{LOOPBACK}"]\n'
        f'cert = "{tls_files.server_cert}"\n'
        f'key = "{tls_files.server_key}"\n'
        f'ca = ["{tls_files.client_ca}"]\n'
        'verify = "required"\n'
        'min_tls = "1.3"\n',
    )
    configuration = _configuration("--config", config)
    assert configuration.listen == (LOOPBACK,)
    assert configuration.settings.certificate == tls_files.server_cert
    assert configuration.settings.ca == (tls_files.client_ca,)
    assert configuration.settings.verify is VerifyMode.REQUIRED
    assert configuration.settings.min_tls is TLSVersion.TLSv1_3


def test_flags_override_config(tls_files: TLSFiles, tmp_path: Path) -> None:
    """A flag wins over the same key in the --config file; other keys still apply."""
    config = _write_config(
        tmp_path / "tlsecho.toml",
        f'listen = ["{LOOPBACK}"]\n'
        f'cert = "{tls_files.server_cert}"\n'
        f'key = "{tls_files.server_key}"\n'
        'verify = "optional"\n'
        f'ca = "{tls_files.client_ca}"\n'
        'max-tls = "1.2"\n',
    )
    configuration = _configuration(
        "--config",
        config,
        "--verify",
        "none",
        "--listen",
        "tcp:0:interface=localhost",
    )
    assert configuration.settings.verify is VerifyMode.NONE
    assert configuration.listen == ("tcp:0:interface=localhost",)
    assert configuration.settings.max_tls is TLSVersion.TLSv1_2
    assert configuration.settings.ca == (tls_files.client_ca,)


def test_config_relative_paths_resolve_against_its_directory(
    tls_files: TLSFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relative paths in --config are taken from the file's directory, not the cwd."""
    directory = tmp_path / "etc" / "tlsecho"
    directory.mkdir(parents=True)
    for source, name in [
        (tls_files.server_cert, "server.pem"),
        (tls_files.server_key, "server.key"),
        (tls_files.client_ca, "clients.pem"),
    ]:
        (directory / name).write_bytes(source.read_bytes())
        (directory / name).chmod(0o600)  # private key material: owner only
    config = _write_config(
        directory / "tlsecho.toml",
        'cert = "server.pem"\nkey = "server.key"\nca = ["clients.pem"]\n',
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = _configuration("--config", config).settings
    assert settings.certificate == directory / "server.pem"
    assert settings.private_key == directory / "server.key"
    assert settings.ca == (directory / "clients.pem",)


def test_config_unknown_key(tmp_path: Path) -> None:
    """An unknown key in --config is a UsageError naming --config, the file and the key."""
    config = _write_config(tmp_path / "tlsecho.toml", "port = 8443\n")
    message = _usage_error("--config", config)
    assert message.startswith(f"--config {config}: unknown key 'port'")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "cert = 5\n",
            'cert: expected a file name, not an integer (for example: cert = "server.pem")',
        ),
        (
            "verify = true\n",
            "verify: expected none, optional or required, not a boolean "
            '(for example: verify = "required")',
        ),
        (
            'min-tls = ["1.2"]\n',
            'min-tls: expected a TLS version, not an array (for example: min-tls = "1.2")',
        ),
        (
            "listen = 8443\n",
            "listen: expected an endpoint description, not an integer "
            '(for example: listen = "tcp:8443:interface=127.0.0.1")',
        ),
        (
            'ca = ["a.pem", 1]\n',
            'ca: expected a file name, not an integer (for example: ca = "server.pem")',
        ),
    ],
)
def test_config_wrong_types(tmp_path: Path, text: str, expected: str) -> None:
    """A --config value of the wrong type is a UsageError naming the file and key."""
    config = _write_config(tmp_path / "tlsecho.toml", text)
    assert _usage_error("--config", config) == f"--config {config}: {expected}"


def test_config_missing_file(tmp_path: Path) -> None:
    """A --config file that does not exist is a UsageError naming it."""
    missing = tmp_path / "missing.toml"
    assert _usage_error("--config", missing) == f"--config {missing}: no such file"


def test_config_invalid_toml(tmp_path: Path) -> None:
    """A --config file that is not TOML is a UsageError naming it."""
    config = _write_config(tmp_path / "tlsecho.toml", "cert = \n")
    assert _usage_error("--config", config).startswith(f"--config {config}: not valid TOML")


def test_config_error_in_value_names_option(tmp_path: Path) -> None:
    """A bad value read from --config is reported under the option it sets."""
    config = _write_config(tmp_path / "tlsecho.toml", 'verify = "sometimes"\n')
    assert _usage_error("--config", config).startswith(
        "--verify: unknown verify mode 'sometimes'"
    )


def test_make_service_has_one_child_per_listen(tls_files: TLSFiles) -> None:
    """makeService returns a MultiService with one named child per --listen."""
    options = _parse(
        *_cert_args(tls_files),
        "--listen",
        LOOPBACK,
        "--listen",
        "tcp:0:interface=localhost",
    )
    service = makeService(options)
    assert isinstance(service, MultiService)
    assert not service.running
    children = list(service)
    assert len(children) == 2
    assert [child.name for child in children] == [LOOPBACK, "tcp:0:interface=localhost"]


def test_make_service_default_listen(tls_files: TLSFiles) -> None:
    """Without --listen, makeService makes one child for the default listener."""
    service = makeService(_parse(*_cert_args(tls_files)))
    assert [child.name for child in service] == [DEFAULT_LISTEN]


def test_service_options_default(tls_files: TLSFiles) -> None:
    """Without flags or file, the service options take their documented defaults."""
    options = _parse(*_cert_args(tls_files))
    assert options["handshake-timeout"] == 10.0
    assert options["idle-timeout"] == 300.0
    assert options["max-connections"] == 10_000
    assert options["shutdown-timeout"] == 10.0
    assert options["reload-interval"] is None
    assert options["metrics"] is None
    assert options["log-format"] == "text"


def test_service_options_from_config_file_and_flags(
    tls_files: TLSFiles, tmp_path: Path
) -> None:
    """The TOML file sets service options too (native types), and flags override it."""
    config = _write_config(
        tmp_path / "tlsecho.toml",
        'idle-timeout = 60\nmax-connections = 500\nlog-format = "json"\n',
    )
    options = _parse(*_cert_args(tls_files), "--config", config, "--idle-timeout", "30")
    assert options["idle-timeout"] == 30.0
    assert options["max-connections"] == 500
    assert options["log-format"] == "json"


def test_bad_service_option_in_config_file(tls_files: TLSFiles, tmp_path: Path) -> None:
    """A bad value for a service option is an error naming the option."""
    config = _write_config(tmp_path / "tlsecho.toml", 'max-connections = "lots"\n')
    message = _usage_error(*_cert_args(tls_files), "--config", config)
    assert message == f"--config {config}: max-connections: not a whole number: 'lots'"


def test_switch_flag_is_true(tls_files: TLSFiles) -> None:
    """A switch given on the command line (--sni-strict) is on."""
    options = _parse(*_cert_args(tls_files), "--sni-strict")
    assert options["configuration"].settings.sni_strict is True
