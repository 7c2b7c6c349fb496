"""
Turn samples into results: medians and ranges, ratios tlsecho / peer (of the
figures and of the server's CPU per operation), the targets of the performance
issue, a text table and the JSON file.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict
from typing import Any

from bench.metrics import METRICS, Metric, Sample

#: The server every ratio is about (tlsecho on its default, lean TLS transport).
SUBJECT = "tlsecho"
#: tlsecho with --workers 2: compared with SUBJECT, not with the peers.
WORKERS = "tlsecho-workers2"
#: The Python peers the speed targets compare with.
PYTHON_PEERS = ("asyncio", "uvloop", "twisted")
#: Absolute targets: metric -> (limit, what the limit means).
LIMITS = {
    "memory": (32.0, "<= 32 KiB per idle connection"),
    "backpressure": (16.0, "< 16 MiB"),
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


def targets(summary: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each target of the issue: what it asks, tlsecho's figure, and whether it is met."""
    mine = summary.get(SUBJECT, {})
    checks: list[dict[str, Any]] = []
    for metric in METRICS:
        if metric.name not in mine:
            continue
        value = mine[metric.name]["median"]
        if metric.name in LIMITS:
            limit, words = LIMITS[metric.name]
            met = value <= limit if metric.name == "memory" else value < limit
            checks.append(
                {"metric": metric.name, "target": words, "value": value, "met": met}
            )
            continue
        peers = {
            p: summary[p][metric.name]["median"]
            for p in PYTHON_PEERS
            if metric.name in summary.get(p, {})
        }
        if not peers:
            continue
        best = max(peers, key=lambda p: peers[p])
        checks.append(
            {
                "metric": metric.name,
                "target": f">= 1.0x the best Python peer ({best})",
                "value": value / peers[best],
                "met": value >= peers[best],
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
        lines.append("targets:")
        for check in results["targets"]:
            value = check["value"]
            shown = f"{value:.2f}x" if "peer" in check["target"] else _number(value)
            lines.append(
                f"  {'met ' if check['met'] else 'MISS'} {check['metric']:<13}"
                f"{check['target']:<45} tlsecho: {shown}"
            )
    for name, why in results.get("skipped", {}).items():
        lines.append(f"skipped {name}: {why}")
    return "\n".join(lines)
