"""
Turn samples into results: medians and ranges, ratios tlsecho / peer (of the
figures and of the server's CPU per operation), a verdict on each target of
the performance issue (issue 14), a text table and the JSON file.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from bench.metrics import METRICS, Metric, Sample

#: The server every ratio is about (tlsecho on its default, lean TLS transport).
SUBJECT = "tlsecho"
#: tlsecho with --workers 2: compared with SUBJECT, not with the peers.
WORKERS = "tlsecho-workers2"
#: The peers the speed targets name.
ASYNCIO, UVLOOP = "asyncio", "uvloop"
#: The absolute targets.
MEMORY_KIB, BACKPRESSURE_MIB = 32.0, 16.0
#: Ping-pong's load clients saturate, in tlsecho's own ping-pong window (the
#: medians over the rounds), when the server and the clients together use at
#: least this share of the machine's cores (1.90 of 2: nothing is left for
#: the clients to go faster with) ...
FULL_MACHINE = 0.95
#: ... or when the server (one process) uses less than this much of a core
#: (it waited for the clients).
BELOW_A_CORE = 0.90
#: What each target asks, as printed (issue 14, "Targets").
TARGETS = {
    "pingpong": (
        ">= 1.0x asyncio and >= 1.0x uvloop in round trips/s, or server CPU per "
        "round trip <= uvloop's where the load clients saturate"
    ),
    "handshakes": (
        ">= 1.0x uvloop in handshakes/s, and server CPU per handshake <= uvloop's"
    ),
    "bulk": ">= 1.0x asyncio in MB/s",
    "memory": f"<= {MEMORY_KIB:.0f} KiB per idle connection",
    "backpressure": f"< {BACKPRESSURE_MIB:.0f} MiB growth under a client that never reads",
}


def _range(values: list[float], **extra: str) -> dict[str, Any]:
    """Median, minimum and maximum of C{values} (each L{None} if there are none)."""
    return {
        **extra,
        "median": statistics.median(values) if values else None,
        "min": min(values) if values else None,
        "max": max(values) if values else None,
    }


def summarize(samples: list[Sample], per_op: str | None = None) -> dict[str, Any]:
    """
    Median, minimum and maximum of the values, the median CPU use of each side
    and, for a metric that counts operations (C{per_op} is its unit), the
    median, minimum and maximum of the server's CPU per operation, each
    sample's taken from the same window as its value.
    """
    values = [s.value for s in samples]

    def median_of(name: str) -> float | None:
        found = [getattr(s, name) for s in samples if getattr(s, name) is not None]
        return statistics.median(found) if found else None

    summary: dict[str, Any] = {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "server_cpu": median_of("server_cpu"),
        "client_cpu": median_of("client_cpu"),
    }
    if per_op is not None:
        summary["server_cpu_per_op"] = _range(
            [s.server_cpu_per_op for s in samples if s.server_cpu_per_op is not None],
            unit=per_op,
        )
    warmups = [s.warmup for s in samples if s.warmup is not None]
    summary["warmup"] = {
        "rounds": len(warmups),
        "of_rounds": len(samples),
        "connections": min((w["connections"] for w in warmups), default=None),
        "bytes": min((w["bytes"] for w in warmups), default=None),
    }
    summary["samples"] = [asdict(s) for s in samples]
    return summary


def ratios(summary: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """For each peer and metric, tlsecho's median divided by the peer's."""
    result: dict[str, dict[str, float]] = {}
    mine = summary.get(SUBJECT, {})
    for peer, metrics in summary.items():
        if peer in (SUBJECT, WORKERS):
            continue
        for name, peer_summary in metrics.items():
            if name in mine and peer_summary["median"]:
                result.setdefault(peer, {})[name] = (
                    mine[name]["median"] / peer_summary["median"]
                )
    return result


def cpu_per_op_ratios(
    summary: dict[str, dict[str, dict[str, Any]]],
) -> dict[str, dict[str, float]]:
    """
    For each peer and metric that counts operations, tlsecho's median server
    CPU per operation divided by the peer's: lower is better (0.50 means
    tlsecho spends half the peer's CPU on each handshake, round trip or MB).
    """
    result: dict[str, dict[str, float]] = {}
    mine = summary.get(SUBJECT, {})
    for peer, metrics in summary.items():
        if peer in (SUBJECT, WORKERS):
            continue
        for name, peer_summary in metrics.items():
            ours = (mine.get(name) or {}).get("server_cpu_per_op")
            theirs = peer_summary.get("server_cpu_per_op")
            if ours and theirs and ours["median"] is not None and theirs["median"]:
                result.setdefault(peer, {})[name] = ours["median"] / theirs["median"]
    return result


def workers(summary: dict[str, dict[str, dict[str, Any]]]) -> dict[str, float]:
    """For each metric, tlsecho --workers 2 divided by tlsecho (one process)."""
    one, two = summary.get(SUBJECT, {}), summary.get(WORKERS, {})
    return {
        name: two[name]["median"] / one[name]["median"]
        for name in two
        if name in one and one[name]["median"]
    }


Verdict = bool | None


def _all(*checks: Verdict) -> Verdict:
    """Met if every check is, missed if one is not, unknown (L{None}) otherwise."""
    if any(check is False for check in checks):
        return False
    return None if any(check is None for check in checks) else True


def _either(*checks: Verdict) -> Verdict:
    """Met if one check is, missed if none is and every one is known."""
    if any(check is True for check in checks):
        return True
    return None if any(check is None for check in checks) else False


def _compare(value: float | None, test: Callable[[float], bool]) -> Verdict:
    return None if value is None else test(value)


def _times(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}x"


def _figure(value: float | None) -> str:
    return "?" if value is None else _number(value)


def saturated(entry: dict[str, Any], cores: int | None) -> tuple[Verdict, str]:
    """
    Whether the load clients saturate, from one server's summary of a metric
    (its median server and client CPU): the machine is full (server + clients
    >= L{FULL_MACHINE} of C{cores}), or the server used less than
    L{BELOW_A_CORE} of a core.  Returns the verdict and the figures in words.
    """
    server, clients = entry.get("server_cpu"), entry.get("client_cpu")
    if server is None or clients is None:
        return None, "load clients saturate: ? (no CPU figures)"
    total = server + clients
    full = cores is not None and total >= FULL_MACHINE * cores
    below = server < BELOW_A_CORE
    reasons = []
    if full:
        reasons.append(f">= {FULL_MACHINE * (cores or 0):.2f}: the machine is full")
    if below:
        reasons.append(f"server < {BELOW_A_CORE:.2f} core: it waited for the clients")
    words = (
        f"load clients saturate: {'yes' if full or below else 'no'} (server "
        f"{server:.2f} + clients {clients:.2f} = {total:.2f} of {cores or '?'} cores"
        + (f"; {'; '.join(reasons)}" if reasons else "")
        + ")"
    )
    return full or below, words


def targets(
    summary: dict[str, dict[str, dict[str, Any]]], cores: int | None = None
) -> list[dict[str, Any]]:
    """
    A verdict on each target of issue 14 that tlsecho was measured for: what it
    asks (L{TARGETS}), C{met} (L{None} where a figure it needs is missing, such
    as a peer not measured or a CPU time that did not move), the figures it
    rests on, and the same in words.  C{cores} is the machine's, for whether
    ping-pong's load clients saturate (L{saturated}).
    """
    mine = summary.get(SUBJECT, {})

    def median(server: str, metric: str) -> float | None:
        entry = summary.get(server, {}).get(metric)
        return None if entry is None else entry["median"]

    def per_op(server: str, metric: str) -> float | None:
        entry = summary.get(server, {}).get(metric) or {}
        return (entry.get("server_cpu_per_op") or {}).get("median")

    def ratio(
        metric: str, peer: str, of: Callable[[str, str], float | None]
    ) -> float | None:
        ours, theirs = of(SUBJECT, metric), of(peer, metric)
        return ours / theirs if ours is not None and theirs else None

    checks: list[dict[str, Any]] = []
    for metric in METRICS:
        name = metric.name
        if name not in mine:
            continue
        value = mine[name]["median"]
        figures: dict[str, Any] = {"value": value}
        if name == "memory":
            met: Verdict = value <= MEMORY_KIB
            words = f"tlsecho {_number(value)} KiB/conn"
        elif name == "backpressure":
            met = value < BACKPRESSURE_MIB
            words = f"tlsecho {_number(value)} MiB"
        elif name == "bulk":
            figures[ASYNCIO] = ratio(name, ASYNCIO, median)
            met = _compare(figures[ASYNCIO], lambda r: r >= 1.0)
            words = (
                f"tlsecho {_times(figures[ASYNCIO])} asyncio in MB/s "
                f"({_number(value)} vs {_figure(median(ASYNCIO, name))})"
            )
        elif name == "handshakes":
            figures[UVLOOP] = ratio(name, UVLOOP, median)
            figures["server_cpu_per_op"] = per_op(SUBJECT, name)
            figures["uvloop_server_cpu_per_op"] = per_op(UVLOOP, name)
            figures["server_cpu_per_op_uvloop"] = ratio(name, UVLOOP, per_op)
            met = _all(
                _compare(figures[UVLOOP], lambda r: r >= 1.0),
                _compare(figures["server_cpu_per_op_uvloop"], lambda r: r <= 1.0),
            )
            words = (
                f"tlsecho {_times(figures[UVLOOP])} uvloop in hs/s "
                f"({_number(value)} vs {_figure(median(UVLOOP, name))}); server "
                f"{_figure(figures['server_cpu_per_op'])} vs uvloop "
                f"{_figure(figures['uvloop_server_cpu_per_op'])} µs/hs "
                f"({_times(figures['server_cpu_per_op_uvloop'])})"
            )
        elif name == "pingpong":
            for peer in (ASYNCIO, UVLOOP):
                figures[peer] = ratio(name, peer, median)
            figures["server_cpu_per_op"] = per_op(SUBJECT, name)
            figures["uvloop_server_cpu_per_op"] = per_op(UVLOOP, name)
            figures["server_cpu_per_op_uvloop"] = ratio(name, UVLOOP, per_op)
            figures["saturated"], saturation = saturated(mine[name], cores)
            met = _either(
                _all(
                    _compare(figures[ASYNCIO], lambda r: r >= 1.0),
                    _compare(figures[UVLOOP], lambda r: r >= 1.0),
                ),
                _all(
                    _compare(figures["server_cpu_per_op_uvloop"], lambda r: r <= 1.0),
                    figures["saturated"],
                ),
            )
            words = (
                f"tlsecho {_times(figures[ASYNCIO])} asyncio, "
                f"{_times(figures[UVLOOP])} uvloop in rt/s; server "
                f"{_figure(figures['server_cpu_per_op'])} vs uvloop "
                f"{_figure(figures['uvloop_server_cpu_per_op'])} µs/rt "
                f"({_times(figures['server_cpu_per_op_uvloop'])}); {saturation}"
            )
        else:
            continue
        checks.append(
            {
                "metric": name,
                "target": TARGETS[name],
                "met": met,
                "verdict": {True: "met", False: "missed", None: "unknown"}[met],
                "figures": figures,
                "words": words,
            }
        )
    return checks


def _number(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _cell(entry: dict[str, Any] | None) -> str:
    if entry is None or entry["median"] is None:
        return "-"
    return f"{_number(entry['median'])} ({_number(entry['min'])}-{_number(entry['max'])})"


#: Width of the first two columns of the table: the metric (or row) and the unit.
LABEL, UNIT = 16, 10
#: The row under each figure: tlsecho's median divided by each server's.
RATIO_ROW = "  tlsecho/x"
#: The row of the server's CPU per operation; its unit column names the unit.
CPU_PER_OP_ROW = "  server cpu"
#: The row under it: tlsecho's CPU per operation divided by each server's.
CPU_PER_OP_RATIO_ROW = "  tlsecho/x lower=better"


def table(results: dict[str, Any]) -> str:
    """
    The results as a plain-text table (medians, min-max, ratios, server CPU per
    operation and its ratios, CPU in cores, targets).
    """
    servers = [name for name in results["servers"] if results["servers"][name]["metrics"]]
    summary = {name: results["servers"][name]["metrics"] for name in servers}
    ratio = results["ratios"]
    cpu_ratio = results.get("server_cpu_per_op_ratios", {})
    width = max(
        [
            22,
            *(len(_cell(m)) + 2 for s in summary.values() for m in s.values()),
            *(
                len(_cell(m["server_cpu_per_op"])) + 2
                for s in summary.values()
                for m in s.values()
                if m.get("server_cpu_per_op")
            ),
        ]
    )

    def ratio_row(label: str, ratios: dict[str, dict[str, float]], name: str) -> str:
        cells = [
            f"{ratios[s][name]:.2f}x" if name in ratios.get(s, {}) else "" for s in servers
        ]
        return f"{label:<{LABEL + UNIT}}" + "".join(f"{c:<{width}}" for c in cells)

    lines = [
        f"{'metric':<{LABEL}}{'unit':<{UNIT}}"
        + "".join(f"{name:<{width}}" for name in servers),
    ]
    metric: Metric
    for metric in METRICS:
        if not any(metric.name in summary[s] for s in servers):
            continue
        lines.append(
            f"{metric.name:<{LABEL}}{metric.unit:<{UNIT}}"
            + "".join(f"{_cell(summary[s].get(metric.name)):<{width}}" for s in servers)
        )
        lines.append(ratio_row(RATIO_ROW, ratio, metric.name))
        per_op = [summary[s].get(metric.name, {}).get("server_cpu_per_op") for s in servers]
        if metric.per_op is not None and any(per_op):  # present, even if "-"
            lines.append(
                f"{CPU_PER_OP_ROW:<{LABEL}}{metric.per_op:<{UNIT}}"
                + "".join(f"{_cell(entry):<{width}}" for entry in per_op)
            )
            lines.append(ratio_row(CPU_PER_OP_RATIO_ROW, cpu_ratio, metric.name))
        for side in ("server_cpu", "client_cpu"):
            cpus = [summary[s].get(metric.name, {}).get(side) for s in servers]
            if any(c is not None for c in cpus):
                label = f"  {side.replace('_', ' ')}"
                lines.append(
                    f"{label:<{LABEL}}{'cores':<{UNIT}}"
                    + "".join(
                        f"{(f'{c:.2f}' if c is not None else '-'):<{width}}" for c in cpus
                    )
                )
    crypto = results.get("crypto")
    if crypto:
        lines.append("")
        lines.append(
            "openssl speed, one core: "
            f"AES-128-GCM {crypto['aes128gcm'] / 1e6:,.0f} MB/s, "
            f"AES-256-GCM {crypto['aes256gcm'] / 1e6:,.0f} MB/s (16 KiB), "
            f"ECDSA P-256 {crypto['ecdsa_p256_sign']:,.0f} sign/s, "
            f"X25519 {crypto['x25519']:,.0f} op/s"
        )
        bound = crypto["bulk_bound_bytes_per_s"] / 1e6
        handshake_bound = crypto["handshake_bound_per_s"]
        fractions = []
        for s in servers:
            parts = []
            if "bulk" in summary[s]:
                parts.append(f"bulk {summary[s]['bulk']['median'] / bound:.0%}")
            if "handshakes" in summary[s]:
                parts.append(
                    f"handshakes {summary[s]['handshakes']['median'] / handshake_bound:.0%}"
                )
            fractions.append(f"{s}: {', '.join(parts)}")
        lines.append(
            f"crypto bound (1 core): bulk {bound:,.0f} MB/s, {handshake_bound:,.0f} hs/s; "
            "fraction reached: " + "; ".join(fractions)
        )
    if results.get("workers"):
        lines.append("")
        lines.append(
            "--workers 2 / one process: "
            + ", ".join(
                f"{name} {value:.2f}x" for name, value in results["workers"].items()
            )
        )
    if results.get("targets"):
        lines.append("")
        lines.append("targets (issue 14):")
        for check in results["targets"]:
            lines.append(
                f"  {check['verdict'].upper():<8}{check['metric']:<14}{check['target']}"
            )
            lines.append(f"  {'':<8}{'':<14}{check['words']}")
    for name, why in results.get("skipped", {}).items():
        lines.append(f"skipped {name}: {why}")
    return "\n".join(lines)
