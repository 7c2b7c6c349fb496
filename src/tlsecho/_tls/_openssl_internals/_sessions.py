"""
Session-ticket keys and a per-connection session ID context, through OpenSSL
functions pyOpenSSL (26.4) and cryptography (50) do not bind.

C{SSL_CTX_set_tlsext_ticket_keys} is a macro over C{SSL_CTX_ctrl}, and
neither it nor C{SSL_set_session_id_context} is in C{OpenSSL._util.lib}: both
are reached through L{_symbols.openssl_function}, with the C{SSL_CTX*}/C{SSL*}
pyOpenSSL holds privately (C{Context._context}).  The message callback is
bound (C{SSL_CTX_set_msg_callback}), but pyOpenSSL offers no public call for
it either.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from OpenSSL import SSL

from . import _symbols

__all__ = [
    "check_ticket_keys_settable",
    "session_reused",
    "set_session_context_on_client_hello",
    "set_ticket_keys",
]

# From OpenSSL's ssl.h: the controls behind SSL_CTX_{set,get}_tlsext_ticket_keys.
_SET_TICKET_KEYS = 59
_GET_TICKET_KEYS = 58

# TLS record content type handshake, and handshake message type client_hello.
_HANDSHAKE = 22
_CLIENT_HELLO = 1
#: Handshake messages a server writes only once no ClientHello can follow
#: (renegotiation is off): EncryptedExtensions (TLS 1.3), Certificate and
#: Finished (TLS 1.2, full and resumed).  A HelloRetryRequest is a ServerHello,
#: so the ServerHello is not among them.
_AFTER_CLIENT_HELLOS = frozenset({8, 11, 20})


def _ticket_key_control() -> Any:
    """
    C{SSL_CTX_ctrl}, as a cffi function pointer.

    @raise Unavailable: saying why it cannot be found.
    """
    return _symbols.openssl_function(
        "SSL_CTX_ctrl", "long (*)(SSL_CTX *, int, long, void *)"
    )


def check_ticket_keys_settable() -> None:
    """
    Check that L{set_ticket_keys} can work in this process (C{SSL_CTX_ctrl}
    is found), before any context is built.

    @raise Unavailable: saying why not; C{--ticket-key-file} is then refused
        with a one-line error.
    """
    _ticket_key_control()


def set_ticket_keys(context: SSL.Context, keys: bytes) -> bool:
    """
    Make C{context} encrypt and decrypt session tickets with C{keys} (80 bytes:
    name, HMAC key, AES key), and read them back.

    OpenSSL call: C{SSL_CTX_ctrl(ctx, SSL_CTRL_SET_TLSEXT_TICKET_KEYS, ...)}
    (the macro C{SSL_CTX_set_tlsext_ticket_keys}), then C{GET} to compare.
    Why below the API: pyOpenSSL has no call for it and cryptography does not
    bind C{SSL_CTX_ctrl}.  Removed by: a public
    C{Context.set_tlsext_ticket_keys} in pyOpenSSL.

    @return: whether OpenSSL took exactly these keys; if not, the caller must
        refuse to start.
    @raise Unavailable: see L{check_ticket_keys_settable}.
    """
    from OpenSSL._util import ffi

    control = _ticket_key_control()
    raw = context._context  # the SSL_CTX pointer pyOpenSSL holds
    given = ffi.new("unsigned char[]", keys)
    read_back = ffi.new("unsigned char[]", len(keys))
    return bool(
        control(raw, _SET_TICKET_KEYS, len(keys), given) == 1
        and control(raw, _GET_TICKET_KEYS, len(keys), read_back) == 1
        and ffi.buffer(read_back)[:] == keys
    )


#: How L{set_session_context_on_client_hello} calls C{SSL_set_msg_callback}.
STOP_MESSAGES_SIGNATURE = (
    "void (*)(SSL *, void (*)(int, int, int, void *, size_t, SSL *, void *))"
)


def set_session_context_on_client_hello(
    context: SSL.Context, choose: Callable[[bytes], bytes]
) -> None:
    """
    As soon as a connection of C{context} has read a ClientHello, and before
    OpenSSL processes it (and so before it looks up the session to resume),
    set that connection's session ID context to C{choose(message)}, where
    C{message} is the ClientHello handshake message with its 4-byte header.

    OpenSSL calls: C{SSL_CTX_set_msg_callback} (bound, through pyOpenSSL's
    private C{Context._context}) and, in the callback,
    C{SSL_set_session_id_context} (unbound: L{_symbols.openssl_function}).  Why below
    the API: pyOpenSSL has neither a message callback nor a per-connection
    session ID context, and the SNI callback runs after the session lookup.
    If C{choose} raises, the connection gets a random context: nothing
    resumes.  Removed by: a ClientHello callback (C{SSL_CTX_set_client_hello_cb})
    and C{Connection.set_session_id_context} in pyOpenSSL.

    @raise Unavailable: if C{SSL_set_session_id_context} cannot be found;
        nothing is installed, and the caller must then turn resumption off
        (fail closed).
    """
    from OpenSSL._util import ffi, lib

    set_context = _symbols.openssl_function(
        "SSL_set_session_id_context",
        "int (*)(SSL *, const unsigned char *, unsigned int)",
    )
    # OpenSSL calls the callback for every record and message of the
    # connection (65 per handshake).  Once the server has written a message
    # that only follows the last ClientHello (see _AFTER_CLIENT_HELLOS; after
    # a HelloRetryRequest a second ClientHello comes, and must be bound too),
    # the connection's own callback is cleared (SSL_set_msg_callback, found
    # like the setter; without it, the callback just keeps returning early).
    try:
        stop_messages: Any = _symbols.openssl_function(
            "SSL_set_msg_callback", STOP_MESSAGES_SIGNATURE
        )
    except _symbols.Unavailable:
        stop_messages = None

    @ffi.callback("void (*)(int, int, int, void *, size_t, SSL *, void *)")  # type: ignore[untyped-decorator]
    def on_message(
        write: int, version: int, kind: int, buffer: Any, length: int, ssl: Any, arg: Any
    ) -> None:
        if kind != _HANDSHAKE or length < 4:
            return
        message_type = ffi.cast("unsigned char *", buffer)[0]
        if write:
            if message_type in _AFTER_CLIENT_HELLOS and stop_messages is not None:
                stop_messages(ssl, ffi.NULL)
            return
        if message_type != _CLIENT_HELLO:
            return
        try:
            bound = choose(ffi.buffer(buffer, length)[:])
        except Exception:
            bound = os.urandom(32)  # a context no session has
        set_context(ssl, bound, len(bound))

    context._tlsecho_message_callback = on_message  # type: ignore[attr-defined]  # keep it alive
    lib.SSL_CTX_set_msg_callback(context._context, on_message)


def session_reused(connection: SSL.Connection) -> bool:
    """
    Whether C{connection}'s handshake resumed a session (no certificate was
    sent or verified on it).

    OpenSSL call: C{SSL_session_reused}.  Why below the API: pyOpenSSL (26.4)
    binds it in cffi but has no C{Connection} method for it.  Without it:
    C{tlsecho client --resume} cannot say whether it resumed, and a resumed
    connection could not be told from an unchecked one, so it is refused.
    Removed by: a public C{Connection.session_reused} in pyOpenSSL.
    """
    from OpenSSL._util import lib

    return bool(lib.SSL_session_reused(connection._ssl))
