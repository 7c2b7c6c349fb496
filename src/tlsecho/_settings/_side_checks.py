"""
Which settings each side refuses: a server that could never complete a
handshake, client checks without the means to do them, and options of the
other side.  L{TLSSettings.check_for_server <tlsecho.TLSSettings.check_for_server>}
and L{TLSSettings.check_for_client <tlsecho.TLSSettings.check_for_client>} call these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._errors import ConfigurationError
from ._options import Side
from ._setting_values import VerifyMode

if TYPE_CHECKING:
    from ._tls_settings import TLSSettings

__all__ = ["check_for_client", "check_for_server"]


def check_for_server(settings: TLSSettings) -> None:
    """
    Refuse settings a server could never complete a handshake with, that ask
    for client checks without the means to do them, or that hold client options.

    @raise ConfigurationError: naming the option.
    """
    verify = settings.verify_for(Side.SERVER)
    if settings.certificate is None:
        raise ConfigurationError("--cert", "the server needs a certificate and key")
    if verify is not VerifyMode.NONE and not settings.ca:
        raise ConfigurationError(
            "--verify",
            f"{verify.value} needs --ca: the CA certificates that client "
            "certificates must chain to",
        )
    if settings.allowed and verify is not VerifyMode.REQUIRED:
        # With "optional", a client that sends no certificate would pass every
        # rule unchecked: refuse the combination rather than surprise.
        raise ConfigurationError(
            "--allow-cn/--allow-dns/--allow-uri/--allow-spki",
            "need --verify required (and --ca): with optional, clients without a "
            "certificate would get in unchecked",
        )
    if settings.crl and verify is VerifyMode.NONE:
        raise ConfigurationError(
            "--crl",
            "checks client certificates: it needs --verify optional or required",
        )
    if settings.pin_spki:
        raise ConfigurationError("--pin-spki", "is a client option")
    if settings.require_ocsp_staple:
        raise ConfigurationError("--require-ocsp-staple", "is a client option")


def check_for_client(settings: TLSSettings) -> None:
    """
    Refuse the server's C{verify} policy C{optional} and server-only options.

    @raise ConfigurationError: naming the option.
    """
    if settings.verify_for(Side.CLIENT) is VerifyMode.OPTIONAL:
        raise ConfigurationError(
            "--verify", "optional is a server policy; the client takes required or none"
        )
    if (
        settings.sni
        or settings.sni_strict
        or settings.ocsp_response
        or settings.allowed
        or settings.ticket_key_file
    ):
        raise ConfigurationError(
            "--sni/--allow-*/--ocsp-response/--ticket-key-file",
            "are server options, not client options",
        )
