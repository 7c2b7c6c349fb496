"""
Tests for tlsecho._tls._diagnosis (and the refusals it reads, tlsecho._tls._refusals):
hand-made failures turned into one line of words.

The failures of real handshakes are tested in test_creators; here each branch of
L{describe_failure} and L{verify_error_text} is fed a failure made by hand.  The
words alone are tested in test_tlswords.
"""

from __future__ import annotations

import pytest
from OpenSSL import SSL
from service_identity.exceptions import DNSMismatch, IPAddressMismatch, VerificationError
from service_identity.hazmat import DNS_ID, IPAddress_ID
from twisted.internet import error
from twisted.python.failure import Failure

from tlsecho._tls import _tlswords
from tlsecho._tls._diagnosis import (
    certificate_names,
    connection_summary,
    describe_failure,
    is_tls_failure,
)
from tlsecho._tls._refusals import record_verify_error, verify_error_text

Codes = SSL.X509VerificationCodes


def _ssl_error(*reasons: str) -> Failure:
    """A failure like pyOpenSSL's, its error queue holding C{reasons}."""
    return Failure(SSL.Error([("SSL routines", "", reason) for reason in reasons]))


class _Transport:
    """A transport whose getHandle() returns a given object, as a TLS transport's does."""

    def __init__(self, handle: object) -> None:
        self._handle = handle

    def getHandle(self) -> object:
        return self._handle


class _BrokenTransport:
    """A transport whose getHandle() raises, as TLS transports do once closed."""

    def getHandle(self) -> object:
        raise AttributeError("closed")


def _connection() -> SSL.Connection:
    return SSL.Connection(SSL.Context(SSL.TLS_METHOD), None)


# Connection-level failures.


def test_connection_refused() -> None:
    """A refused connection is described as "connection refused"."""
    assert describe_failure(Failure(error.ConnectionRefusedError())) == (
        "connection refused"
    )


def test_dns_lookup_error() -> None:
    """A failed name lookup is described as "host name not found"."""
    failure = Failure(error.DNSLookupError("no.such.host.example"))
    assert describe_failure(failure) == "host name not found"


@pytest.mark.parametrize("exception", [error.TimeoutError(), TimeoutError()])
def test_timeout(exception: Exception) -> None:
    """Twisted's and Python's timeouts are both described as "timed out"."""
    assert describe_failure(Failure(exception)) == "timed out"


def test_connection_done() -> None:
    """A clean close is described as "closed"."""
    assert describe_failure(Failure(error.ConnectionDone())) == "closed"


def test_connection_lost() -> None:
    """An unclean close is described as "connection lost"."""
    assert describe_failure(Failure(error.ConnectionLost())) == "connection lost"


def test_no_route() -> None:
    """An unreachable host is described as "no route to host"."""
    assert describe_failure(Failure(error.NoRouteError())) == "no route to host"


def test_connect_error_with_os_error() -> None:
    """Another connect error is described by its operating system error alone."""
    failure = Failure(error.ConnectError(osError="Network is down"))
    assert describe_failure(failure) == "Network is down"


def test_unknown_exception_with_message() -> None:
    """An unforeseen exception is described by its message."""
    assert describe_failure(Failure(RuntimeError("it broke"))) == "it broke"


def test_unknown_exception_without_message() -> None:
    """An unforeseen exception without a message is described by its type's name."""
    assert describe_failure(Failure(RuntimeError())) == "RuntimeError"


# TLS failures reported by OpenSSL.


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("no shared cipher", "no cipher in common"),
        ("peer did not return a certificate", "no client certificate"),
        ("unsupported protocol", "protocol version: no TLS version in common"),
        ("wrong version number", "the peer does not speak TLS (wrong version number)"),
        ("http request", "the peer sent plain HTTP to a TLS port"),
        ("unexpected eof while reading", "connection closed without close_notify"),
    ],
)
def test_local_ssl_reasons(reason: str, words: str) -> None:
    """OpenSSL's reasons for failures found locally are put in words."""
    assert describe_failure(_ssl_error(reason)) == words


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("tlsv13 alert certificate required", "server requires a client certificate"),
        ("tlsv1 alert unknown ca", "the peer does not trust our certificate (unknown CA)"),
        (
            "sslv3 alert certificate expired",
            "the peer says our certificate has expired",
        ),
        (
            "tlsv1 alert protocol version",
            "protocol version: the peer refused our TLS versions",
        ),
        (
            "sslv3 alert handshake failure",
            "the peer refused the handshake (handshake failure: no common cipher "
            "or version, or a required client certificate missing)",
        ),
        (
            "ssl/tls alert handshake failure",
            "the peer refused the handshake (handshake failure: no common cipher "
            "or version, or a required client certificate missing)",
        ),
        (
            "tlsv1 alert insufficient security",
            "no cipher in common (insufficient security)",
        ),
    ],
)
def test_alerts_from_peer(reason: str, words: str) -> None:
    """Alerts the peer sent are put in words, whatever OpenSSL's prefix for them."""
    assert describe_failure(_ssl_error(reason)) == words


def test_unknown_alert_is_named() -> None:
    """An alert with no words of its own is still named as an alert from the peer."""
    assert describe_failure(_ssl_error("tlsv1 alert bad weather")) == (
        "the peer sent the alert 'bad weather'"
    )


def test_unknown_ssl_reasons_are_listed() -> None:
    """Unknown OpenSSL reasons are listed verbatim after "TLS error:"."""
    assert describe_failure(_ssl_error("odd thing", "odder thing")) == (
        "TLS error: odd thing; odder thing"
    )


