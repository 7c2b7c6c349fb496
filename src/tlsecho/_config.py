"""
Read the server's TOML configuration file (C{--config}).

The file uses the command-line option names as keys (C{cert = "server.pem"},
C{listen = ["tcp:8443"]}, C{min-tls = "1.2"}; C{min_tls} works too).  Relative
paths are taken relative to the file's directory.  Values come back as the
strings a user would have typed on the command line, so that flags and file go
through the same validation.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from ._errors import ConfigurationError
from ._pem import read_file

__all__ = ["BOOLEAN_KEYS", "PATH_KEYS", "REPEATABLE_KEYS", "SCALAR_KEYS", "load_config"]

#: Keys whose value is a list (a single string is accepted as a list of one).
REPEATABLE_KEYS = frozenset(
    {
        "listen",
        "proxy-trusted",
        "ca",
        "allow-cn",
        "allow-dns",
        "allow-uri",
        "allow-spki",
        "alpn",
        "crl",
    }
)
#: Keys whose value is one string.
SCALAR_KEYS = frozenset(
    {
        "cert",
        "key",
        "key-passphrase-file",
        "verify",
        "profile",
        "ciphers",
        "min-tls",
        "max-tls",
        "ocsp-response",
        "keylog-file",
        "ticket-key-file",
        # The service's options (see tlsecho.tap.SERVICE_DEFAULTS).
        "handshake-timeout",
        "idle-timeout",
        "max-connections",
        "shutdown-timeout",
        "reload-interval",
        "metrics",
        "log-format",
        "workers",
    }
)
#: Keys whose value is true or false.
BOOLEAN_KEYS = frozenset({"sni-strict"})
#: Keys naming files, resolved relative to the configuration file.
PATH_KEYS = frozenset(
    {
        "cert",
        "key",
        "key-passphrase-file",
        "ca",
        "crl",
        "ocsp-response",
        "keylog-file",
        "ticket-key-file",
    }
)


def _resolve(value: str, base: Path) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else base / path)


def _sni_entries(value: object, path: Path) -> list[str]:
    """
    The C{[[sni]]} tables (C{name}, C{cert}, optional C{key}) as C{--sni} values.
    """
    if not isinstance(value, list):
        value = [value]
    entries = []
    for table in value:
        if isinstance(table, str):
            name, _, files = table.partition("=")
            cert, _, key = files.partition(":")
            table = {"name": name, "cert": cert, **({"key": key} if key else {})}
        if (
            not isinstance(table, dict)
            or not set(table) <= {"name", "cert", "key"}
            or not all(isinstance(table.get(k), str) for k in ("name", "cert"))
            or not isinstance(table.get("key", ""), str)
        ):
            raise ConfigurationError(
                "--config",
                "each [[sni]] entry needs name and cert strings (and may have key)",
                path,
            )
        files = _resolve(table["cert"], path.parent)
        if table.get("key"):
            files += ":" + _resolve(table["key"], path.parent)
        entries.append(f"{table['name']}={files}")
    return entries


def load_config(path: Path) -> dict[str, str | bool | list[str]]:
    """
    Read C{path} and return its settings keyed by option name.

    @raise ConfigurationError: naming C{--config} and the file, for a file that
        cannot be read, is not valid TOML, has an unknown key, or a value of
        the wrong type.
    """
    data = read_file(path, "--config")
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigurationError("--config", f"not valid TOML: {e}", path) from None
    settings: dict[str, str | bool | list[str]] = {}
    for raw_key, value in document.items():
        key = raw_key.replace("_", "-")
        if key in settings:
            raise ConfigurationError(
                "--config", f"{raw_key} is given twice (as {key} and {raw_key})", path
            )
        if key == "sni":
            settings[key] = _sni_entries(value, path)
        elif key in BOOLEAN_KEYS:
            if not isinstance(value, bool):
                raise ConfigurationError(
                    "--config", f"{raw_key} must be true or false", path
                )
            settings[key] = value
        elif key in REPEATABLE_KEYS:
            values = [value] if isinstance(value, str) else value
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise ConfigurationError(
                    "--config", f"{raw_key} must be a string or a list of strings", path
                )
            if key in PATH_KEYS:
                values = [_resolve(v, path.parent) for v in values]
            settings[key] = values
        elif key in SCALAR_KEYS:
            if not isinstance(value, str):
                raise ConfigurationError(
                    "--config",
                    f"{raw_key} must be a string, not {type(value).__name__}",
                    path,
                )
            settings[key] = _resolve(value, path.parent) if key in PATH_KEYS else value
        else:
            known = ", ".join(
                sorted(REPEATABLE_KEYS | SCALAR_KEYS | BOOLEAN_KEYS | {"sni"})
            )
            raise ConfigurationError(
                "--config", f"unknown key {raw_key!r} (known keys: {known})", path
            )
    return settings
