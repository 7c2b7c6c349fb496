"""
What checking settings asks of the linked TLS library, without importing it.

The settings layer never imports OpenSSL, yet a L{tlsecho.TLSSettings} must
fail when it is made (before anything listens) on a cipher string OpenSSL does
not know, a group it lacks, or ticket keys this build cannot set.  The TLS
layer (L{tlsecho._tls._policy}, imported by the package) provides a L{TLSLibrary}
that answers these questions; the settings layer asks L{linked}.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["TLSLibrary", "linked", "provide"]


@dataclass(frozen=True)
class TLSLibrary:
    """
    The answers of the linked TLS library that settings checks need.

    @ivar name: Its version text, such as C{"OpenSSL 3.5.0 8 Apr 2025"}.
    @ivar select_ciphers: The TLS 1.2-and-below cipher names a cipher string
        selects, in order; raises L{ConfigurationError} naming C{--ciphers}
        when it selects none the library knows.
    @ivar available_groups: The profile's groups the library has, in order.
    @ivar ticket_keys_unsettable: Why session-ticket keys cannot be set in
        this build, or L{None} when they can.
    """

    name: Callable[[], str]
    select_ciphers: Callable[[str], list[str]]
    available_groups: Callable[[], tuple[str, ...]]
    ticket_keys_unsettable: Callable[[], str | None]


_provided: list[TLSLibrary] = []


def provide(library: TLSLibrary) -> None:
    """
    Make C{library} the one L{linked} returns (the TLS layer calls this once,
    when it is imported).
    """
    _provided[:] = [library]


def linked() -> TLSLibrary:
    """
    The linked TLS library, as the TLS layer provided it.

    @raise RuntimeError: if the TLS layer was never imported (importing
        L{tlsecho} imports it).
    """
    if not _provided:
        raise RuntimeError("no TLS library provided: import tlsecho first")
    return _provided[0]