def test_known_reason_wins_over_unknown() -> None:
    """When the error queue holds an unknown and a known reason, the known one is used."""
    assert describe_failure(_ssl_error("odd thing", "no shared cipher")) == (
        "no cipher in common"
    )


def test_ssl_error_without_queue() -> None:
    """An SSL error that is not an error queue is described by its text."""
    assert describe_failure(Failure(SSL.Error("bad things"))) == "TLS error: bad things"


def test_certificate_verify_failed_without_transport() -> None:
    """A failed verification with no transport to ask says just that."""
    assert describe_failure(_ssl_error("certificate verify failed")) == (
        "certificate verify failed"
    )


def test_certificate_verify_failed_uses_recorded_error() -> None:
    """A failed verification is explained by the first error recorded on its connection."""
    connection = _connection()
    record_verify_error(connection, Codes.ERR_CERT_HAS_EXPIRED, 0)
    record_verify_error(connection, Codes.ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, 1)
    failure = _ssl_error("certificate verify failed")
    assert describe_failure(failure, _Transport(connection)) == (
        "certificate verify failed: certificate has expired"
    )


def test_recorded_error_names_chain_depth() -> None:
    """A verify error above the leaf names its depth in the chain."""
    connection = _connection()
    record_verify_error(connection, Codes.ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, 1)
    failure = _ssl_error("certificate verify failed")
    assert describe_failure(failure, _Transport(connection)) == (
        "certificate verify failed: unknown CA (unable to get local issuer certificate) "
        "at chain depth 1"
    )


def test_certificate_verify_failed_with_nothing_recorded() -> None:
    """A failed verification on a connection with nothing recorded says just that."""
    failure = _ssl_error("certificate verify failed")
    assert describe_failure(failure, _Transport(_connection())) == (
        "certificate verify failed"
    )


@pytest.mark.parametrize("transport", [_BrokenTransport(), _Transport(None), object()])
def test_transport_without_tls_connection(transport: object) -> None:
    """A transport that gives no TLS connection is ignored rather than raising."""
    failure = _ssl_error("certificate verify failed")
    assert describe_failure(failure, transport) == "certificate verify failed"
    assert certificate_names(transport) == []
    assert connection_summary(transport) == {
        "tls_version": None,
        "cipher": None,
        "group": None,
        "sni": None,
    }


# Host name checks (service_identity).


def test_hostname_mismatch() -> None:
    """A host name mismatch names the wanted name."""
    failure = Failure(VerificationError([DNSMismatch(DNS_ID("wrong.example"))]))
    assert describe_failure(failure) == (
        "certificate verify failed: hostname mismatch: not valid for 'wrong.example'"
    )


def test_ip_address_mismatch() -> None:
    """An IP address mismatch names the wanted address as it was written."""
    failure = Failure(VerificationError([IPAddressMismatch(IPAddress_ID("10.0.0.1"))]))
    assert describe_failure(failure) == (
        "certificate verify failed: hostname mismatch: not valid for '10.0.0.1'"
    )


# Classification.


@pytest.mark.parametrize(
    "failure",
    [
        _ssl_error("no shared cipher"),
        Failure(VerificationError([DNSMismatch(DNS_ID("wrong.example"))])),
    ],
)
def test_tls_failures(failure: Failure) -> None:
    """OpenSSL errors and host name mismatches are TLS failures."""
    assert is_tls_failure(failure)


@pytest.mark.parametrize(
    "exception",
    [error.ConnectionDone(), error.ConnectionLost(), error.ConnectionRefusedError()],
)
def test_not_tls_failures(exception: Exception) -> None:
    """Closed, lost and refused connections are not TLS failures."""
    assert not is_tls_failure(Failure(exception))


# verify_error_text.


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (
            Codes.ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
            "unknown CA (unable to get local issuer certificate)",
        ),
        (
            Codes.ERR_DEPTH_ZERO_SELF_SIGNED_CERT,
            "self-signed certificate that is not trusted",
        ),
        (
            Codes.ERR_SELF_SIGNED_CERT_IN_CHAIN,
            "unknown CA (self-signed certificate in chain)",
        ),
        (Codes.ERR_CERT_HAS_EXPIRED, "certificate has expired"),
        (Codes.ERR_CERT_NOT_YET_VALID, "certificate is not yet valid"),
        (
            Codes.ERR_INVALID_PURPOSE,
            "certificate not allowed for this purpose (extended key usage)",
        ),
    ],
)
def test_verify_error_text_known(code: int, words: str) -> None:
    """Verify error codes people meet have words of their own."""
    assert verify_error_text(code) == words


def test_verify_error_text_from_pyopenssl_name() -> None:
    """Other codes pyOpenSSL knows are spelt out from their names."""
    assert verify_error_text(Codes.ERR_CERT_CHAIN_TOO_LONG) == "cert chain too long"


def test_verify_error_text_unknown_code() -> None:
    """A code nobody knows is given by number."""
    assert verify_error_text(99999) == "verify error 99999"


def test_worded_verify_errors_are_openssl_names() -> None:
    """Every verify error with words of its own is one pyOpenSSL knows by that name."""
    named = set(_tlswords._VERIFY_ERRORS) | set(_tlswords._CRL_ERRORS)
    assert {name for name in named if not hasattr(Codes, "ERR_" + name)} == set()


def test_crl_verify_error_names_the_issuer() -> None:
    """A CRL verify error names the issuer of the certificate being checked."""
    assert verify_error_text(Codes.ERR_UNABLE_TO_GET_CRL) == (
        "no CRL for the certificate's issuer (--crl)"
    )
