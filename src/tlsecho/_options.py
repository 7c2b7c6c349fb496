"""
The option table: every command-line flag and TOML key of tlsecho, declared once.

Each L{Option} row names a setting, its value type, its default, whether it may
be given several times, which side uses it (server, client or both, as TLS
settings; or the server's service) and its help text.  The server's
C{usage.Options}, the client's C{argparse} parser, the TOML schema, the
construction of L{tlsecho.TLSSettings} and L{ServiceOptions}, and the reference
tables in the docs are all derived from L{OPTIONS}; a test checks that every
surface lists every row.

One parser per value type turns what a user wrote, a command-line string or a
native TOML value, into a typed value, so C{--idle-timeout 300} and
C{idle-timeout = 300} cannot disagree.  This module imports neither Twisted nor
OpenSSL.
"""

from __future__ import annotations

import enum
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ._errors import ConfigurationError

__all__ = [
    "OPTIONS",
    "Option",
    "ServiceOptions",
    "Side",
    "option_named",
    "options_for",
]

T = TypeVar("T")


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
#: Checked by tlsecho._proxy.trusted_sources.
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


_S, _C, _B, _SVC = Side.SERVER, Side.CLIENT, Side.BOTH, Side.SERVICE

#: Every option of tlsecho, in the order of C{--help}.
OPTIONS: tuple[Option, ...] = (
    # The TLS settings (TLSSettings fields).
    Option(
        "cert",
        PATH,
        "PEM file: the certificate, then its intermediates, in order.",
        _B,
        field="certificate",
        is_file=True,
        client_help="client certificate for mutual TLS (PEM, leaf first)",
    ),
    Option(
        "key",
        PATH,
        "PEM private key file [the --cert file].",
        _B,
        field="private_key",
        is_file=True,
    ),
    Option(
        "key-passphrase-file",
        PATH,
        "File holding the passphrase of an encrypted --key (never give it on argv).",
        _B,
        is_file=True,
    ),
    Option(
        "ca",
        PATH,
        "PEM file of CA certificates that client certificates must chain to.",
        _B,
        repeatable=True,
        is_file=True,
        client_help="trust roots; default: the platform's trust store, plus the "
        "development CA for loopback hosts",
    ),
    Option(
        "verify",
        VERIFY,
        "Client certificates: none, optional or required [none].",
        _B,
        client_help="required, or none (insecure) [required]",
    ),
    Option(
        "profile",
        PROFILE,
        "TLS policy after Mozilla's guidelines: intermediate (TLS 1.2+1.3), "
        "modern (TLS 1.3 only), or old (TLS 1.0-1.3 and legacy ciphers, for "
        "testing legacy peers; warned about) [intermediate].",
        _B,
    ),
    Option(
        "ciphers",
        TEXT,
        "OpenSSL cipher string narrowing the profile's TLS 1.2 ciphers.",
        _B,
    ),
    Option(
        "tls13-ciphers",
        NAMES,
        "TLS 1.3 suites narrowing the profile's TLS_AES_128_GCM_SHA256:"
        "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256, in order of "
        "preference.",
        _B,
    ),
    Option(
        "groups",
        NAMES,
        "Key exchange groups narrowing the profile's X25519MLKEM768:X25519:"
        "prime256v1:secp384r1 (less any the linked OpenSSL lacks), in order of "
        "preference.",
        _B,
    ),
    Option(
        "min-tls",
        TLS_VERSION,
        "Lowest TLS version: 1.2 or 1.3 (1.0, 1.1 with --profile old) [from the profile].",
        _B,
    ),
    Option("max-tls", TLS_VERSION, "Highest TLS version: 1.2 or 1.3 [1.3].", _B),
    Option(
        "allow-cn",
        TEXT,
        "Authorize client certificates with this subject common name.",
        _S,
        repeatable=True,
    ),
    Option(
        "allow-dns",
        TEXT,
        "Authorize client certificates with this DNS subject alt name.",
        _S,
        repeatable=True,
    ),
    Option(
        "allow-uri",
        TEXT,
        "Authorize client certificates with this URI subject alt name (a SPIFFE ID).",
        _S,
        repeatable=True,
    ),
    Option(
        "allow-spki",
        TEXT,
        "Authorize client certificates whose SHA-256 SPKI pin is this (base64 or hex).",
        _S,
        repeatable=True,
    ),
    Option(
        "pin-spki",
        TEXT,
        "The server key's SHA-256 SPKI pin (base64 or hex): checked on top of the "
        "chain, or instead of it with --verify none.",
        _C,
        repeatable=True,
    ),
    Option(
        "sni",
        TEXT,
        "NAME=CERT[:KEY]: serve CERT to clients asking for NAME (exact or *.domain).",
        _S,
        repeatable=True,
    ),
    Option(
        "sni-strict",
        SWITCH,
        "Refuse SNI names no certificate is for (unrecognized_name).",
        _S,
        default=False,
    ),
    Option(
        "alpn",
        TEXT,
        "Application protocol to offer with ALPN, most preferred first.",
        _B,
        repeatable=True,
    ),
    Option(
        "crl",
        PATH,
        "Certificate revocation list (PEM or DER) checked for client certificates.",
        _B,
        repeatable=True,
        is_file=True,
        client_help="certificate revocation list (PEM or DER) for the server's chain",
    ),
    Option(
        "ocsp-response",
        PATH,
        "DER OCSP response for --cert, stapled when a client asks.",
        _S,
        is_file=True,
    ),
    Option(
        "require-ocsp-staple",
        SWITCH,
        "Fail unless the server staples a good OCSP response for its certificate.",
        _C,
        default=False,
    ),
    Option(
        "keylog-file",
        PATH,
        "Append TLS secrets (NSS key log format) to this file. Debugging only.",
        _B,
        client_help="append TLS secrets to FILE for Wireshark [$SSLKEYLOGFILE]",
    ),
    Option(
        "ticket-key-file",
        PATH,
        "80 bytes ('openssl rand 80') of session-ticket keys, shared by the "
        "processes that should resume each other's TLS sessions [per process].",
        _S,
        is_file=True,
    ),
    # The service (ServiceOptions fields).
    Option(
        "listen",
        ENDPOINT,
        "Server endpoint description to listen on, without TLS "
        "[tcp:8443:interface=127.0.0.1].",
        _SVC,
        default=("tcp:8443:interface=127.0.0.1",),
        repeatable=True,
        restart_only=True,
    ),
    Option(
        "proxy-trusted",
        PROXY_SOURCE,
        "On haproxy: listeners, accept PROXY headers only from peers in this IP "
        "network (CIDR, e.g. 10.0.0.0/8), at this address, or on UNIX sockets "
        "(unix:); connections from elsewhere are closed before TLS, logged and "
        "counted [127.0.0.0/8, ::1, unix:].",
        _SVC,
        default=(),
        repeatable=True,
        restart_only=True,
    ),
    Option(
        "handshake-timeout",
        SECONDS,
        "Drop a peer that has not completed the TLS handshake in SECONDS [10].",
        _SVC,
        default=10.0,
    ),
    Option(
        "idle-timeout",
        SECONDS,
        "Close a connection that has received nothing for SECONDS [300].",
        _SVC,
        default=300.0,
    ),
    Option(
        "max-connections",
        COUNT,
        "Above this many open connections, close new ones at once (logged, "
        "counted) [10000].",
        _SVC,
        default=10_000,
    ),
    Option(
        "shutdown-timeout",
        SECONDS_OR_ZERO,
        "On SIGTERM, stop accepting and let open connections finish for up to "
        "SECONDS before closing them [10].",
        _SVC,
        default=10.0,
    ),
    Option(
        "reload-interval",
        SECONDS,
        "Reload the TLS configuration when its files change, checking every "
        "SECONDS (SIGHUP always reloads).",
        _SVC,
    ),
    Option(
        "metrics",
        ENDPOINT,
        "Serve Prometheus metrics (plain HTTP, /metrics) on this endpoint, "
        "e.g. tcp:9100:interface=127.0.0.1.",
        _SVC,
        restart_only=True,
    ),
    Option(
        "log-format",
        _choice("text", "json"),
        "text, or json: one JSON object per line, with each connection's fields [text].",
        _SVC,
        default="text",
        restart_only=True,
    ),
    Option(
        "workers",
        WORKERS,
        "Serve from N worker processes sharing the listening sockets (auto: one "
        "per CPU); the main process restarts any that dies and passes SIGHUP and "
        "SIGTERM on [1].",
        _SVC,
        default=1,
        restart_only=True,
    ),
)


