"""
Tests for L{tlsecho._config.load_config}: the C{--config} TOML file read into the
strings a user would have typed as flags, paths resolved against the file's directory,
and every problem a L{ConfigurationError} naming C{--config} and the file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tlsecho import ConfigurationError
from tlsecho._config import (
    BOOLEAN_KEYS,
    PATH_KEYS,
    REPEATABLE_KEYS,
    SCALAR_KEYS,
    load_config,
)
from tlsecho._configuration import SETTINGS_OPTIONS
from tlsecho.tap import SERVICE_DEFAULTS


def _config(directory: Path, text: str | bytes, name: str = "tlsecho.toml") -> Path:
    """Write C{text} to a configuration file in C{directory}."""
    path = directory / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def _error(path: Path) -> ConfigurationError:
    """The ConfigurationError loading C{path} raises."""
    with pytest.raises(ConfigurationError) as info:
        load_config(path)
    return info.value


def test_empty_file_is_no_settings(tmp_path: Path) -> None:
    """An empty file gives no settings."""
    assert load_config(_config(tmp_path, "")) == {}


def test_scalar_keys_come_back_as_strings(tmp_path: Path) -> None:
    """Non-path scalar keys come back exactly as written."""
    path = _config(
        tmp_path,
        'verify = "required"\nciphers = "ECDHE-RSA-AES128-GCM-SHA256"\n'
        'min-tls = "1.2"\nmax-tls = "1.3"\n',
    )
    assert load_config(path) == {
        "verify": "required",
        "ciphers": "ECDHE-RSA-AES128-GCM-SHA256",
        "min-tls": "1.2",
        "max-tls": "1.3",
    }


def test_underscore_spelling_is_accepted(tmp_path: Path) -> None:
    """min_tls, max_tls and key_passphrase_file mean the hyphenated options."""
    path = _config(
        tmp_path,
        'min_tls = "1.3"\nmax_tls = "1.3"\nkey_passphrase_file = "/etc/pass"\n',
    )
    assert load_config(path) == {
        "min-tls": "1.3",
        "max-tls": "1.3",
        "key-passphrase-file": "/etc/pass",
    }


def test_listen_list_kept_in_order(tmp_path: Path) -> None:
    """listen is a list of endpoint descriptions, kept as written and in order."""
    path = _config(
        tmp_path,
        'listen = ["tcp:8443:interface=127.0.0.1", "tcp6:8443:interface=\\\\:\\\\:1",'
        ' "unix:relative.sock"]\n',
    )
    assert load_config(path) == {
        "listen": [
            "tcp:8443:interface=127.0.0.1",
            r"tcp6:8443:interface=\:\:1",
            "unix:relative.sock",
        ]
    }


@pytest.mark.parametrize("key", sorted(REPEATABLE_KEYS))
def test_repeatable_key_accepts_single_string(tmp_path: Path, key: str) -> None:
    """A single string for a repeatable key is a list of one."""
    value = load_config(_config(tmp_path, f'{key} = "/abs/value"\n'))[key]
    assert value == ["/abs/value"]


def test_relative_paths_resolve_against_file_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relative cert, key, passphrase and CA paths are joined to the file's directory."""
    directory = tmp_path / "conf"
    directory.mkdir()
    monkeypatch.chdir(tmp_path)
    path = _config(
        directory,
        'cert = "server.pem"\nkey = "keys/server.key"\n'
        'key-passphrase-file = "../secret/pass"\nca = ["a.pem", "sub/b.pem"]\n',
    )
    assert load_config(path) == {
        "cert": str(directory / "server.pem"),
        "key": str(directory / "keys/server.key"),
        "key-passphrase-file": str(directory / "../secret/pass"),
        "ca": [str(directory / "a.pem"), str(directory / "sub/b.pem")],
    }


