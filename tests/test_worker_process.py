"""
Tests for L{tlsecho._app._worker_process}: how the main process of C{--workers} hands
its listening sockets to a worker, and how the worker finds them (no processes).
"""

from __future__ import annotations

import socket

import pytest

from tlsecho._app._worker_process import (
    FIRST_SOCKET,
    SOCKETS_ENVIRONMENT,
    WORKER_ENVIRONMENT,
    handover,
    inherited_sockets,
)


def test_not_a_worker() -> None:
    """Outside a worker there are no inherited sockets."""
    assert inherited_sockets({}) is None
    assert inherited_sockets({SOCKETS_ENVIRONMENT: "3:2"}) is None


def test_handover_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the main process hands over, the worker reads back, in --listen order."""
    monkeypatch.setenv("LISTEN_FDS", "2")
    monkeypatch.setenv("TLSECHO_TEST_KEPT", "yes")
    sockets = [(11, socket.AF_INET), (12, socket.AF_INET6), (14, socket.AF_UNIX)]
    environment, inherited = handover(2, sockets)
    assert environment[WORKER_ENVIRONMENT] == "2"
    assert environment["TLSECHO_TEST_KEPT"] == "yes"
    assert "LISTEN_FDS" not in environment  # systemd's are the main process's
    assert inherited == {FIRST_SOCKET: 11, FIRST_SOCKET + 1: 12, FIRST_SOCKET + 2: 14}
    assert inherited_sockets(environment) == [
        (FIRST_SOCKET + index, family) for index, (_, family) in enumerate(sockets)
    ]


def test_worker_without_sockets() -> None:
    """A worker given no sockets finds an empty list."""
    environment, inherited = handover(1, [])
    assert inherited == {}
    assert inherited_sockets(environment) == []
