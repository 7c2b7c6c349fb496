"""
The code blocks of the docs (README.md and docs/*.md), for the tests that run them.

A block may be preceded by a marker comment saying what vouches for it:
C{<!-- example: examples/FILE -->} (the block is that file, which a test runs) or
C{<!-- tested: tests/test_FILE.py -->} (that test reads the block and runs it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(
    r"(?:<!-- (?P<kind>example|tested): (?P<target>\S+) -->\n)?"
    r"^```(?P<language>[\w-]*)\n(?P<text>.*?)^```$",
    re.M | re.S,
)


@dataclass(frozen=True)
class Block:
    """One fenced code block of a Markdown file."""

    path: Path
    line: int
    language: str
    text: str
    kind: str | None
    target: str | None

    @property
    def where(self) -> str:
        """FILE:LINE, for messages."""
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of C{path}, in order."""
    text = path.read_text()
    return [
        Block(
            path,
            text.count("\n", 0, match.start("language")) + 1,
            match["language"],
            match["text"],
            match["kind"],
            match["target"],
        )
        for match in _FENCE.finditer(text)
    ]


def doc_block(doc: str, test: str) -> Block:
    """The one block of C{doc} (relative to the root) marked as run by C{test}."""
    found = [b for b in blocks(ROOT / doc) if b.kind == "tested" and b.target == test]
    assert len(found) == 1, f"{doc}: {len(found)} blocks marked tested: {test}"
    return found[0]
