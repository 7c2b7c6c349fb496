"""
The TLS settings value object: one immutable, validated description of a TLS peer.

L{TLSSettings} names the files (certificate chain, key, CA bundles) and the policy
(verification, ciphers, protocol versions).  Constructing one reads and checks every
file, so an invalid setting fails at once with a L{ConfigurationError}; a valid one
is the single input from which both the server's and the client's connection
creators are built (see L{tlsecho.server_creator} and L{tlsecho.client_creator}).
To change a setting, or to re-read the files after they changed, use
L{TLSSettings.replace}.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from OpenSSL import SSL
from twisted.internet.ssl import TLSVersion

from . import _pem
from ._errors import ConfigurationError

__all__ = [
    "DEFAULT_CIPHERS",
    "TLSSettings",
    "TLSVersion",
    "VerifyMode",
    "parse_tls_version",
]

#: ECDHE key exchange with AEAD ciphers only: the TLS 1.2 part of Mozilla's
#: "intermediate" Server Side TLS configuration (version 5.7), without the DHE
#: suites, which would need custom Diffie-Hellman parameters.  TLS 1.3 suites are
#: OpenSSL's defaults, all of which are AEAD.
#: See U{https://wiki.mozilla.org/Security/Server_Side_TLS}.
DEFAULT_CIPHERS = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ]
)

#: The protocol versions tlsecho accepts, as spelt on the command line, in order.
TLS_VERSIONS: dict[str, TLSVersion] = {
    "1.2": TLSVersion.TLSv1_2,
    "1.3": TLSVersion.TLSv1_3,
}
_VERSION_ORDER = list(TLS_VERSIONS.values())


def version_name(version: TLSVersion) -> str:
    """
    The command-line spelling of C{version}, such as C{"1.3"}.
    """
    return {v: k for k, v in TLS_VERSIONS.items()}[version]


def parse_tls_version(text: str, option: str) -> TLSVersion:
    """
    Turn C{"1.2"} or C{"1.3"} into a L{TLSVersion}.

    @raise ConfigurationError: for anything else, naming C{option}.
    """
    try:
        return TLS_VERSIONS[text.strip().removeprefix("TLSv").removeprefix("tls")]
    except KeyError:
        raise ConfigurationError(
            option, f"unknown TLS version {text!r} (expected 1.2 or 1.3)"
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
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise ConfigurationError(
                option,
                f"unknown verify mode {text!r} (expected none, optional or required)",
            ) from None


def _check_ciphers(ciphers: str) -> None:
    """
    Raise a L{ConfigurationError} if OpenSSL selects no cipher from C{ciphers}.
    """
    try:
        SSL.Context(SSL.TLS_METHOD).set_cipher_list(ciphers.encode("ascii"))
    except (SSL.Error, UnicodeEncodeError):
        raise ConfigurationError(
            "--ciphers",
            f"OpenSSL knows no cipher in {ciphers!r} "
            "(see 'openssl ciphers -v' for the names)",
        ) from None


@dataclass(frozen=True)
class TLSSettings:
    """
    Everything that decides how one side of a TLS connection behaves.

    Every file is read and checked when the object is made, so holding a
    L{TLSSettings} means holding a valid configuration.  Paths may be given as
    strings; they are stored as L{Path}.

    @ivar certificate: PEM file with the certificate first, then its
        intermediates in order.  Required on the server; on the client, the
        certificate for mutual TLS.
    @ivar private_key: PEM file with the private key; the C{certificate} file
        when not given.
    @ivar key_passphrase_file: File holding the passphrase of an encrypted key.
    @ivar ca: PEM files of the CA certificates to trust for the peer.
    @ivar verify: The verification policy; L{None} means the safe default of the
        side that uses it: the server asks for no client certificate, and the
        client verifies the server's chain and host name.
    @ivar ciphers: OpenSSL cipher string for TLS 1.2 (TLS 1.3 suites are all
        strong and are left at OpenSSL's defaults).
    @ivar min_tls: The lowest protocol version accepted.
    @ivar max_tls: The highest protocol version offered.
    @ivar chain: The loaded certificate chain (empty without C{certificate}).
    @ivar key: The loaded private key (L{None} without C{certificate}).
    @ivar trusted: The loaded CA certificates from every C{ca} file.

    @raise ConfigurationError: naming the option, the file and the reason, for
        any invalid setting.
    """

    certificate: Path | None = None
    private_key: Path | None = None
    key_passphrase_file: Path | None = None
    ca: tuple[Path, ...] = ()
    verify: VerifyMode | None = None
    ciphers: str = DEFAULT_CIPHERS
    min_tls: TLSVersion = TLSVersion.TLSv1_2
    max_tls: TLSVersion = TLSVersion.TLSv1_3

    chain: tuple[x509.Certificate, ...] = field(
        init=False, repr=False, compare=False, default=()
    )
    key: _pem.TLSPrivateKey | None = field(
        init=False, repr=False, compare=False, default=None
    )
    trusted: tuple[x509.Certificate, ...] = field(
        init=False, repr=False, compare=False, default=()
    )

    def __post_init__(self) -> None:
        self._normalise_paths()
        if _VERSION_ORDER.index(self.min_tls) > _VERSION_ORDER.index(self.max_tls):
            raise ConfigurationError(
                "--min-tls",
                f"{version_name(self.min_tls)} is above --max-tls "
                f"{version_name(self.max_tls)}",
            )
        _check_ciphers(self.ciphers)
        self._load_identity()
        trusted: list[x509.Certificate] = []
        for path in self.ca:
            trusted.extend(_pem.load_ca_certificates(path, "--ca"))
        object.__setattr__(self, "trusted", tuple(trusted))

    def _normalise_paths(self) -> None:
        for name in ("certificate", "private_key", "key_passphrase_file"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        ca: object = self.ca
        if isinstance(ca, str | Path):
            ca = (ca,)  # one file given on its own, not a sequence of files
        object.__setattr__(self, "ca", tuple(Path(p) for p in ca))  # type: ignore[attr-defined]

    def _load_identity(self) -> None:
        if self.certificate is None:
            if self.private_key is not None:
                raise ConfigurationError(
                    "--key", "needs --cert: a key alone cannot be served", self.private_key
                )
            if self.key_passphrase_file is not None:
                raise ConfigurationError("--key-passphrase-file", "needs --cert and --key")
            return
        chain = _pem.load_certificate_chain(self.certificate, "--cert")
        key_path = self.private_key or self.certificate
        key_option = "--key" if self.private_key is not None else "--cert"
        passphrase = None
        if self.key_passphrase_file is not None:
            passphrase = _pem.read_passphrase(
                self.key_passphrase_file, "--key-passphrase-file"
            )
        key = _pem.load_private_key(key_path, key_option, passphrase)
        _pem.check_key_matches(chain[0], key, key_path, key_option)
        object.__setattr__(self, "chain", chain)
        object.__setattr__(self, "key", key)

    def replace(self, **changes: object) -> TLSSettings:
        """
        A copy with C{changes} applied, every file read and checked again.

        With no changes this re-reads the same files: the way to pick up a
        renewed certificate.

        @raise ConfigurationError: if the result would be invalid.
        """
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_strings(
        cls,
        *,
        certificate: str | None = None,
        private_key: str | None = None,
        key_passphrase_file: str | None = None,
        ca: Iterable[str] = (),
        verify: str | None = None,
        ciphers: str | None = None,
        min_tls: str | None = None,
        max_tls: str | None = None,
    ) -> TLSSettings:
        """
        Build settings from option values as a user typed them.

        This is the edge where strings become typed values; C{None} means the
        option was not given.

        @raise ConfigurationError: for any invalid value.
        """
        return cls(
            certificate=None if certificate is None else Path(certificate),
            private_key=None if private_key is None else Path(private_key),
            key_passphrase_file=(
                None if key_passphrase_file is None else Path(key_passphrase_file)
            ),
            ca=tuple(Path(p) for p in ca),
            verify=None if verify is None else VerifyMode.parse(verify),
            ciphers=DEFAULT_CIPHERS if ciphers is None else ciphers,
            min_tls=(
                TLSVersion.TLSv1_2
                if min_tls is None
                else parse_tls_version(min_tls, "--min-tls")
            ),
            max_tls=(
                TLSVersion.TLSv1_3
                if max_tls is None
                else parse_tls_version(max_tls, "--max-tls")
            ),
        )
