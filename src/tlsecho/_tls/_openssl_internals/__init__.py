"""
Every call tlsecho makes below pyOpenSSL's public API, in one place: what to
check when pyOpenSSL or cryptography is upgraded (tests/test_openssl_internals.py
fails, naming the binding, if one is gone or changed).

Written for pyOpenSSL 26.4 and cryptography 50 (OpenSSL 3.5+/4.0 inside).  Each
function's docstring names the OpenSSL call, why the public API cannot do it,
what happens without it, and the upstream change that would remove it:

  - L{set_groups}: C{SSL_CTX_set1_curves_list} (C{--groups}).
  - L{reject_verified_as_bad_certificate}: C{X509_STORE_CTX_set_error} from a
    wrapped verify callback (C{--allow-*} refusals send bad_certificate).
  - L{send_bad_certificate_on_refusal}: the same on a client connection, with
    C{SSL_set_verify} (a refused key usage or C{--pin-spki} sends
    bad_certificate).
  - L{expect_peer_name}: C{X509_VERIFY_PARAM_set1_host}/C{set1_ip} (the
    client's second, independent host name check).
  - L{set_ticket_keys}, L{check_ticket_keys_settable}: C{SSL_CTX_ctrl}, found
    by ELF symbol (C{--ticket-key-file}).
  - L{set_session_context_on_client_hello}: C{SSL_CTX_set_msg_callback}, and
    C{SSL_set_session_id_context} and C{SSL_set_msg_callback}, found by ELF
    symbol (sessions bound to the SNI name).
  - L{session_reused}: C{SSL_session_reused} (whether a client connection
    resumed, for C{--resume} and the resumed-session approval).
  - L{record_layer}: C{BIO_write}, C{SSL_read}, C{SSL_write},
    C{SSL_get_error}, C{BIO_get_mem_data}, C{BIO_read} on the connection's
    C{SSL*} and memory C{BIO*}s (tlsecho's TLS data path, with return codes
    instead of exceptions), with pyOpenSSL's public calls as the slow path.
  - L{quiet_excepthook_for}: a process-wide C{sys.excepthook} that silences
    pyOpenSSL's traceback for a deliberate SNI refusal.

The private pyOpenSSL attributes used: C{Context._context} (the C{SSL_CTX*}),
C{Context._verify_callback}, C{Connection._verify_callback}, C{Connection._ssl}
(the C{SSL*}), C{Connection._into_ssl}/C{_from_ssl} (its memory BIOs),
C{Connection._raise_ssl_error} (pyOpenSSL's mapping of an outcome to its
exception), C{Connection._handle_bio_errors}, and the cffi
C{OpenSSL._util.ffi}/C{lib}.
"""

from ._excepthook import quiet_excepthook_for
from ._groups import set_groups
from ._hostcheck import HOSTNAME_MISMATCH, IP_ADDRESS_MISMATCH, expect_peer_name
from ._records import (
    TRANSPORT_VARIABLE,
    RecordLayer,
    lean_unavailable,
    record_layer,
    use_lean,
)
from ._sessions import (
    check_ticket_keys_settable,
    session_reused,
    set_session_context_on_client_hello,
    set_ticket_keys,
)
from ._symbols import Unavailable
from ._verify import reject_verified_as_bad_certificate, send_bad_certificate_on_refusal

__all__ = [
    "HOSTNAME_MISMATCH",
    "IP_ADDRESS_MISMATCH",
    "TRANSPORT_VARIABLE",
    "RecordLayer",
    "Unavailable",
    "check_ticket_keys_settable",
    "expect_peer_name",
    "lean_unavailable",
    "quiet_excepthook_for",
    "record_layer",
    "reject_verified_as_bad_certificate",
    "send_bad_certificate_on_refusal",
    "session_reused",
    "set_groups",
    "set_session_context_on_client_hello",
    "set_ticket_keys",
    "use_lean",
]