def option_named(name: str) -> Option:
    """
    The row for C{name} (a flag without dashes, or a TOML key with either
    spelling).

    @raise KeyError: if there is none.
    """
    wanted = name.replace("_", "-")
    for option in OPTIONS:
        if option.name == wanted:
            return option
    raise KeyError(name)


def options_for(side: Side) -> tuple[Option, ...]:
    """
    The rows C{side} takes, in table order (C{Side.SERVER} includes the service).
    """
    if side is Side.SERVER:
        return tuple(o for o in OPTIONS if o.side & (Side.SERVER | Side.SERVICE))
    return tuple(o for o in OPTIONS if o.side & side)


def _default(name: str) -> Any:
    return option_named(name).default


@dataclass(frozen=True)
class ServiceOptions:
    """
    The server's service settings, typed and validated once; each default is
    its option's row.

    @ivar listen: Endpoint descriptions to listen on (without TLS).
    @ivar proxy_trusted: Who may send PROXY headers (empty: loopback and
        UNIX sockets; see L{tlsecho._proxy.trusted_sources}).
    @ivar handshake_timeout: Seconds a peer has to complete its handshake.
    @ivar idle_timeout: Seconds without receiving before a connection closes.
    @ivar max_connections: Open connections above which new ones are refused.
    @ivar shutdown_timeout: Seconds SIGTERM lets connections drain.
    @ivar reload_interval: Seconds between checks of the files; L{None}: never.
    @ivar metrics: Where to serve Prometheus metrics; L{None}: nowhere.
    @ivar log_format: C{"text"} or C{"json"}.
    @ivar workers: How many worker processes serve (1: this process).
    """

    listen: tuple[str, ...] = _default("listen")
    proxy_trusted: tuple[str, ...] = _default("proxy-trusted")
    handshake_timeout: float = _default("handshake-timeout")
    idle_timeout: float = _default("idle-timeout")
    max_connections: int = _default("max-connections")
    shutdown_timeout: float = _default("shutdown-timeout")
    reload_interval: float | None = _default("reload-interval")
    metrics: str | None = _default("metrics")
    log_format: str = _default("log-format")
    workers: int = _default("workers")

    @classmethod
    def from_values(cls, values: Mapping[str, object]) -> ServiceOptions:
        """
        The service options among C{values} (keyed by option name, as given:
        text or native), each parsed by its row; the rest keep their defaults.

        @raise ConfigurationError: for a value of the wrong type or range.
        """
        arguments = {
            option.field: option.parse(values[option.name])
            for option in OPTIONS
            if option.side is Side.SERVICE and values.get(option.name) is not None
        }
        return cls(**arguments)  # type: ignore[arg-type]

    def restart_only_changes(self, other: ServiceOptions) -> list[str]:
        """
        The options whose change C{other} brings that only a restart applies.
        """
        return [
            option.flag
            for option in OPTIONS
            if option.restart_only
            and option.side is Side.SERVICE
            and getattr(self, option.field) != getattr(other, option.field)
        ]


def given(values: Iterable[tuple[str, object]]) -> dict[str, object]:
    """
    The options that were given, from (name, value) pairs: a flag not given is
    L{None}, an empty list or C{False}.
    """
    return {name: value for name, value in values if value not in (None, [], (), False)}
