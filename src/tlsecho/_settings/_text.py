"""
Peer-chosen text made safe for one line of a text log.

Whatever a peer chooses (an SNI name, a certificate's names, a PROXY header's
addresses, an ALPN protocol) is shown with L{printable}: every character that
could move the cursor, end or forge a line, or change a terminal's state is
written as a Python-style escape (C{\\x1b}, C{\\r}, C{\\n}, C{\\u2028}), bytes
that are not UTF-8 as C{\\xNN}, and the result is cut at a fixed length with an
ellipsis.  Backslashes are left as they are, so text that is already escaped
(such as a C{repr}) is shown unchanged; the output therefore always stays on
one line and inert, though it does not always say which escapes the peer typed
literally.

This module imports nothing from Twisted or OpenSSL.
"""

from __future__ import annotations

import unicodedata

__all__ = ["ELLIPSIS", "MAX_PEER_TEXT", "printable"]

#: How many characters of one peer-chosen string a log line shows.
MAX_PEER_TEXT = 200

#: What marks text that was cut.
ELLIPSIS = "…"

#: Unicode categories escaped: controls (C0, DEL, C1 including NEL U+0085),
#: format characters (bidirectional overrides, zero-width characters),
#: surrogates, private use, unassigned, and the line and paragraph separators
#: (U+2028, U+2029).
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})

_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(character: str) -> str:
    if character in _SHORT:
        return _SHORT[character]
    code = ord(character)
    if 0xDC80 <= code <= 0xDCFF:
        # A byte that was not UTF-8 (decoded with surrogateescape).
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(value: object, limit: int = MAX_PEER_TEXT) -> str:
    """
    C{value} as inert text for one log line: escaped and at most C{limit}
    characters (plus L{ELLIPSIS} if it was cut).

    Never raises, whatever C{value} holds: bytes are read as UTF-8, each byte
    that is not shown as C{\\xNN}; L{None} is C{"None"}; anything else is
    shown with C{str}.

    @param limit: The most characters to show, counted after escaping; an
        escape is never cut in two.
    """
    if isinstance(value, bytes):
        text = value.decode("utf-8", "surrogateescape")
    elif isinstance(value, str):
        text = value
    else:
        try:
            text = str(value)
        except Exception:
            text = f"<{type(value).__name__}>"
    if len(text) <= limit and text.isascii() and text.isprintable():
        # The common case, at C speed: in ASCII only the controls (category
        # Cc, all unprintable) are escaped.
        return text
    parts: list[str] = []
    length = 0
    for character in text:
        if unicodedata.category(character) in _ESCAPED_CATEGORIES:
            piece = _escape(character)
        else:
            piece = character
        if length + len(piece) > limit:
            parts.append(ELLIPSIS)
            break
        parts.append(piece)
        length += len(piece)
    return "".join(parts)