def test_relative_config_path_gives_relative_base(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a relative --config path, paths are still relative to the file's directory."""
    (tmp_path / "conf").mkdir()
    _config(tmp_path / "conf", 'cert = "server.pem"\n')
    monkeypatch.chdir(tmp_path)
    settings = load_config(Path("conf/tlsecho.toml"))
    assert Path(str(settings["cert"])).resolve() == tmp_path / "conf" / "server.pem"


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    """Absolute paths are not changed."""
    path = _config(tmp_path, 'cert = "/etc/tls/server.pem"\nca = "/etc/tls/ca.pem"\n')
    assert load_config(path) == {"cert": "/etc/tls/server.pem", "ca": ["/etc/tls/ca.pem"]}


def test_home_directory_is_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A path starting with ~ is taken from the home directory."""
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    path = _config(tmp_path, 'cert = "~/tls/server.pem"\n')
    assert load_config(path) == {"cert": str(home / "tls" / "server.pem")}


def test_listen_is_not_treated_as_path(tmp_path: Path) -> None:
    """Endpoint descriptions are not resolved as paths."""
    path = _config(tmp_path, 'listen = "unix:echo.sock"\n')
    assert load_config(path) == {"listen": ["unix:echo.sock"]}


def test_path_keys_are_a_subset_of_known_keys() -> None:
    """Every path key is a known key, and no key is both scalar and repeatable."""
    assert PATH_KEYS <= REPEATABLE_KEYS | SCALAR_KEYS
    assert not REPEATABLE_KEYS & SCALAR_KEYS
    assert {
        "listen",
        "proxy-trusted",
        "ca",
        "allow-cn",
        "allow-dns",
        "allow-uri",
        "allow-spki",
        "alpn",
        "crl",
    } == REPEATABLE_KEYS


def test_file_keys_are_the_server_options() -> None:
    """The configuration file knows exactly the server's options (but --config)."""
    file_keys = REPEATABLE_KEYS | SCALAR_KEYS | BOOLEAN_KEYS | {"sni"}
    assert file_keys == set(SETTINGS_OPTIONS) | set(SERVICE_DEFAULTS) | {
        "listen",
        "proxy-trusted",
    }


def test_unknown_key_names_config_file_and_key(tmp_path: Path) -> None:
    """An unknown key is an error naming --config, the file, the key and the known keys."""
    path = _config(tmp_path, 'cert = "x.pem"\nport = 8443\n')
    error = _error(path)
    assert error.option == "--config"
    assert error.path == path
    assert str(error).startswith(f"--config {path}: unknown key 'port'")
    assert "known keys: allow-cn, allow-dns, allow-spki, allow-uri, alpn, ca, cert," in str(
        error
    )


def test_table_is_unknown_key(tmp_path: Path) -> None:
    """A TOML table is an unknown key, not silently ignored."""
    path = _config(tmp_path, '[server]\ncert = "x.pem"\n')
    assert "unknown key 'server'" in str(_error(path))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("cert = 5\n", "cert must be a string, not int"),
        ("key = 1.5\n", "key must be a string, not float"),
        ("verify = false\n", "verify must be a string, not bool"),
        ('ciphers = ["A", "B"]\n', "ciphers must be a string, not list"),
        ("min_tls = 1.2\n", "min_tls must be a string, not float"),
        ("listen = 8443\n", "listen must be a string or a list of strings"),
        ('listen = ["tcp:8443", 8444]\n', "listen must be a string or a list of strings"),
        ("ca = [[]]\n", "ca must be a string or a list of strings"),
    ],
)
def test_wrong_type_names_file_and_key(tmp_path: Path, text: str, reason: str) -> None:
    """A value of the wrong type is an error naming --config, the file and the key."""
    path = _config(tmp_path, text)
    assert str(_error(path)) == f"--config {path}: {reason}"


def test_invalid_toml(tmp_path: Path) -> None:
    """A file that is not TOML is an error naming --config and the file."""
    path = _config(tmp_path, "cert = server.pem\n")
    error = _error(path)
    assert str(error).startswith(f"--config {path}: not valid TOML")
    assert "\n" not in str(error)


def test_not_utf8(tmp_path: Path) -> None:
    """A file that is not UTF-8 is reported as not valid TOML."""
    path = _config(tmp_path, b'cert = "\xff\xfe"\n')
    assert str(_error(path)).startswith(f"--config {path}: not valid TOML")


def test_missing_file(tmp_path: Path) -> None:
    """A file that does not exist is an error naming --config and the file."""
    path = tmp_path / "missing.toml"
    assert str(_error(path)) == f"--config {path}: no such file"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    """A directory given as the file is an error saying so."""
    assert str(_error(tmp_path)) == f"--config {tmp_path}: is a directory, not a file"


def test_error_is_value_error(tmp_path: Path) -> None:
    """Configuration errors are ValueErrors, as the style guide asks."""
    with pytest.raises(ValueError, match="unknown key"):
        load_config(_config(tmp_path, "bogus = 1\n"))
