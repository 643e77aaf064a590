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
import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

sys.path.insert(0, str(ROOT / "tools"))
from nativestack.components import StackOverrides, service_components, services_settings  # noqa: E402
from nativestack.supervisor import running  # noqa: E402


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


def measure(
    targets: dict[str, str], rates: list[float], seconds: float, work: Path
) -> list[tuple[float, float, int, int, dict[str, float]]]:
    """One loadgen run per rate; stops at the first step with errors or drops."""
    rows: list[tuple[float, float, int, int, dict[str, float]]] = []
    for target in targets.values():
        wait_serving(target)
    for rate in rates:
        out = work / f"summary-{rate:g}.json"
        subprocess.run(
            [
                str(BIN / "loadgen"),
                "--rps", f"{rate:g}",
                "--duration", f"{seconds:g}",
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
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rates", default="100,200,300,400,500", help="comma-separated requests/s steps")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of each step")
    parser.add_argument("--bcrypt-rounds", type=int, default=12)
    parser.add_argument("--running", action="store_true", help="measure the stack `make up` runs")
    args = parser.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",")]

    work = Path(tempfile.mkdtemp(prefix="bench-capacity-"))
    with contextlib.ExitStack() as cleanup:
        if args.running:
            targets = {"userd": "127.0.0.1:50051", "orderd": "127.0.0.1:50052"}
        else:
            # The services as `make up` starts them (tools/nativestack), SQLite under `work`.
            settings = services_settings(
                work, overrides=StackOverrides(service_env={"BCRYPT_ROUNDS": str(args.bcrypt_rounds)})
            )
            env = {
                **os.environ,
                "JWT_SECRET": secrets.token_hex(32),
                "FAULT_INJECTION_TOKEN": secrets.token_hex(16),
            }
            cleanup.enter_context(running(service_components(settings), settings.run_dir, env))
            targets = {"userd": settings.ports.userd[0].grpc_addr, "orderd": settings.ports.orderd.grpc_addr}
        rows = measure(targets, rates, args.seconds, work)
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
