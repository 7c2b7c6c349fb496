"""
Tests for L{tlsecho._app._toml.load_config}: the C{--config} TOML file read with TOML's
own types, each value checked by its row of the option table, paths resolved against
the file's directory, and every problem a L{ConfigurationError} naming C{--config},
the file and the key.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tlsecho import ConfigurationError
from tlsecho._app._toml import load_config
from tlsecho._settings._options import OPTIONS, Side, options_for

#: The server's keys that take several values.
REPEATABLE_KEYS = sorted(o.name for o in options_for(Side.SERVER) if o.repeatable)


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
        "listen": (
            "tcp:8443:interface=127.0.0.1",
            r"tcp6:8443:interface=\:\:1",
            "unix:relative.sock",
        )
    }


@pytest.mark.parametrize("key", REPEATABLE_KEYS)
def test_repeatable_key_accepts_single_string(tmp_path: Path, key: str) -> None:
    """A single value for a repeatable key is a list of one."""
    text = "10.0.0.0/8" if key == "proxy-trusted" else "/abs/a.example=/abs/value"
    value = load_config(_config(tmp_path, f'{key} = "{text}"\n'))[key]
    assert value == (text,)


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
        "ca": (str(directory / "a.pem"), str(directory / "sub/b.pem")),
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
    assert load_config(path) == {"cert": "/etc/tls/server.pem", "ca": ("/etc/tls/ca.pem",)}


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
    assert load_config(path) == {"listen": ("unix:echo.sock",)}


def test_native_types_load(tmp_path: Path) -> None:
    """Numbers, booleans and arrays are taken as TOML writes them, typed by the table."""
    path = _config(
        tmp_path,
        "idle-timeout = 300\nhandshake-timeout = 2.5\nmax-connections = 500\n"
        'workers = 2\nsni-strict = true\nmin-tls = 1.3\nalpn = ["h2", "http/1.1"]\n'
        'log-format = "json"\n',
    )
    assert load_config(path) == {
        "idle-timeout": 300.0,
        "handshake-timeout": 2.5,
        "max-connections": 500,
        "workers": 2,
        "sni-strict": True,
        "min-tls": "1.3",
        "alpn": ("h2", "http/1.1"),
        "log-format": "json",
    }


def test_strings_still_load_for_numbers(tmp_path: Path) -> None:
    """A number written as a string, as older files did, means the same number."""
    path = _config(tmp_path, 'idle-timeout = "300"\nworkers = "auto"\n')
    loaded = load_config(path)
    assert loaded["idle-timeout"] == 300.0
    assert isinstance(loaded["workers"], int)


def test_file_keys_are_the_server_options() -> None:
    """The configuration file knows exactly the server's rows of the option table."""
    server = {o.name for o in OPTIONS if o.side & (Side.SERVER | Side.SERVICE)}
    assert server == {o.name for o in options_for(Side.SERVER)}
    assert "pin-spki" not in server


def test_unknown_key_names_config_file_and_key(tmp_path: Path) -> None:
    """An unknown key is an error naming --config, the file, the key and the known keys."""
    path = _config(tmp_path, 'cert = "x.pem"\nport = 8443\n')
    error = _error(path)
    assert error.option == "--config"
    assert error.path == path
    assert str(error).startswith(f"--config {path}: unknown key 'port'")


def test_unknown_key_suggests_the_nearest(tmp_path: Path) -> None:
    """A misspelt key gets the nearest known key as a suggestion."""
    path = _config(tmp_path, "idle-timout = 300\n")
    assert str(_error(path)) == (
        f"--config {path}: unknown key 'idle-timout' (did you mean idle-timeout?)"
    )


def test_client_key_is_unknown_to_the_server(tmp_path: Path) -> None:
    """A client-only option is not a server key."""
    path = _config(tmp_path, 'pin-spki = ["x"]\n')
    assert "unknown key 'pin-spki'" in str(_error(path))


def test_table_is_unknown_key(tmp_path: Path) -> None:
    """A TOML table is an unknown key, not silently ignored."""
    path = _config(tmp_path, '[server]\ncert = "x.pem"\n')
    assert "unknown key 'server'" in str(_error(path))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            "cert = 5\n",
            'cert: expected a file name, not an integer (for example: cert = "server.pem")',
        ),
        (
            "key = 1.5\n",
            'key: expected a file name, not a float (for example: key = "server.pem")',
        ),
        ("verify = false\n", "verify: expected none, optional or required, not a boolean"),
        ('ciphers = ["A", "B"]\n', "ciphers: expected a string, not an array"),
        (
            "idle_timeout = true\n",
            "idle_timeout: expected a number of seconds, not a boolean "
            "(for example: idle_timeout = 300)",
        ),
        ('idle-timeout = "soon"\n', "idle-timeout: not a number of seconds: 'soon'"),
        (
            "max-connections = 2.5\n",
            "max-connections: expected a whole number, not a float "
            "(for example: max-connections = 10000)",
        ),
        ("max-connections = 0\n", "max-connections: must be at least 1, not 0"),
        ("listen = 8443\n", "listen: expected an endpoint description, not an integer"),
        (
            'listen = ["tcp:8443", 8444]\n',
            "listen: expected an endpoint description, not an integer",
        ),
        ("ca = [[]]\n", "ca: expected a file name, not an array"),
        (
            'sni-strict = "yes please"\n',
            "sni-strict: expected true or false, not 'yes please'",
        ),
    ],
)
def test_wrong_type_names_file_and_key(tmp_path: Path, text: str, reason: str) -> None:
    """A value of the wrong type is one line naming --config, the file, the key,
    the type expected and an example."""
    path = _config(tmp_path, text)
    message = str(_error(path))
    assert message.startswith(f"--config {path}: {reason}")
    assert "\n" not in message


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
