"""
How option values are written and read, and what an option is.

L{ValueType} turns what a user wrote, a command-line string or a native TOML
value, into a typed value: one parser per type, so C{--idle-timeout 300} and
C{idle-timeout = 300} cannot disagree.  L{Option} is one row of the option
table (L{tlsecho._settings._options}).  This module imports neither Twisted nor OpenSSL.
"""

from __future__ import annotations

import enum
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ._errors import ConfigurationError

__all__ = ["Option", "Side", "ValueType", "parse_word"]

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)


def parse_word(kind: type[E], text: str, option: str, what: str) -> E:
    """
    The member of the string enum C{kind} that C{text} names (any case, spaces
    around ignored).

    @raise ConfigurationError: naming C{option}, listing the members, for
        anything else; C{what} names the kind of value (C{"verify mode"}).
    """
    try:
        return kind(text.strip().lower())
    except ValueError:
        expected = ", ".join(str(m.value) for m in kind)
        expected = " or ".join(expected.rsplit(", ", 1))
        raise ConfigurationError(
            option, f"unknown {what} {text!r} (expected {expected})"
        ) from None


class Side(enum.Flag):
    """
    Who uses an option: the server's TLS, the client's TLS, or the server's
    service (listeners, limits, logs).
    """

    SERVER = enum.auto()
    CLIENT = enum.auto()
    SERVICE = enum.auto()
    BOTH = SERVER | CLIENT


@dataclass(frozen=True)
class ValueType(Generic[T]):
    """
    How one kind of value is written and read.

    @ivar name: What the value is, for messages (C{"a number of seconds"}).
    @ivar metavar: The placeholder in C{--help} (C{SECONDS}).
    @ivar example: A TOML example for messages (C{idle-timeout = 300}).
    @ivar parse_text: Turns command-line text into the value.
    @ivar native: The TOML types accepted as they are (then C{check} applies).
    @ivar check: Validates (and may convert) a native value.
    """

    name: str
    metavar: str
    example: str
    parse_text: Callable[[str, str], T]
    native: tuple[type, ...] = ()
    check: Callable[[Any, str], T] | None = None

    def parse(self, value: object, option: str) -> T:
        """
        The typed value of C{value} (text from the command line, or a native
        TOML value) for C{option}.

        @raise ConfigurationError: naming C{option}, for a value that is not
            of this type.
        """
        if isinstance(value, str):
            return self.parse_text(value, option)
        # bool is an int to Python; a TOML true is never a number here.
        if isinstance(value, self.native) and not (
            isinstance(value, bool) and bool not in self.native
        ):
            check = self.check or (lambda v, _: v)
            return check(value, option)
        raise ConfigurationError(
            option,
            f"expected {self.name}, not {_toml_type(value)} (for example: "
            f"{option.removeprefix('--')} = {self.example})",
        )


