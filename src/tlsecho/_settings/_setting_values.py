"""
The typed values of L{tlsecho.TLSSettings} fields: the verification mode, an
SNI certificate entry, a TLS version, each parsed from its command-line
spelling (naming the option in any error); and how paths and lists given
loosely (strings, one value for several) become the declared field types.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.internet.ssl import TLSVersion

from ._errors import ConfigurationError
from ._profiles import TLS_VERSIONS
from ._values import parse_word

__all__ = [
    "CONVERSIONS",
    "SNICertificate",
    "VerifyMode",
    "as_path",
    "as_paths",
    "as_strings",
    "parse_tls_version",
]


def parse_tls_version(text: str, option: str) -> TLSVersion:
    """
    Turn C{"1.2"} or C{"1.3"} (or, for C{--profile old}, C{"1.0"} or
    C{"1.1"}) into a L{TLSVersion}.

    @raise ConfigurationError: for anything else, naming C{option}.
    """
    try:
        return TLS_VERSIONS[text.strip().removeprefix("TLSv").removeprefix("tls")]
    except KeyError:
        raise ConfigurationError(
            option,
            f"unknown TLS version {text!r} (expected 1.2 or 1.3; "
            "1.0 or 1.1 with --profile old)",
        ) from None


class VerifyMode(enum.Enum):
    """
    How a peer's certificate is checked.

    On the server it is the client-certificate policy: C{NONE} asks for none,
    C{OPTIONAL} verifies one if the client sends it, C{REQUIRED} refuses clients
    without a valid one.  On the client, C{REQUIRED} verifies the server's chain
    and host name, and C{NONE} (insecure) checks nothing.
    """

    NONE = "none"
    OPTIONAL = "optional"
    REQUIRED = "required"

    @classmethod
    def parse(cls, text: str, option: str = "--verify") -> VerifyMode:
        """
        Turn C{"none"}, C{"optional"} or C{"required"} into a L{VerifyMode}.

        @raise ConfigurationError: for anything else, naming C{option}.
        """
        return parse_word(cls, text, option, "verify mode")


@dataclass(frozen=True)
class SNICertificate:
    """
    A certificate served to clients that ask for C{name} with SNI.

    @ivar name: An exact host name, or a wildcard C{*.example.com} matching
        one label.
    @ivar certificate: PEM chain file.
    @ivar private_key: PEM key file; the chain file when L{None}.
    """

    name: str
    certificate: Path
    private_key: Path | None = None

    @classmethod
    def parse(cls, text: str, option: str = "--sni") -> SNICertificate:
        """
        Parse C{NAME=CERT[:KEY]}.

        @raise ConfigurationError: if there is no C{=} or no name.
        """
        name, sep, files = text.partition("=")
        if not sep or not name.strip() or not files:
            raise ConfigurationError(option, f"expected NAME=CERT[:KEY], got {text!r}")
        certificate, _, key = files.partition(":")
        return cls(name.strip().lower(), Path(certificate), Path(key) if key else None)

    def matches(self, servername: str) -> bool:
        """
        Whether a client asking for C{servername} gets this certificate.
        """
        servername = servername.lower().rstrip(".")
        if self.name.startswith("*."):
            head, _, rest = servername.partition(".")
            return bool(head) and rest == self.name[2:]
        return servername == self.name


def as_paths(value: object) -> tuple[Path, ...]:
    """A tuple of paths from one path or several (strings accepted)."""
    if isinstance(value, str | Path):
        return (Path(value),)  # one file given on its own
    return tuple(Path(p) for p in value)  # type: ignore[attr-defined]


def as_strings(value: object) -> tuple[str, ...]:
    """A tuple of strings from one string or several."""
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)  # type: ignore[attr-defined]


def as_path(value: object) -> Path | None:
    """A path from a string or a path; L{None} stays L{None}."""
    return None if value is None else Path(value)  # type: ignore[arg-type]


#: How each declared field type is made from what may be given for it.
CONVERSIONS: dict[str, Callable[[Any], object]] = {
    "Path | None": as_path,
    "tuple[Path, ...]": as_paths,
    "tuple[str, ...]": as_strings,
    "tuple[SNICertificate, ...]": tuple,
}
