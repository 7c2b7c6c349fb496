"""
The files a L{TLSSettings} names, loaded: one immutable L{Material} value.

L{Material.load} is the one step that reads files: the certificate chain and
key (with the passphrase), the CA certificates, the SNI certificates, the CRLs,
the OCSP response to staple and the session-ticket keys, and it checks the key
log file.  Each problem is one L{ConfigurationError} naming the option and the
file.  The connection creators build their contexts from a L{Material}; a
reload is loading the material again from the same settings.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from . import _files, _pem, _pkcs12
from ._chain_gaps import chain_gap, platform_ca_certificates
from ._revocation import crl_problems, load_crls, load_ocsp_response
from ._ticket_keys import load_ticket_keys
from ._tls_settings import SNICertificate, TLSSettings

__all__ = ["EXPIRY_WARNING", "Material", "SNIIdentity"]

#: The warning C{--profile old} gives, at start and in C{tlsecho check}.
OLD_PROFILE_WARNING = (
    "--profile old: TLS 1.0 and 1.1, CBC and non-forward-secret ciphers are on, "
    "at OpenSSL security level 0; for testing legacy peers only"
)

#: A served certificate that expires within this is warned about.
EXPIRY_WARNING = datetime.timedelta(days=30)

#: An C{sni} entry with the chain and key loaded from its files.
SNIIdentity = tuple[SNICertificate, tuple[x509.Certificate, ...], _pem.TLSPrivateKey]


def _sni_identity(entry: SNICertificate, passphrase: bytes | None) -> SNIIdentity:
    """Load the chain and key of one C{sni} entry, naming it in any error."""
    option = f"--sni {entry.name}="
    chain, key = _pkcs12.load_identity(
        entry.certificate,
        entry.private_key,
        passphrase,
        option,
        option,
        key_hint="give its key file as NAME=CERT:KEY",
    )
    return entry, chain, key


@dataclass(frozen=True)
class Material:
    """
    What the files of one L{TLSSettings} hold, loaded and checked.

    @ivar chain: The certificate chain, leaf first (empty without C{certificate}).
    @ivar certificate_file: The file C{chain} came from.
    @ivar key: The chain's private key (L{None} without C{certificate}).
    @ivar trusted: The CA certificates from every C{ca} file, in order.
    @ivar sni_identities: Each C{sni} entry with its chain and key.
    @ivar crl_files: Each C{crl} file with the CRLs it holds.
    @ivar ocsp_staple: The checked OCSP response to staple, if any.
    @ivar ticket_keys: The session-ticket keys from C{ticket_key_file}, if any.
    @ivar keylog_file: The checked key log file, if any.
    @ivar legacy_profile: Whether the settings ask for C{--profile old}.
    """

    chain: tuple[x509.Certificate, ...] = ()
    certificate_file: Path | None = None
    key: _pem.TLSPrivateKey | None = None
    trusted: tuple[x509.Certificate, ...] = ()
    sni_identities: tuple[SNIIdentity, ...] = ()
    crl_files: tuple[tuple[Path, tuple[x509.CertificateRevocationList, ...]], ...] = ()
    ocsp_staple: bytes | None = None
    ticket_keys: bytes | None = None
    keylog_file: Path | None = None
    legacy_profile: bool = False

    @property
    def crls(self) -> tuple[x509.CertificateRevocationList, ...]:
        """
        Every CRL of every C{crl} file.
        """
        return tuple(crl for _, crls in self.crl_files for crl in crls)

    @classmethod
    def load(cls, settings: TLSSettings) -> Material:
        """
        Read and check every file C{settings} names.

        @raise ConfigurationError: naming the option, the file and the reason,
            for the first file that is missing, unreadable or invalid.
        """
        passphrase = None
        if settings.key_passphrase_file is not None:
            passphrase = _pem.read_passphrase(
                settings.key_passphrase_file, "--key-passphrase-file"
            )
        chain: tuple[x509.Certificate, ...] = ()
        key = None
        if settings.certificate is not None:
            chain, key = _pkcs12.load_identity(
                settings.certificate, settings.private_key, passphrase
            )
        trusted = tuple(
            certificate
            for path in settings.ca
            for certificate in _pem.load_ca_certificates(path, "--ca")
        )
        sni_identities = tuple(_sni_identity(entry, passphrase) for entry in settings.sni)
        crl_files = tuple((path, load_crls(path)) for path in settings.crl)
        ocsp_staple = None
        if settings.ocsp_response is not None:  # with a chain: the settings say so
            issuer = chain[1] if len(chain) > 1 else None
            ocsp_staple = load_ocsp_response(settings.ocsp_response, chain[0], issuer)
        ticket_keys = None
        if settings.ticket_key_file is not None:
            ticket_keys = load_ticket_keys(settings.ticket_key_file)
        if settings.keylog_file is not None:
            _files.check_keylog_file(settings.keylog_file, "--keylog-file")
        return cls(
            chain=chain,
            certificate_file=settings.certificate,
            key=key,
            trusted=trusted,
            sni_identities=sni_identities,
            crl_files=crl_files,
            ocsp_staple=ocsp_staple,
            ticket_keys=ticket_keys,
            keylog_file=settings.keylog_file,
            legacy_profile=settings.profile.value == "old",
        )

    def served(self) -> list[tuple[str, tuple[x509.Certificate, ...]]]:
        """
        Each served chain, named by the option that gives it.
        """
        return [(option, chain) for option, _, chain in self._served_files()]

    def _served_files(
        self,
    ) -> list[tuple[str, Path | None, tuple[x509.Certificate, ...]]]:
        """
        Each served chain, named by the option that gives it, with its file.
        """
        served = [("--cert", self.certificate_file, self.chain)] if self.chain else []
        return served + [
            (f"--sni {entry.name}=", entry.certificate, chain)
            for entry, chain, _ in self.sni_identities
        ]

    def chain_gaps(self) -> list[str]:
        """
        One warning per served chain that leaves out an intermediate CA
        (L{tlsecho._settings._chain_gaps}).
        """
        served = self._served_files()
        seen = [(f"{option} {path}", c) for option, path, chain in served for c in chain]
        found = []
        platform = functools.cache(platform_ca_certificates)  # read once, if at all
        for option, path, chain in served:
            gap = chain_gap(option, path, chain, seen, self.trusted, platform)
            if gap is not None:
                found.append(gap)
        return found

    def warnings(self, now: datetime.datetime | None = None) -> list[str]:
        """
        What is valid but worth a warning: served certificates that expire
        within 30 days, or that are self-signed; a chain without its
        intermediate CA (L{chain_gaps}); CRLs that cannot work (see
        L{crl_warnings}); a key log; C{--profile old}.
        """
        now = now or datetime.datetime.now(datetime.UTC)
        found = []
        for option, chain in self.served():
            leaf = chain[0]
            left = leaf.not_valid_after_utc - now
            if left < EXPIRY_WARNING:
                found.append(
                    f"{option}: certificate {_pem.describe(leaf)} expires in "
                    f"{left.days} days ({leaf.not_valid_after_utc:%Y-%m-%d})"
                )
            if leaf.issuer == leaf.subject and len(chain) == 1:
                found.append(
                    f"{option}: certificate {_pem.describe(leaf)} is self-signed: "
                    "clients can only trust it by pinning it"
                )
        found.extend(self.chain_gaps())
        found.extend(self.crl_warnings(now=now))
        if self.legacy_profile:
            found.append(OLD_PROFILE_WARNING)
        if self.keylog_file is not None:
            found.append(
                f"--keylog-file {self.keylog_file}: TLS secrets are being written; "
                "anyone who reads that file can decrypt the traffic"
            )
        return found

    def crl_warnings(
        self,
        extra_trust: Iterable[x509.Certificate] = (),
        now: datetime.datetime | None = None,
    ) -> list[str]:
        """
        One line per C{crl} problem that makes it unable to work: expired, not
        valid yet, or not issued and signed by a trusted CA (checked only when
        the trusted CAs are known: C{ca} or C{extra_trust}).  Such a CRL admits
        no one it should not; it refuses everyone its issuer certified.
        """
        trusted = [*self.trusted, *extra_trust]
        return [
            f"--crl {path}: {problem}"
            for path, crls in self.crl_files
            for crl in crls
            for problem in crl_problems(crl, trusted or None, now)
        ]
