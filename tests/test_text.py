"""
Tests for L{tlsecho._settings._text.printable}: peer-chosen text made inert for one
log line.
"""

from __future__ import annotations

import unicodedata

import pytest

from tlsecho._settings._text import ELLIPSIS, MAX_PEER_TEXT, printable


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("alice.example", "alice.example"),
        ("café ünïcode", "café ünïcode"),
        ("a\x1b[31mb", "a\\x1b[31mb"),
        ("line\r\nforged", "line\\r\\nforged"),
        ("tab\there", "tab\\there"),
        ("bell\x07", "bell\\x07"),
        ("nul\x00", "nul\\x00"),
        ("del\x7f", "del\\x7f"),
        ("nel\x85csi\x9b", "nel\\x85csi\\x9b"),
        ("ls\u2028ps\u2029", "ls\\u2028ps\\u2029"),
        ("rlo\u202egnp.exe", "rlo\\u202egnp.exe"),
        ("zw\u200bsp\ufeff", "zw\\u200bsp\\ufeff"),
        ("lone\ud800surrogate", "lone\\ud800surrogate"),
        ("tag\U000e0041", "tag\\U000e0041"),
        (b"bytes\xff\xfe", "bytes\\xff\\xfe"),
        (b"caf\xc3\xa9", "café"),
        (b"esc\x1b", "esc\\x1b"),
        (None, "None"),
        (42, "42"),
        ("back\\slash", "back\\slash"),
    ],
)
def test_escapes_what_could_move_the_cursor_or_end_a_line(
    value: str | bytes | None, shown: str
) -> None:
    """Controls, separators, format characters, surrogates and bytes that are not
    UTF-8 are written as escapes; everything else is kept."""
    assert printable(value) == shown


def test_output_never_holds_a_line_break_or_control() -> None:
    """For every code point of the planes in use, the output holds no control,
    separator or format character."""
    points = [*range(0x20000), *range(0xE0000, 0xE1000), 0x10FFFF]
    everything = "".join(chr(c) for c in points if not 0xD800 <= c <= 0xDFFF)
    shown = printable(everything, limit=10**8)
    assert not any(
        unicodedata.category(c) in {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"} for c in shown
    )
    assert shown.splitlines() == [shown]


def test_caps_length_with_an_ellipsis() -> None:
    """Text longer than the cap is cut to it, with an ellipsis."""
    assert printable("a" * MAX_PEER_TEXT) == "a" * MAX_PEER_TEXT
    assert printable("a" * (MAX_PEER_TEXT + 1)) == "a" * MAX_PEER_TEXT + ELLIPSIS
    assert printable("a" * 10_000) == "a" * MAX_PEER_TEXT + ELLIPSIS


def test_cap_counts_escapes_and_never_cuts_one() -> None:
    """The cap counts the escaped text, and an escape is never cut in two."""
    shown = printable("ab" + "\x1b" * 100, limit=10)
    assert shown == "ab\\x1b\\x1b" + ELLIPSIS


def test_never_raises_on_odd_objects() -> None:
    """An object whose str() raises is shown by its type."""

    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert printable(Hostile()) == "<Hostile>"  # type: ignore[arg-type]
