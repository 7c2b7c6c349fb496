"""
Tests for L{tlsecho._settings._options}: the option table every surface derives from.

Each row must appear on every surface that takes it (the server's C{--help}, the
client's C{--help}, C{etc/tlsecho.toml}, docs/configuration.md's tables), so the
documentation cannot drift from the code; and one parser per value type gives
the same typed value for a command-line string and a native TOML value.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tlsecho import ConfigurationError
from tlsecho._settings._errors import Surface
from tlsecho._settings._options import (
    OPTIONS,
    Option,
    Side,
    option_named,
    options_for,
)
from tlsecho._settings._service_options import ServiceOptions
from tlsecho.client import build_parser
from tlsecho.tap import Options

ROOT = Path(__file__).resolve().parent.parent
SERVER = options_for(Side.SERVER)
CLIENT = options_for(Side.CLIENT)


def _ids(options: tuple[Option, ...]) -> list[str]:
    return [option.name for option in options]


def _section(text: str, heading: str) -> str:
    """The text of the Markdown section C{heading} (C{## heading}), up to the next one."""
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_names_are_unique_and_spelt_as_flags() -> None:
    """Every row has its own name, in lower case with dashes."""
    names = [option.name for option in OPTIONS]
    assert len(names) == len(set(names))
    for name in names:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name), name


@pytest.mark.parametrize("option", SERVER, ids=_ids(SERVER))
def test_server_help_lists_every_server_option(option: Option) -> None:
    """twistd tlsecho --help lists each server row with its help text."""
    text = " ".join(str(Options()).split())
    assert option.flag in text
    assert " ".join(option.help.split())[:40] in text


@pytest.mark.parametrize("option", CLIENT, ids=_ids(CLIENT))
def test_client_help_lists_every_client_option(option: Option) -> None:
    """tlsecho client --help lists each client row."""
    assert option.flag in build_parser().format_help()


@pytest.mark.parametrize("option", SERVER, ids=_ids(SERVER))
def test_example_toml_shows_every_server_key(option: Option) -> None:
    """etc/tlsecho.toml sets or shows (commented) every key the server takes."""
    text = (ROOT / "etc" / "tlsecho.toml").read_text()
    key = "[[sni]]" if option.name == "sni" else f"{option.name} ="
    assert key in text


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _flag(option: Option) -> str:
    return (
        f"`{option.flag}`" if option.is_switch else f"`{option.flag} {option.type.metavar}`"
    )


def server_row(option: Option) -> str:
    """The row of docs/configuration.md's server table for C{option}."""
    if option.name == "sni":
        key = "`[[sni]]` tables: `name`, `cert`, `key`"
    else:
        key = f"`{option.name}`" + (" (array)" if option.repeatable else "")
    meaning = _cell(option.help) + (" Repeatable." if option.repeatable else "")
    applied = "restart" if option.restart_only else "reload"
    return f"| {_flag(option)} | {key} | {meaning} | {applied} |"


def client_row(option: Option) -> str:
    """The row of docs/configuration.md's client table for C{option}."""
    meaning = _cell(option.help_for(Side.CLIENT))
    return (
        f"| {_flag(option)} | {meaning}"
        + (" (repeatable)" if option.repeatable else "")
        + " |"
    )


def reference_table(side: Side) -> str:
    """docs/configuration.md's option table for C{side}, made from the option table."""
    if side is Side.SERVER:
        head = (
            "| flag | TOML key | meaning [default] | a change needs |\n|---|---|---|---|\n"
        )
        return head + "".join(server_row(o) + "\n" for o in SERVER)
    head = "| flag | meaning [default] |\n|---|---|\n"
    return head + "".join(client_row(o) + "\n" for o in CLIENT)


CONFIGURATION = ROOT / "docs" / "configuration.md"


@pytest.mark.parametrize("option", SERVER, ids=_ids(SERVER))
def test_reference_has_each_server_row(option: Option) -> None:
    """docs/configuration.md's server section has the row of each server option."""
    section = _section(CONFIGURATION.read_text(), "Server options")
    assert f"\n{server_row(option)}\n" in section


@pytest.mark.parametrize("option", CLIENT, ids=_ids(CLIENT))
def test_reference_has_each_client_row(option: Option) -> None:
    """docs/configuration.md's client section has the row of each client option."""
    section = _section(CONFIGURATION.read_text(), "Client options")
    assert f"\n{client_row(option)}\n" in section


@pytest.mark.parametrize("side", [Side.SERVER, Side.CLIENT], ids=["server", "client"])
def test_reference_tables_are_the_option_table(side: Side) -> None:
    """
    Each reference table is exactly the one made from the option table: no row
    missing, added, reordered or reworded.  To update the docs, paste:
    C{python -c 'import sys; sys.path[:0] = ["tests", "src"]; import test_options as t;
    from tlsecho._settings._options import Side; print(t.reference_table(Side.SERVER))'}.
    """
    heading = "Server options" if side is Side.SERVER else "Client options"
    section = _section(CONFIGURATION.read_text(), heading)
    expected = reference_table(side)
    assert expected in section, f"docs/configuration.md, {heading}:\n{expected}"


def test_client_parser_has_no_server_only_option() -> None:
    """Server-only rows (allow rules, SNI, tickets, service) are not client flags."""
    text = build_parser().format_help()
    for option in OPTIONS:
        if not option.side & Side.CLIENT:
            assert f"{option.flag} " not in text, option.flag


def test_service_defaults_are_the_rows_defaults() -> None:
    """Each ServiceOptions default is written once, in its row."""
    defaults = ServiceOptions()
    for option in OPTIONS:
        if option.side is Side.SERVICE:
            assert getattr(defaults, option.field) == option.default, option.name


@pytest.mark.parametrize(
    ("name", "text", "native", "expected"),
    [
        ("idle-timeout", "300", 300, 300.0),
        ("handshake-timeout", "2.5", 2.5, 2.5),
        ("shutdown-timeout", "0", 0, 0.0),
        ("max-connections", "500", 500, 500),
        ("workers", "2", 2, 2),
        ("sni-strict", "true", True, True),
        ("min-tls", "1.3", 1.3, "1.3"),
        ("alpn", "h2", ["h2"], ("h2",)),
    ],
)
def test_text_and_native_values_agree(
    name: str, text: str, native: object, expected: object
) -> None:
    """A command-line string and the TOML native value mean the same typed value."""
    option = option_named(name)
    assert option.parse(text) == expected
    assert option.parse(native) == expected


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("idle-timeout", "0", "--idle-timeout: must be above 0 seconds, not 0.0"),
        ("idle-timeout", "nan", "--idle-timeout: must be above 0 seconds, not nan"),
        ("shutdown-timeout", -1, "--shutdown-timeout: must be 0 seconds or more, not -1"),
        ("max-connections", "1.5", "--max-connections: not a whole number: '1.5'"),
        ("workers", True, '--workers: expected a whole number or "auto", not a boolean'),
        ("log-format", "xml", "--log-format: expected text or json, not 'xml'"),
        ("cert", ["a", "b"], "--cert: expected a file name, not an array"),
    ],
)
def test_bad_values_are_one_line_naming_the_flag(
    name: str, value: object, message: str
) -> None:
    """A value of the wrong type or range is one line naming the flag and the reason."""
    with pytest.raises(ConfigurationError) as info:
        option_named(name).parse(value)
    line = info.value.for_surface(Surface.COMMAND_LINE)
    assert line.startswith(message)
    assert "\n" not in line


def test_workers_auto_is_one_per_cpu() -> None:
    """--workers auto is a whole number of at least one."""
    workers = option_named("workers").parse("auto")
    assert isinstance(workers, int)
    assert workers >= 1


def test_restart_only_changes_are_named() -> None:
    """Only changes to restart-only rows are reported, by flag."""
    running = ServiceOptions()
    new = ServiceOptions(workers=3, idle_timeout=5.0, log_format="json")
    assert running.restart_only_changes(new) == [
        "--idle-timeout",
        "--log-format",
        "--workers",
    ]
    assert running.restart_only_changes(running) == []


def test_restart_only_rows() -> None:
    """Every service option needs a restart (a reload swaps the TLS configuration
    only); no TLS setting does."""
    assert {o.name for o in OPTIONS if o.restart_only} == {
        o.name for o in OPTIONS if o.side is Side.SERVICE
    }


def test_unknown_name() -> None:
    """option_named raises KeyError for a name no row has."""
    with pytest.raises(KeyError):
        option_named("no-such-option")
