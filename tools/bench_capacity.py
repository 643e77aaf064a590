"""`make bench-capacity`: the highest steady rate the load generator sustains against userd and
orderd on this machine with zero errors, and the latency at each step.

Starts both services as processes on free loopback ports (SQLite in a temp dir, bcrypt at the
production cost unless --bcrypt-rounds says otherwise), or with --running uses the stack `make up`
runs (Prometheus scraping, Alertmanager and the background generator included), then runs the steady
mix open-loop at increasing rates, each for --seconds, and prints one row per step from the
generator's JSON summary. Stops at the first step with errors or drops: past it nothing is clean.
Numbers, not a test: on a shared 2-core machine they move by ±20% from run to run."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_serving(target: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        check = subprocess.run(
            [str(BIN / "grpc-healthcheck"), target, "--timeout", "1"],
            capture_output=True,
            check=False,
        )
        if check.returncode == 0:
            return
        time.sleep(0.2)
    raise SystemExit(f"nothing serving at {target} after {timeout:.0f}s")


def start_services(work: Path, bcrypt_rounds: int) -> tuple[dict[str, str], list[subprocess.Popen[bytes]]]:
    """userd and orderd as processes on free ports, SQLite under `work`."""
    ports = {name: free_port() for name in ("userd", "userd_m", "orderd", "orderd_m")}
    common = {**os.environ, "LOG_LEVEL": "warning"}
    services = [
        subprocess.Popen(
            [str(BIN / "userd")],
            env={
                **common,
                "GRPC_ADDR": f"127.0.0.1:{ports['userd']}",
                "METRICS_ADDR": f"127.0.0.1:{ports['userd_m']}",
                "DATABASE_URL": f"sqlite+aiosqlite:///{work}/userd.sqlite3",
                "JWT_SECRET": os.urandom(32).hex(),
                "BCRYPT_ROUNDS": str(bcrypt_rounds),
            },
        ),
        subprocess.Popen(
            [str(BIN / "orderd")],
            env={
                **common,
                "GRPC_ADDR": f"127.0.0.1:{ports['orderd']}",
                "METRICS_ADDR": f"127.0.0.1:{ports['orderd_m']}",
                "DATABASE_URL": f"sqlite+aiosqlite:///{work}/orderd.sqlite3",
                "USERD_ADDR": f"127.0.0.1:{ports['userd']}",
            },
        ),
    ]
    return {"userd": f"127.0.0.1:{ports['userd']}", "orderd": f"127.0.0.1:{ports['orderd']}"}, services


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rates", default="50,100,150,200,250", help="comma-separated requests/s steps")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of each step")
    parser.add_argument("--bcrypt-rounds", type=int, default=12)
    parser.add_argument("--running", action="store_true", help="measure the stack `make up` runs")
    args = parser.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",")]

    work = Path(tempfile.mkdtemp(prefix="bench-capacity-"))
    if args.running:
        targets = {"userd": "127.0.0.1:50051", "orderd": "127.0.0.1:50052"}
        services: list[subprocess.Popen[bytes]] = []
    else:
        targets, services = start_services(work, args.bcrypt_rounds)
    rows = []
    try:
        for target in targets.values():
            wait_serving(target)
        for rate in rates:
            out = work / f"summary-{rate:g}.json"
            subprocess.run(
                [
                    str(BIN / "loadgen"),
                    "--rps", f"{rate:g}",
                    "--duration", f"{args.seconds:g}",
                    "--seed", "1",
                    "--users", "20",
                    "--pool-file", str(work / "pool.json"),
                    "--target-userd", targets["userd"],
                    "--target-orderd", targets["orderd"],
                    "--metrics-addr", "",
                    "--progress-interval", "60",
                    "--json", str(out),
                ],
                check=False,
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            if not out.exists():
                print(f"{rate:>7g}/s  the load generator failed (no summary); stopping", flush=True)
                break
            summary = json.loads(out.read_text())
            total = summary["total"]
            rows.append((rate, summary["achieved_rps"], summary["dropped"], summary["unexpected"], total))
            print(
                f"{rate:>7g}/s  achieved {summary['achieved_rps']:7.1f}/s  dropped {summary['dropped']:>5}  "
                f"errors {summary['unexpected']:>5}  p50 {total['p50_ms']:8.1f} ms  p99 {total['p99_ms']:8.1f} ms",
                flush=True,
            )
            if summary["dropped"] or summary["unexpected"]:
                break
    finally:
        for proc in services:
            proc.terminate()
            proc.wait(timeout=15)
    clean = [row for row in rows if row[2] == 0 and row[3] == 0]
    if clean:
        best = max(clean, key=lambda row: row[0])
        against = "the running stack" if args.running else f"fresh services, bcrypt cost {args.bcrypt_rounds}"
        print(f"\nhighest zero-error step: {best[0]:g}/s (p99 {best[4]['p99_ms']:.0f} ms, {against})")
    else:
        print("\nno step ran without errors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
