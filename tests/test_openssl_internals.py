"""
Tests for tlsecho._tls._openssl_internals, every call tlsecho makes below
pyOpenSSL's public API: each binding, hidden symbol and private pyOpenSSL
attribute is resolved, and each call is made once and checked, so that a
pyOpenSSL or cryptography upgrade that removes or changes one fails here,
naming it, rather than somewhere deep in a handshake test.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import sys
from collections.abc import Callable

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from OpenSSL import SSL, crypto

from tlsecho._tls import _openssl_internals as internals
from tlsecho._tls._openssl_internals import (
    _excepthook,
    _hostcheck,
    _records,
    _sessions,
    _symbols,
)
from tlsecho._tls._tickets import client_hello_server_name

#: pyOpenSSL's cffi bindings (OpenSSL._util.lib) the internals use.
BINDINGS = (
    "SSL_CTX_set1_curves_list",
    "SSL_CTX_set_verify",
    "SSL_set_verify",
    "SSL_CTX_set_msg_callback",
    "X509_STORE_CTX_set_error",
    "X509_V_ERR_CERT_REJECTED",
    *_hostcheck.REQUIRED_SYMBOLS,
    *_records.REQUIRED["binding"],
)

#: The functions found by ELF symbol, with the signatures they are called with.
HIDDEN = {
    "SSL_CTX_ctrl": "long (*)(SSL_CTX *, int, long, void *)",
    "SSL_set_session_id_context": "int (*)(SSL *, const unsigned char *, unsigned int)",
    "SSL_set_msg_callback": _sessions.STOP_MESSAGES_SIGNATURE,
}


# Helpers ------------------------------------------------------------------------------


def _identify(context: SSL.Context, ca: trustme.CA) -> SSL.Context:
    """Give C{context} a localhost certificate from C{ca}, and trust C{ca}."""
    leaf = ca.issue_cert("localhost")
    context.use_certificate(x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes()))
    context.use_privatekey(load_pem_private_key(leaf.private_key_pem.bytes(), None))  # type: ignore[arg-type]
    store = context.get_cert_store()
    assert store is not None
    store.add_cert(
        crypto.X509.from_cryptography(x509.load_pem_x509_certificate(ca.cert_pem.bytes()))
    )
    return context


def _server_context(ca: trustme.CA) -> SSL.Context:
    """A TLS server context with a localhost certificate from C{ca}."""
    return _identify(SSL.Context(SSL.TLS_SERVER_METHOD), ca)


def _client_context(ca: trustme.CA) -> SSL.Context:
    """A TLS client context trusting C{ca}, with a certificate of its own."""
    client = _identify(SSL.Context(SSL.TLS_CLIENT_METHOD), ca)
    client.set_verify(SSL.VERIFY_PEER)
    return client


def _handshake(
    client_context: SSL.Context,
    server_context: SSL.Context,
    name: bytes = b"localhost",
    prepare: Callable[[SSL.Connection], None] = lambda client: None,
    server_errors: list[str] | None = None,
) -> tuple[SSL.Connection, str | None]:
    """
    Run a handshake in memory, then one byte each way.

    @param prepare: Called with the client connection before it starts.
    @param server_errors: Given, the text of the server's error (what the
        client's alert made of it) is appended to it, if there is one.
    @return: The client connection, and the text of the client's error (what
        the server's alert made of it), if any.
    """
    client = SSL.Connection(client_context, None)
    client.set_tlsext_host_name(name)
    client.set_connect_state()
    prepare(client)
    server = SSL.Connection(server_context, None)
    server.set_accept_state()
    errors: dict[SSL.Connection, str] = {}
    for _ in range(10):
        for this, other in ((client, server), (server, client)):
            if this not in errors:
                try:
                    this.do_handshake()
                    this.send(b"x")
                    this.recv(1)
                except SSL.WantReadError:
                    pass
                except SSL.Error as e:
                    errors[this] = str(e)
            with contextlib.suppress(SSL.WantReadError):
                other.bio_write(this.bio_read(65536))
    if server_errors is not None and server in errors:
        server_errors.append(errors[server])
    return client, errors.get(client)


def _refuse_leaf(
    connection: SSL.Connection, certificate: crypto.X509, code: int, depth: int, ok: int
) -> bool:
    """A verify callback refusing the leaf, and any certificate OpenSSL faulted."""
    return bool(ok) and depth != 0


# What the internals rely on -----------------------------------------------------------


@pytest.mark.parametrize("name", BINDINGS)
def test_binding_is_there(name: str) -> None:
    """Each cffi binding the internals use is in OpenSSL._util.lib."""
    from OpenSSL._util import lib

    assert hasattr(lib, name), f"OpenSSL._util.lib.{name} is gone"


@pytest.mark.parametrize("name", sorted(HIDDEN))
def test_hidden_symbol_is_found(name: str) -> None:
    """Each OpenSSL function reached by ELF symbol is found."""
    try:
        _symbols.openssl_function(name, HIDDEN[name])
    except _symbols.Unavailable as e:
        pytest.fail(f"{name} is out of reach: {e}")


def test_pyopenssl_private_attributes() -> None:
    """The private pointers of pyOpenSSL's objects are still where they were."""
    from OpenSSL._util import ffi

    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.set_verify(SSL.VERIFY_PEER, lambda *args: True)
    connection = SSL.Connection(context, None)
    assert ffi.typeof(context._context).cname == "SSL_CTX *", "Context._context"
    assert ffi.typeof(connection._ssl).cname == "SSL *", "Connection._ssl"
    verify = context._verify_callback
    assert ffi.typeof(verify).cname == "int(*)(int, X509_STORE_CTX *)", (
        "Context._verify_callback"
    )
    connection.set_verify(SSL.VERIFY_PEER, lambda *args: True)
    assert ffi.typeof(connection._verify_callback).cname == (
        "int(*)(int, X509_STORE_CTX *)"
    ), "Connection._verify_callback"


