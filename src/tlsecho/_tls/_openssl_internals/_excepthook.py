"""
Silence, for chosen exception types, the traceback pyOpenSSL prints for an
exception raised in the SNI callback.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["quiet_excepthook_for"]

_quieted: set[type[BaseException]] = set()


def quiet_excepthook_for(kind: type[BaseException]) -> None:
    """
    Install, once per process, a C{sys.excepthook} that stays silent for
    C{kind} (and its subclasses) and passes everything else on.

    No OpenSSL call: pyOpenSSL's (26.4) C{set_tlsext_servername_callback}
    wrapper reports an exception from the callback through C{sys.excepthook}
    (a traceback on standard error) and then makes OpenSSL send a fatal alert
    (unrecognized_name).  Raising is the only way to refuse a name, so for a
    deliberate refusal that traceback is noise.  This patches a process-wide
    hook; it cannot be unavailable.  Removed by: pyOpenSSL letting the SNI
    callback refuse (return an alert) without raising, or keeping the
    exception for the caller as its other callbacks do.
    """
    if kind in _quieted:
        return
    _quieted.add(kind)
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], value: BaseException, tb: Any) -> None:
        if not issubclass(exc_type, tuple(_quieted)):
            previous(exc_type, value, tb)

    sys.excepthook = hook
