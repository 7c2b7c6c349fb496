"""
Run the whole benchmark: the crypto bounds, then rounds in which every server is
started in turn and measured on every metric (servers rotate between rounds, so
the order A B C ... A B C ... interleaves them and spreads any drift), then the
summary.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import platform
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import OpenSSL
import twisted

from bench import report, speed
from bench.certs import CertFiles, write_certificates
from bench.metrics import Metric, Sample, Sizes
from bench.procs import BenchError, ServerProcess, raise_open_files_limit
from bench.progress import Progress
from bench.servers import Server


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = 0
    try:
        import psutil

        memory = psutil.virtual_memory().total
    except ImportError:
        pass
    import os

    versions = {
        "python": platform.python_version(),
        # Twisted uses pyOpenSSL's OpenSSL (cryptography's own build); asyncio and
        # uvloop use the ssl module's, which may be another version.
        "OpenSSL for Twisted": OpenSSL.SSL.SSLeay_version(
            OpenSSL.SSL.SSLEAY_VERSION
        ).decode(),
        "OpenSSL for ssl": ssl.OPENSSL_VERSION,
        "pyopenssl": OpenSSL.__version__,
        "twisted": twisted.__version__,
    }
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        versions["uvloop"] = importlib.metadata.version("uvloop")
    if shutil.which("socat"):
        first = subprocess.run(
            ["socat", "-V"], capture_output=True, text=True, check=False
        ).stdout.splitlines()
        versions["socat"] = next(
            (line.split()[2] for line in first if line.startswith("socat version")), "?"
        )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_bytes": memory,
        "system": f"{platform.system()} {platform.release()}",
        "versions": versions,
    }


def machine_line(info: dict[str, Any]) -> str:
    """The machine in one line."""
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    return (
        f"{info['cpu']}, {info['cores']} cores, {info['memory_bytes'] / 2**30:.0f} GiB, "
        f"{info['system']}; {versions}"
    )


def _size(count: int) -> str:
    """A byte count, short."""
    if count >= 1e6:
        return f"{count / 1e6:,.1f} MB"
    return f"{count / 1e3:,.1f} kB" if count >= 1e3 else f"{count} B"


def _outcome(metric: Metric, sample: Sample) -> str:
    text = f"{sample.value:,.2f} {metric.unit}"
    if metric.per_op is not None and sample.server_cpu_per_op is not None:
        text += f", server {sample.server_cpu_per_op:,.1f} {metric.per_op}"
    cpus = []
    if sample.server_cpu is not None:
        cpus.append(f"server {sample.server_cpu:.2f}")
    if sample.client_cpu is not None:
        cpus.append(f"clients {sample.client_cpu:.2f}")
    if cpus:
        text += f" (CPU cores: {', '.join(cpus)})"
    if sample.warmup is not None:
        text += (
            f" [warm: {sample.warmup['connections']} conns, {_size(sample.warmup['bytes'])}"
        )
        if "workers_echoed" in sample.warmup:
            text += f", workers {','.join(sample.warmup['workers_echoed'])}"
        text += "]"
    return text


def _measure_server(
    server: Server,
    metrics: Sequence[Metric],
    sizes: Sizes,
    certs: CertFiles,
    directory: Path,
    round_number: int,
    rounds: int,
    progress: Progress,
    samples: dict[str, dict[str, list[Sample]]],
    failures: list[str],
) -> None:
    """
    Start C{server} and take one sample of each metric (a fresh server for those
    that need one), each right after its warm-up on the same server; the
    server is stopped by its PID whatever happens.
    """
    running: ServerProcess | None = None
    if server.only is not None:
        metrics = [m for m in metrics if m.name in server.only]
    try:
        for metric in metrics:
            what = f"round {round_number + 1}/{rounds} {server.name} {metric.name}"
            progress.start(what)
            try:
                if running is None or metric.fresh_server:
                    if running is not None:
                        running.stop()
                        running = None
                    running = server.start(certs, directory)
                warmup = metric.warm(running, certs, sizes)
                sample = metric.measure(running, certs, sizes)
                sample.warmup = warmup
            except BenchError as e:
                failures.append(f"{what}: {e}")
                progress.finish(what, f"FAILED: {str(e).splitlines()[0]}")
                if running is not None:
                    running.stop()
                    running = None
                continue
            samples[server.name].setdefault(metric.name, []).append(sample)
            progress.finish(what, _outcome(metric, sample))
    finally:
        if running is not None:
            running.stop()


def run(
    servers: Sequence[Server],
    metrics: Sequence[Metric],
    sizes: Sizes,
    rounds: int,
    speed_seconds: int,
    command: str,
) -> dict[str, Any]:
    """Measure every metric on every server for C{rounds} rounds; return the results."""
    open_files = raise_open_files_limit()
    available = [s for s in servers if s.requires() is None]
    skipped = {s.name: str(s.requires()) for s in servers if s.requires() is not None}
    measured = {
        s.name: [m for m in metrics if s.only is None or m.name in s.only]
        for s in available
    }
    per_round = sum(
        1 + sum(1 for m in measured[s.name] if m.fresh_server) for s in available
    )
    steps = sum(len(m) for m in measured.values()) * rounds + (1 if speed_seconds else 0)
    progress = Progress(steps)
    progress.note(
        f"bench: {len(available)} servers x {len(metrics)} metrics x {rounds} rounds "
        f"({per_round * rounds} server starts); open files limit {open_files}"
    )
    for name, why in skipped.items():
        progress.note(f"bench: skipping {name}: {why}")
    samples: dict[str, dict[str, list[Sample]]] = {s.name: {} for s in available}
    failures: list[str] = []
    crypto = None
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="tlsecho-bench-") as temporary:
        directory = Path(temporary)
        certs = write_certificates(directory)
        if speed_seconds:
            progress.start("openssl speed")
            crypto = speed.measure(speed_seconds)
            progress.finish(
                "openssl speed",
                f"AES-256-GCM {crypto.aes256gcm / 1e6:,.0f} MB/s, "
                f"{crypto.handshake_bound():,.0f} handshakes/s bound",
            )
        for round_number in range(rounds):
            shift = round_number % len(available)
            for server in [*available[shift:], *available[:shift]]:
                _measure_server(
                    server,
                    metrics,
                    sizes,
                    certs,
                    directory,
                    round_number,
                    rounds,
                    progress,
                    samples,
                    failures,
                )
    per_op = {m.name: m.per_op for m in metrics}
    summary = {
        name: {
            metric: report.summarize(found, per_op.get(metric))
            for metric, found in by_metric.items()
        }
        for name, by_metric in samples.items()
    }
    info = machine()
    return {
        "command": command,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "seconds": round(time.time() - started, 1),
        "machine": info,
        "machine_line": machine_line(info),
        "rounds": rounds,
        "sizes": vars(sizes)
        if not hasattr(sizes, "__dataclass_fields__")
        else dict((k, getattr(sizes, k)) for k in sizes.__dataclass_fields__),
        "crypto": crypto.as_dict() if crypto else None,
        "servers": {
            s.name: {"description": s.description, "metrics": summary.get(s.name, {})}
            for s in available
        },
        "skipped": skipped,
        "failures": failures,
        "ratios": report.ratios(summary),
        "server_cpu_per_op_ratios": report.cpu_per_op_ratios(summary),
        "workers": report.workers(summary),
        "targets": report.targets(summary, info["cores"]),
        "python": sys.version.split()[0],
    }