def test_record_layer_attributes() -> None:
    """The lean record layer's private attributes of a Connection made with memory
    BIOs are an SSL* and two BIO*s, and pyOpenSSL still maps outcomes to its
    exceptions with _raise_ssl_error(ssl, result)."""
    from OpenSSL._util import ffi, lib

    connection = SSL.Connection(SSL.Context(SSL.TLS_SERVER_METHOD), None)
    assert ffi.typeof(connection._into_ssl).cname == "BIO *", "Connection._into_ssl"
    assert ffi.typeof(connection._from_ssl).cname == "BIO *", "Connection._from_ssl"
    connection.set_accept_state()
    result = lib.SSL_read(connection._ssl, ffi.new("char[]", 1), 1)
    with pytest.raises(SSL.WantReadError):
        connection._raise_ssl_error(connection._ssl, result)
    assert _records.lean_unavailable() is None
    assert isinstance(_records.record_layer(connection), _records._BindingRecords)


def test_record_layer_moves_records_with_return_codes() -> None:
    """Lean and public record layers give the same: plaintext, None when more input
    is needed, a whole pending flight, and pyOpenSSL's exception at close_notify."""
    ca = trustme.CA()
    server_context = _identify(SSL.Context(SSL.TLS_SERVER_METHOD), ca)
    for layer in (_records._BindingRecords, _records._PublicRecords):
        server = SSL.Connection(server_context, None)
        server.set_accept_state()
        client = SSL.Connection(_identify(SSL.Context(SSL.TLS_CLIENT_METHOD), ca), None)
        client.set_connect_state()
        records = layer(server)
        assert records.read() is None  # nothing yet
        for _ in range(4):
            with contextlib.suppress(SSL.WantReadError):
                client.do_handshake()
            with contextlib.suppress(SSL.WantReadError):
                records.feed(client.bio_read(65536))
            with contextlib.suppress(SSL.WantReadError):
                server.do_handshake()
            flight = records.take()
            assert records.take() == b""  # all of it, the first time
            if flight:
                client.bio_write(flight)
        client.send(b"ping")
        records.feed(client.bio_read(65536))
        assert records.read() == b"ping"
        assert records.read() is None
        assert records.write(b"pong") == 4
        client.bio_write(records.take())
        assert client.recv(10) == b"pong"
        client.shutdown()
        records.feed(client.bio_read(65536))
        with pytest.raises(SSL.ZeroReturnError):
            records.read()


