"""Command line of the load generator, parsed into one immutable config."""

from __future__ import annotations

import argparse
import os
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from loadgen.arrivals import SPACINGS, Spacing
from loadgen.scenarios import SCENARIOS, SpikeSettings


@dataclass(frozen=True)
class LoadgenConfig:
    scenario: str = "steady"
    rps: float = 20.0
    duration: float | None = None
    users: int = 20
    pool_file: Path = Path(".data/loadgen-users.json")
    max_in_flight: int = 200
    seed: int | None = None
    arrivals: Spacing = "poisson"
    target_userd: str = "127.0.0.1:50051"
    target_orderd: str = "127.0.0.1:50052"
    userd_admin: str = "http://127.0.0.1:9091"
    orderd_admin: str = "http://127.0.0.1:9092"
    fault_token: str | None = field(default=None, repr=False)
    metrics_addr: str = "127.0.0.1:9097"
    json_path: Path | None = None
    timeout: float = 5.0
    spike: SpikeSettings = field(default_factory=SpikeSettings)
    progress_interval: float = 10.0
    shutdown_grace: float = 5.0
    explain: bool = False


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _http_url(text: str) -> str:
    parsed = urllib.parse.urlsplit(text)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise argparse.ArgumentTypeError(f"expected a URL like http://127.0.0.1:9091, got {text!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    scenarios = "\n".join(f"  {s.name:<13} {s.summary}" for s in SCENARIOS.values())
    parser = argparse.ArgumentParser(
        prog="loadgen",
        description="Open-loop gRPC load generator for userd and orderd.",
        epilog=f"scenarios:\n{scenarios}\n\nCtrl-C (or SIGTERM) stops scheduling, waits briefly for answers, "
        "prints the summary and switches injected faults off.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--scenario", choices=list(SCENARIOS), default="steady", help="what to run (default: steady)")
    add("--rps", type=_positive_float, default=20.0, help="target arrivals per second (default: 20)")
    add("--duration", type=_positive_float, default=None, help="seconds to run (default: until Ctrl-C)")
    add(
        "--users",
        type=_positive_int,
        default=20,
        help="smallest user pool (default: 20); it holds at least 2 accounts per request/s",
    )
    add(
        "--pool-file",
        type=Path,
        default=Path(".data/loadgen-users.json"),
        help="where pool credentials are kept",
    )
    add(
        "--max-in-flight",
        type=_positive_int,
        default=200,
        help="arrivals beyond this many unanswered are dropped",
    )
    add("--seed", type=int, default=None, help="seed of the mix and baskets (default: random, printed)")
    add(
        "--arrivals",
        choices=SPACINGS,
        default="poisson",
        help="poisson (exponential gaps) or constant spacing",
    )
    add("--target-userd", default="127.0.0.1:50051", metavar="HOST:PORT")
    add("--target-orderd", default="127.0.0.1:50052", metavar="HOST:PORT")
    add(
        "--userd-admin",
        type=_http_url,
        default="http://127.0.0.1:9091",
        metavar="URL",
        help="userd's metrics/admin HTTP base URL",
    )
    add(
        "--orderd-admin",
        type=_http_url,
        default="http://127.0.0.1:9092",
        metavar="URL",
        help="orderd's metrics/admin HTTP base URL",
    )
    add(
        "--fault-token",
        default=None,
        help="bearer token for /admin/faults; prefer $FAULT_INJECTION_TOKEN (arguments show in ps)",
    )
    add(
        "--metrics-addr",
        default="127.0.0.1:9097",
        metavar="HOST:PORT",
        help="/metrics address; 0 or empty: off",
    )
    add(
        "--json",
        dest="json_path",
        type=Path,
        default=None,
        metavar="PATH",
        help="also write the summary as JSON",
    )
    add("--timeout", type=_positive_float, default=5.0, help="deadline of each call in seconds (default: 5)")
    add("--spike-factor", type=_positive_float, default=5.0, help="spike: rate multiplier (default: 5)")
    add("--spike-start", type=float, default=30.0, help="spike: seconds before the spike (default: 30)")
    add("--spike-length", type=_positive_float, default=60.0, help="spike: seconds it lasts (default: 60)")
    add(
        "--progress-interval",
        type=_positive_float,
        default=10.0,
        help="seconds between lines when not on a TTY",
    )
    add(
        "--shutdown-grace",
        type=float,
        default=5.0,
        help="seconds to wait for answers at the end (default: 5)",
    )
    add("--explain", action="store_true", help="print the scenario's mix, rates and faults, then exit")
    return parser


def parse(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> LoadgenConfig:
    args = build_parser().parse_args(argv)
    env = os.environ if environ is None else environ
    return LoadgenConfig(
        scenario=args.scenario,
        rps=args.rps,
        duration=args.duration,
        users=args.users,
        pool_file=args.pool_file,
        max_in_flight=args.max_in_flight,
        seed=args.seed,
        arrivals=args.arrivals,
        target_userd=args.target_userd,
        target_orderd=args.target_orderd,
        userd_admin=args.userd_admin,
        orderd_admin=args.orderd_admin,
        fault_token=args.fault_token or env.get("FAULT_INJECTION_TOKEN") or None,
        metrics_addr=args.metrics_addr,
        json_path=args.json_path,
        timeout=args.timeout,
        spike=SpikeSettings(args.spike_factor, max(0.0, args.spike_start), args.spike_length),
        progress_interval=args.progress_interval,
        shutdown_grace=max(0.0, args.shutdown_grace),
        explain=args.explain,
    )
