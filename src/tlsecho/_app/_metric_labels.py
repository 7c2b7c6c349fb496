"""
The fixed label values of the server's metrics, and the total classifier that
maps a failure's reason onto them.

Every label value comes from a fixed set, never from what a peer sent: a
failure is counted under its class (L{failure_class}), and its words, with the
peer's text in them, go to the log only.  Pure text: no Twisted, OpenSSL or
prometheus_client here.
"""

from __future__ import annotations

__all__ = ["FAILURE_CLASSES", "REFUSAL_LIMITS", "failure_class", "refusal_limit"]

#: The label values of C{tlsecho_connections_refused_total{limit=...}}: the
#: limits a connection is refused by.
REFUSAL_LIMITS: tuple[str, ...] = ("max-connections", "max-connections-per-ip")

#: The label values of C{tlsecho_failures_total{reason=...}}: the classes of
#: the reasons a connection fails for.  Where a reason is fixed text already
#: ("handshake timeout"), its class is that text.
FAILURE_CLASSES: tuple[str, ...] = (
    "handshake timeout",
    "idle timeout",
    "max connection age",
    "no PROXY header",
    "invalid PROXY header",
    "PROXY header refused",
    "unrecognized name",
    "no client certificate",
    "client certificate not authorized",
    "certificate verify failed",
    "protocol version",
    "no cipher in common",
    "no key exchange group in common",
    "no application protocol in common (ALPN)",
    "the peer sent plain HTTP to a TLS port",
    "the peer does not speak TLS",
    "renegotiation refused",
    "the peer refused the handshake",
    "the peer rejected our certificate",
    "the peer sent an alert",
    "connection closed without close_notify",
    "connection lost",
    "TLS error",
    "other",
)

#: Reasons that carry what a peer sent (an SNI name, a certificate's names)
#: after a fixed start: matched on that start only, before anything else.
_PEER_TEXT_PREFIXES: tuple[tuple[str, str], ...] = (
    ("unrecognized name", "unrecognized name"),
    ("the server does not serve that name", "unrecognized name"),
    ("client certificate not authorized", "client certificate not authorized"),
    ("certificate verify failed", "certificate verify failed"),
)

#: Then: a class if the reason holds one of these words (first match).
_WORDS: tuple[tuple[str, str], ...] = (
    ("PROXY", "PROXY header refused"),
    ("no client certificate", "no client certificate"),
    ("requires a client certificate", "no client certificate"),
    ("protocol version", "protocol version"),
    ("no cipher", "no cipher in common"),
    ("insufficient security", "no cipher in common"),
    ("(ALPN)", "no application protocol in common (ALPN)"),
    ("plain HTTP", "the peer sent plain HTTP to a TLS port"),
    ("does not speak TLS", "the peer does not speak TLS"),
    ("malformed TLS record", "the peer does not speak TLS"),
    ("renegotiation", "renegotiation refused"),
    ("without close_notify", "connection closed without close_notify"),
)


def failure_class(reason: object) -> str:
    """
    The class of the reason a connection failed for: one of
    L{FAILURE_CLASSES}, C{"other"} for anything unknown (total: never raises).

    Use it for metric labels, which must come from a fixed set: the reason
    itself may hold text a peer chose (every SNI name under C{--sni-strict}
    would make a series of its own).
    """
    if not isinstance(reason, str):
        return "other"
    if reason in FAILURE_CLASSES:
        return reason
    for prefix, cls in _PEER_TEXT_PREFIXES:
        if reason.startswith(prefix):
            return cls
    for words, cls in _WORDS:
        if words in reason:
            return cls
    if reason.startswith("the peer"):
        if reason.startswith("the peer refused the handshake"):
            return "the peer refused the handshake"
        if "our certificate" in reason:
            return "the peer rejected our certificate"
        return "the peer sent an alert"
    if reason.startswith("connection lost"):
        return "connection lost"
    if reason.startswith("TLS error"):
        return "TLS error"
    return "other"


def refusal_limit(limit: object) -> str:
    """
    C{limit} if it is one of L{REFUSAL_LIMITS}, else the first (total).
    """
    return (
        limit if isinstance(limit, str) and limit in REFUSAL_LIMITS else REFUSAL_LIMITS[0]
    )