def test_record_layer_falls_back_when_pyopenssl_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If pyOpenSSL lost a binding or attribute the lean layer needs, it says which,
    and connections get the public layer: tlsecho keeps working."""
    monkeypatch.setitem(
        _records.REQUIRED, "connection", (*_records.REQUIRED["connection"], "_gone")
    )
    assert _records.lean_unavailable() == "pyOpenSSL's binding lacks Connection._gone"
    monkeypatch.setattr(_records, "_choice", [])
    connection = SSL.Connection(SSL.Context(SSL.TLS_METHOD), None)
    assert isinstance(_records.record_layer(connection), _records._PublicRecords)


def test_transport_variable_chooses_the_public_record_layer() -> None:
    """TLSECHO_TLS_TRANSPORT=pyopenssl makes every connection use pyOpenSSL's
    public calls; unset, the lean layer."""
    import subprocess

    code = "from tlsecho._tls._openssl_internals import use_lean; print(use_lean())"
    for value, expected in (("pyopenssl", "False"), ("lean", "True"), ("", "True")):
        env = {**os.environ, _records.TRANSPORT_VARIABLE: value}
        done = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert done.stdout.strip() == expected, value


def test_session_id_context_setter_is_that_function() -> None:
    """The address found for SSL_set_session_id_context is that function: it takes
    up to 32 bytes and refuses more."""
    set_context = _symbols.openssl_function(
        "SSL_set_session_id_context", HIDDEN["SSL_set_session_id_context"]
    )
    connection = SSL.Connection(SSL.Context(SSL.TLS_SERVER_METHOD), None)
    assert set_context(connection._ssl, b"a" * 32, 32) == 1
    assert set_context(connection._ssl, b"a" * 33, 33) == 0


def test_missing_symbol_is_unavailable() -> None:
    """A function the module does not list is Unavailable, with the reason."""
    with pytest.raises(_symbols.Unavailable, match="does not list no_such_function"):
        _symbols.openssl_function("no_such_function", "int (*)(void)")


# Each call, made once ------------------------------------------------------------------


def test_set_groups() -> None:
    """SSL_CTX_set1_curves_list takes a list of groups and refuses an unknown one."""
    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    assert internals.set_groups(context, "X25519:P-256")
    assert not internals.set_groups(context, "no-such-group")


def test_set_ticket_keys() -> None:
    """SSL_CTX_ctrl sets the ticket keys and reads them back."""
    internals.check_ticket_keys_settable()
    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    assert internals.set_ticket_keys(context, os.urandom(80))


def test_session_context_on_client_hello() -> None:
    """The message callback hands over the ClientHello, before the session lookup,
    and the connection takes the context chosen."""
    ca = trustme.CA()
    server_context = _server_context(ca)
    seen: list[bytes] = []

    def choose(message: bytes) -> bytes:
        seen.append(message)
        return b"c" * 32

    internals.set_session_context_on_client_hello(server_context, choose)
    calls = []

    def count(frame: object, event: str, arg: object) -> None:
        if event == "call" and frame.f_code.co_name == "on_message":  # type: ignore[attr-defined]
            calls.append(1)

    sys.setprofile(count)
    try:
        _handshake(_client_context(ca), server_context, b"name.example")
    finally:
        sys.setprofile(None)
    (message,) = seen
    assert client_hello_server_name(message) == b"name.example"
    # Once the server has written EncryptedExtensions, the connection's
    # callback is cleared (it was called 65 times per handshake before).
    assert 1 <= len(calls) <= 12, len(calls)


def test_session_context_after_hello_retry_request() -> None:
    """After a HelloRetryRequest, the second ClientHello is handed over too (a client
    could change its SNI there; its context must follow), and the handshake works."""
    ca = trustme.CA()
    server_context = _server_context(ca)
    assert internals.set_groups(server_context, "P-256")  # the client's first share is not
    seen: list[bytes] = []

    def choose(message: bytes) -> bytes:
        seen.append(message)
        return b"c" * 32

    internals.set_session_context_on_client_hello(server_context, choose)
    _, error = _handshake(_client_context(ca), server_context, b"name.example")
    assert error is None
    assert len(seen) == 2
    assert [client_hello_server_name(message) for message in seen] == [b"name.example"] * 2


def test_session_context_when_choose_fails() -> None:
    """A chooser that raises leaves the handshake intact (a random context)."""
    ca = trustme.CA()
    server_context = _server_context(ca)

    def choose(message: bytes) -> bytes:
        raise ValueError("unreadable")

    internals.set_session_context_on_client_hello(server_context, choose)
    client, error = _handshake(_client_context(ca), server_context)
    assert error is None
    assert client.get_protocol_version_name() == "TLSv1.3"


def test_reject_verified_as_bad_certificate() -> None:
    """A verify callback refusing a valid client certificate makes the server send
    bad_certificate, not internal_error."""
    ca = trustme.CA()
    alerts = {}
    for rejecting in (False, True):
        server_context = _server_context(ca)
        server_context.set_verify(
            SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, _refuse_leaf
        )
        if rejecting:
            internals.reject_verified_as_bad_certificate(server_context)
        client_context = _client_context(ca)
        _, alerts[rejecting] = _handshake(client_context, server_context)
    assert "internal error" in str(alerts[False])
    assert "bad certificate" in str(alerts[True])


@pytest.mark.parametrize(
    ("trusted", "unwrapped"),
    [(True, "internal error"), (False, "unknown ca")],
    ids=["verified", "untrusted"],
)
def test_client_refusal_sends_bad_certificate(trusted: bool, unwrapped: str) -> None:
    """A client verify callback refusing the server's leaf that OpenSSL found valid
    makes the client send bad_certificate, not internal_error; with
    over_chain_errors also when the chain did not verify (no trusted CA), where
    OpenSSL would send unknown_ca."""
    ca = trustme.CA()
    alerts = {}
    for rejecting in (False, True):

        def prepare(client: SSL.Connection, rejecting: bool = rejecting) -> None:
            client.set_verify(SSL.VERIFY_PEER, _refuse_leaf)
            if rejecting:
                internals.send_bad_certificate_on_refusal(
                    client, over_chain_errors=not trusted
                )

        server_errors: list[str] = []
        _handshake(
            _client_context(ca if trusted else trustme.CA()),
            _server_context(ca),
            prepare=prepare,
            server_errors=server_errors,
        )
        alerts[rejecting] = server_errors
    assert unwrapped in str(alerts[False])
    assert "bad certificate" in str(alerts[True])


def test_expect_peer_name() -> None:
    """Setting a name and an address on a connection's verify parameters works, and
    OpenSSL then checks the name."""
    connection = SSL.Connection(SSL.Context(SSL.TLS_CLIENT_METHOD), None)
    internals.expect_peer_name(connection, "localhost")
    internals.expect_peer_name(connection, ipaddress.ip_address("::1"))

    ca = trustme.CA()
    client_context = _client_context(ca)
    seen: list[int] = []

    def record(
        connection: SSL.Connection, certificate: crypto.X509, code: int, depth: int, ok: int
    ) -> bool:
        seen.append(code)
        return bool(ok)

    client_context.set_verify(SSL.VERIFY_PEER, record)
    _, error = _handshake(
        client_context,
        _server_context(ca),
        prepare=lambda client: internals.expect_peer_name(client, "other.example"),
    )
    assert "certificate verify failed" in str(error)
    assert internals.HOSTNAME_MISMATCH in seen


def test_pyopenssl_reports_sni_exceptions_to_excepthook(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pyOpenSSL still hands an exception from the SNI callback to sys.excepthook
    (and sends unrecognized_name); quiet_excepthook_for silences only its kind."""

    class Refused(Exception):
        """A deliberate refusal."""

    class Broken(Exception):
        """A bug."""

    reported: list[type[BaseException]] = []
    monkeypatch.setattr(sys, "excepthook", lambda kind, value, tb: reported.append(kind))
    monkeypatch.setattr(_excepthook, "_quieted", set())
    ca = trustme.CA()

    def refuse(kind: type[Exception]) -> str:
        server_context = _server_context(ca)

        def callback(connection: SSL.Connection) -> None:
            raise kind()

        server_context.set_tlsext_servername_callback(callback)
        client_context = _client_context(ca)
        _, error = _handshake(client_context, server_context)
        return str(error)

    assert "unrecognized name" in refuse(Refused)
    assert reported == [Refused]
    internals.quiet_excepthook_for(Refused)
    refuse(Refused)
    assert reported == [Refused]
    refuse(Broken)
    assert reported == [Refused, Broken]
