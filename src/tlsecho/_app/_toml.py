"""
Read the server's TOML configuration file (C{--config}).

The file uses the command-line option names as keys (C{cert = "server.pem"},
C{listen = ["tcp:8443"]}, C{idle-timeout = 300}; C{idle_timeout} works too),
with TOML's own types: numbers, booleans, arrays, and C{[[sni]]} tables.  Each
value is checked by its row of the option table (L{tlsecho._settings._options}), the same
parser the command line uses.  Relative paths are taken relative to the file's
directory.
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path

from .._settings._errors import ConfigurationError, Surface
from .._settings._files import read_file
from .._settings._options import Option, Side, option_named, options_for

__all__ = ["load_config"]


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
                "each [[sni]] entry needs name and cert strings and may have key "
                '(write [[sni]] with name = "a.example" and cert = "a.pem", '
                "one table per name)",
                path,
            )
        files = _resolve(table["cert"], path.parent)
        if table.get("key"):
            files += ":" + _resolve(table["key"], path.parent)
        entries.append(f"{table['name']}={files}")
    return entries


def _server_option(key: str, path: Path) -> Option:
    """
    The server's row for TOML key C{key}.

    @raise ConfigurationError: for a key the server does not take, suggesting
        the nearest one.
    """
    names = [option.name for option in options_for(Side.SERVER)]
    try:
        option = option_named(key)
    except KeyError:
        option = None
    if option is None or option.name not in names:
        near = difflib.get_close_matches(key.replace("_", "-"), names, n=1)
        hint = f"did you mean {near[0]}?" if near else "see etc/tlsecho.toml for every key"
        raise ConfigurationError("--config", f"unknown key {key!r} ({hint})", path)
    return option


def load_config(path: Path) -> dict[str, object]:
    """
    Read C{path} and return its settings keyed by option name, each value
    parsed by its option's type (paths resolved against the file's directory).

    @raise ConfigurationError: naming C{--config} and the file, for a file that
        cannot be read, is not valid TOML, has an unknown key, or a value of
        the wrong type (naming the key, the type expected and an example).
    """
    data = read_file(path, "--config")
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigurationError("--config", f"not valid TOML: {e}", path) from None
    settings: dict[str, object] = {}
    for raw_key, value in document.items():
        option = _server_option(raw_key, path)
        key = option.name
        if key in settings:
            raise ConfigurationError(
                "--config", f"{raw_key} is given twice (as {key} and {raw_key})", path
            )
        if key == "sni":
            value = _sni_entries(value, path)
        try:
            parsed = option.parse(value)
        except ConfigurationError as e:
            reason = e.reason_for(Surface.TOML)
            reason = reason.replace(f"{option.name} = ", f"{raw_key} = ")
            raise ConfigurationError("--config", f"{raw_key}: {reason}", path) from None
        if option.is_file:
            parsed = (
                tuple(_resolve(v, path.parent) for v in parsed)  # type: ignore[attr-defined]
                if option.repeatable
                else _resolve(parsed, path.parent)  # type: ignore[arg-type]
            )
        settings[key] = parsed
    return settings