def _toml_type(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a float", str: "a string"}
    for kind, name in names.items():
        if type(value) is kind:
            return name
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _number(text: str, option: str, what: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise ConfigurationError(option, f"not {what}: {text!r}") from None
    return number


def _positive_seconds(value: float, option: str) -> float:
    if math.isnan(value) or math.isinf(value) or value <= 0:
        raise ConfigurationError(option, f"must be above 0 seconds, not {value!r}")
    return float(value)


def _seconds_or_zero(value: float, option: str) -> float:
    if math.isnan(value) or math.isinf(value) or value < 0:
        raise ConfigurationError(option, f"must be 0 seconds or more, not {value!r}")
    return float(value)


def _count(value: int, option: str) -> int:
    if value < 1:
        raise ConfigurationError(option, f"must be at least 1, not {value!r}")
    return value


def _count_text(text: str, option: str) -> int:
    try:
        number = int(text.strip())
    except ValueError:
        raise ConfigurationError(option, f"not a whole number: {text!r}") from None
    return _count(number, option)


def _workers_text(text: str, option: str) -> int:
    if text.strip().lower() == "auto":
        return os.cpu_count() or 1
    return _count_text(text, option)


def _text(text: str, option: str) -> str:
    return text


def _switch_text(text: str, option: str) -> bool:
    words = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
    try:
        return words[text.strip().lower()]
    except KeyError:
        raise ConfigurationError(option, f"expected true or false, not {text!r}") from None


TEXT = ValueType[str]("a string", "TEXT", '"..."', _text)
#: Names separated by colons (TLS 1.3 suites, groups), checked by the policy.
NAMES = ValueType[str]("a colon-separated list", "LIST", '"X25519MLKEM768:X25519"', _text)
PATH = ValueType[str]("a file name", "FILE", '"server.pem"', _text)
ENDPOINT = ValueType[str](
    "an endpoint description", "DESC", '"tcp:8443:interface=127.0.0.1"', _text
)
SECONDS = ValueType[float](
    "a number of seconds",
    "SECONDS",
    "300",
    lambda text, option: _positive_seconds(
        _number(text, option, "a number of seconds"), option
    ),
    (int, float),
    _positive_seconds,
)
SECONDS_OR_ZERO = ValueType[float](
    "a number of seconds",
    "SECONDS",
    "10",
    lambda text, option: _seconds_or_zero(
        _number(text, option, "a number of seconds"), option
    ),
    (int, float),
    _seconds_or_zero,
)
COUNT = ValueType[int]("a whole number", "N", "10000", _count_text, (int,), _count)
WORKERS = ValueType[int](
    'a whole number or "auto"', "N|auto", "2", _workers_text, (int,), _count
)
SWITCH = ValueType[bool]("true or false", "", "true", _switch_text, (bool,))
#: Checked by tlsecho._net._proxy.trusted_sources.
PROXY_SOURCE = ValueType[str](
    "an IP network, an IP address or unix:", "CIDR", '["10.0.0.0/8"]', _text
)
# Checked where they become enums (VerifyMode.parse, Profile.parse,
# parse_tls_version), for every surface alike.
VERIFY = ValueType[str]("none, optional or required", "MODE", '"required"', _text)
PROFILE = ValueType[str]("intermediate, modern or old", "NAME", '"intermediate"', _text)
TLS_VERSION = ValueType[str](
    "a TLS version", "VERSION", '"1.2"', _text, (float,), lambda v, _: f"{v:.1f}"
)


def _choice(*choices: str) -> ValueType[str]:
    def parse(text: str, option: str) -> str:
        word = text.strip().lower()
        if word not in choices:
            raise ConfigurationError(
                option, f"expected {' or '.join(choices)}, not {text!r}"
            )
        return word

    return ValueType[str](" or ".join(choices), "|".join(choices), f'"{choices[0]}"', parse)


@dataclass(frozen=True)
class Option:
    """
    One setting, as every surface spells it.

    @ivar name: The flag without its dashes, and the TOML key (C{idle-timeout};
        TOML also takes C{idle_timeout}).
    @ivar type: How its value is written and read.
    @ivar help: One sentence for C{--help} and the docs.
    @ivar side: Who uses it.
    @ivar default: The typed default (L{None}: not set, the side's default).
    @ivar repeatable: Whether it may be given several times (a TOML array).
    @ivar field: The L{tlsecho.TLSSettings} or L{ServiceOptions} field it
        sets; by default the name with underscores.
    @ivar is_file: Whether the value names a file (resolved against the TOML
        file's directory, and re-read on reload).
    @ivar restart_only: Whether a reload cannot apply a change to it.
    @ivar client_help: The client's help, where it differs from the server's.
    """

    name: str
    type: ValueType[Any]
    help: str
    side: Side
    default: object = None
    repeatable: bool = False
    field: str = ""
    is_file: bool = False
    restart_only: bool = False
    client_help: str | None = None

    def __post_init__(self) -> None:
        if not self.field:
            object.__setattr__(self, "field", self.name.replace("-", "_"))

    @property
    def flag(self) -> str:
        """The command-line flag: C{--name}."""
        return f"--{self.name}"

    @property
    def is_switch(self) -> bool:
        """Whether it is an on/off flag that takes no value on the command line."""
        return self.type is SWITCH

    def help_for(self, side: Side) -> str:
        """The help text on C{side}'s command line."""
        if side is Side.CLIENT and self.client_help is not None:
            return self.client_help
        return self.help

    def parse(self, value: object) -> object:
        """
        The typed value of what a user gave: text or a native TOML value, or
        (if repeatable) a list of them, which becomes a tuple.

        @raise ConfigurationError: naming the flag, for a value of the wrong
            type or out of range.
        """
        if self.repeatable:
            values = value if isinstance(value, list | tuple) else [value]
            return tuple(self.type.parse(v, self.flag) for v in values)
        if isinstance(value, list | tuple):
            raise ConfigurationError(
                self.flag,
                f"expected {self.type.name}, not an array (for example: "
                f"{self.name} = {self.type.example})",
            )
        return self.type.parse(value, self.flag)
