"""
C{python -m bench}: run the benchmark, print the table, write the JSON results.

    python -m bench                  # everything, 3 rounds (about 10 minutes)
    python -m bench --quick          # smoke test: seconds, smallest sizes, 1 round
    python -m bench --servers tlsecho,twisted --metrics bulk,pingpong --rounds 5
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from bench import report
from bench.metrics import FULL, METRICS, QUICK
from bench.procs import ROOT
from bench.run import run
from bench.servers import SERVERS, variant


def _choose(text: str | None, known: list[str], what: str) -> list[str]:
    if not text:
        return known
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise SystemExit(
            f"bench: unknown {what}: {', '.join(unknown)} (known: {', '.join(known)})"
        )
    return chosen


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run, report; the exit status is 1 if any step failed."""
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Benchmark tlsecho against its peers."
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: seconds, not minutes"
    )
    parser.add_argument("--rounds", type=int, help="rounds (default 3; 1 with --quick)")
    parser.add_argument(
        "--servers", help="comma-separated subset of: " + ", ".join(s.name for s in SERVERS)
    )
    parser.add_argument(
        "--metrics", help="comma-separated subset of: " + ", ".join(m.name for m in METRICS)
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=SRC",
        help="also run tlsecho imported from SRC (a directory holding the tlsecho "
        "package), as server tlsecho-NAME; repeatable",
    )
    parser.add_argument(
        "--speed-seconds",
        type=int,
        help="seconds per openssl speed test (default 3; 1 with --quick; 0 skips it)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "bench" / "results" / "latest.json",
        help="where to write the JSON results (default bench/results/latest.json)",
    )
    options = parser.parse_args(argv)
    server_names = _choose(options.servers, [s.name for s in SERVERS], "server")
    metric_names = _choose(options.metrics, [m.name for m in METRICS], "metric")
    rounds = options.rounds or (1 if options.quick else 3)
    command = shlex.join(
        ["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)]
    )
    variants = []
    for text in options.variant:
        name, _, source = text.partition("=")
        if not name or not source:
            raise SystemExit(f"bench: --variant wants NAME=SRC, got {text!r}")
        variants.append(variant(name, str(Path(source).resolve())))
    results = run(
        servers=[s for s in SERVERS if s.name in server_names] + variants,
        metrics=[m for m in METRICS if m.name in metric_names],
        sizes=QUICK if options.quick else FULL,
        rounds=rounds,
        speed_seconds=(
            options.speed_seconds
            if options.speed_seconds is not None
            else (1 if options.quick else 3)
        ),
        command=command,
    )
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(results["machine_line"])
    print(f"command: {command}")
    print()
    print(report.table(results))
    print(f"\nresults: {options.output}")
    for failure in results["failures"]:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if results["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
