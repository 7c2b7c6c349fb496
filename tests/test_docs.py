"""
The docs a newcomer reads can be trusted: every code block that claims to run is run by
a test, every other one says it is illustrative, links lead somewhere, and the README's
five-minute tour runs as printed.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import tomllib
from pathlib import Path

import pytest

from tlsecho._settings._options import OPTIONS

from _docs import DOCS, ROOT, Block, blocks, doc_block
from _processes import BIN

ALL_BLOCKS = [block for path in DOCS for block in blocks(path)]
#: Languages whose blocks show output or formats, which do not claim to run.
NOT_CODE = {"text", ""}
RUNNABLE = [b for b in ALL_BLOCKS if b.language not in NOT_CODE | {"toml"}]
TESTS = ROOT / "tests"


def _ids(items: list[Block]) -> list[str]:
    return [b.where for b in items]


def test_readme_begins_with_the_two_commands() -> None:
    """The README begins with the two dev.py commands, exactly (CI and users use them)."""
    head = (ROOT / "README.md").read_text().splitlines()[:6]
    assert head == [
        "# tlsecho",
        "",
        "```sh",
        "python3 dev.py serve   # set up .venv and run the server on the development "
        "default (localhost:8443)",
        "python3 dev.py test    # set up .venv and run everything: ruff, mypy, packaging "
        "check, all tests",
        "```",
    ]


@pytest.mark.parametrize("block", RUNNABLE, ids=_ids(RUNNABLE))
def test_each_code_block_runs_or_says_it_is_illustrative(block: Block) -> None:
    """
    A code block is a file of examples/ (shown whole), is read and run by a named
    test, or begins with "# Illustrative"; Python blocks are always example files.
    """
    if block in ALL_BLOCKS[:2]:
        return  # the README's first two: pinned above (.ci/run runs dev.py test)
    if block.kind == "example":
        assert block.target is not None
        example = ROOT / block.target
        assert example.parent == ROOT / "examples", block.where
        assert block.text.strip() == example.read_text().strip(), (
            f"{block.where} differs from {block.target}"
        )
        return
    assert block.language != "python", f"{block.where}: Python must be an examples/ file"
    if block.kind == "tested":
        assert block.target is not None
        test = ROOT / block.target
        assert test.exists(), block.where
        doc = str(block.path.relative_to(ROOT))
        assert doc in test.read_text(), f"{block.target} does not read {doc}"
        return
    assert block.text.startswith("# Illustrative"), (
        f"{block.where}: neither run by a test nor marked '# Illustrative'"
    )


def test_every_example_is_run_by_a_test() -> None:
    """Each file of examples/ is named by a test that runs it (not only by this one)."""
    sources = "".join(
        path.read_text() for path in TESTS.glob("test_*.py") if path.name != "test_docs.py"
    )
    for example in sorted((ROOT / "examples").iterdir()):
        if example.suffix in {".py", ".sh"}:
            assert f'"{example.name}"' in sources, example.name


TOML = [b for b in ALL_BLOCKS if b.language == "toml"]


@pytest.mark.parametrize("block", TOML, ids=_ids(TOML))
def test_toml_blocks_use_real_keys(block: Block) -> None:
    """TOML shown in the docs parses, and its keys are options of the server."""
    names = {option.name for option in OPTIONS}
    data = tomllib.loads(block.text)
    for key in data:
        assert key.replace("_", "-") in names, f"{block.where}: unknown key {key}"
    for table in data.get("sni", []):
        assert set(table) <= {"name", "cert", "key"}, block.where


def test_local_links_lead_somewhere() -> None:
    """Every relative link of the docs names a file or directory that exists."""
    for path in DOCS:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", path.read_text()):
            if "://" in target:
                continue
            assert (path.parent / target).exists(), f"{path.name}: {target}"


def test_docs_name_no_private_module() -> None:
    """The docs name commands, flags, keys and public names, never private modules."""
    for path in DOCS:
        found = re.findall(r"\b_[a-z_]+\.py\b", path.read_text())
        assert not found, f"{path.name}: {found}"


def test_no_twistd_without_pidfile() -> None:
    """A twistd example either runs in the foreground without a pid file or says where."""
    for path in DOCS:
        for line in path.read_text().splitlines():
            for match in re.finditer(r"twistd (-n|--nodaemon)\b[^`]*", line):
                assert "--pidfile" in match[0], f"{path.name}: {line}"


# The five-minute tour -----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.subprocess
def test_the_tour_runs(tmp_path: Path) -> None:
    """
    The README's tour, run by bash as printed but for its port (a free one instead of
    8443, given to the server with --listen) and the sleep (a wait until it listens):
    the versions, an intact echo, a verbose one, a refused name, and check's report.
    """
    block = doc_block("README.md", "tests/test_docs.py")
    port = _free_port()
    wait = (
        f"for i in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null "
        "&& break; sleep 0.2; done"
    )
    script = block.text.replace(
        "twist tlsecho & sleep 3",
        f"twist tlsecho --listen tcp:{port}:interface=127.0.0.1 & {wait}",
    ).replace("localhost:8443", f"localhost:{port}")
    assert "8443" not in script, script
    script = script.replace("\n", '\necho "== $?"\n')  # each command's exit status
    result = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
        stdin=subprocess.DEVNULL,
        check=False,
    )
    out, err = result.stdout, result.stderr
    statuses = re.findall(r"^== (\d+)$", out, re.M)
    # --version, twist &, client, client -v, wrong name, check, kill
    assert statuses[:6] == ["0", "0", "0", "0", "4", "0"], out + err
    assert re.search(r"^tlsecho \S+ \(Twisted \S+, pyOpenSSL \S+, OpenSSL ", out, re.M), out
    assert out.count("\nhi\n") == 2, out
    assert "certificate verify failed: hostname mismatch" in err, err
    assert "TLSv1.3" in err or "TLS 1.3" in err, err
    assert "result: " in out, out
    # --version, the server's start line and check's report name pyOpenSSL's version.
    assert out.count("pyOpenSSL") >= 3, out
