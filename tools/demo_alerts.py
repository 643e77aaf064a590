"""`make demo-alerts`: with the native stack running (`make up`), run each attack and chaos scenario
of the load generator in turn and report which alert reached the Slack sink and after how long.

Each scenario runs until all its expected alerts have arrived (or a time limit passes), is stopped
with SIGINT (the load generator then switches its injected faults off), and the next one starts only
once the previous alerts have resolved, so one scenario's alerts are not credited to the next.
Exit code 0 when every expected alert arrived."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOADGEN = Path(sys.executable).parent / "loadgen"

EXPECTED: dict[str, tuple[str, ...]] = {
    "bruteforce": ("InvalidLoginSpike",),
    "outage": ("HighGRPCFailures", "OrderCreationFailing"),
    "slow": ("GRPCLatencyP95High",),
    "errors": ("GRPCServerErrorRateHigh", "ErrorBudgetBurnFast"),
}


@dataclass(frozen=True)
class Arrival:
    alertname: str
    status: str
    received_at: datetime


def messages(sink: str) -> list[Arrival]:
    with urllib.request.urlopen(f"{sink}/api/messages", timeout=5) as response:  # noqa: S310 - local sink
        body = json.load(response)
    found = []
    for message in body["messages"]:
        received = datetime.fromisoformat(message["received_at"])
        for attachment in message["payload"].get("attachments", []):
            # Titles read "[FIRING:1] AlertName on service" / "[RESOLVED] AlertName on service".
            words = attachment.get("title", "").split()
            if len(words) >= 2:
                found.append(Arrival(words[1], message["status"], received))
    return found


def arrived_since(sink: str, alertname: str, status: str, since: datetime) -> datetime | None:
    times = [a.received_at for a in messages(sink) if a.alertname == alertname and a.status == status]
    later = [t for t in times if t >= since]
    return min(later) if later else None


def run_scenario(scenario: str, rps: float, sink: str, limit: float) -> dict[str, float | None]:
    expected = EXPECTED[scenario]
    started = datetime.now(UTC)
    clock = time.monotonic()
    proc = subprocess.Popen(
        [
            str(LOADGEN),
            "--scenario",
            scenario,
            "--rps",
            str(rps),
            "--metrics-addr",
            "",
            "--progress-interval",
            "30",
        ],
        cwd=ROOT,
    )
    seen: dict[str, float | None] = dict.fromkeys(expected)
    try:
        while time.monotonic() - clock < limit and any(v is None for v in seen.values()):
            if proc.poll() is not None:
                print(f"  loadgen exited early with code {proc.returncode}", flush=True)
                break
            for alertname in expected:
                if seen[alertname] is None:
                    at = arrived_since(sink, alertname, "firing", started)
                    if at is not None:
                        seen[alertname] = (at - started).total_seconds()
                        print(f"  {alertname} arrived after {seen[alertname]:.0f}s", flush=True)
            time.sleep(2)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return seen


def wait_resolved(sink: str, alertnames: Sequence[str], since: datetime, limit: float) -> None:
    deadline = time.monotonic() + limit
    pending = [name for name in alertnames if arrived_since(sink, name, "firing", since) is not None]
    while pending and time.monotonic() < deadline:
        pending = [name for name in pending if arrived_since(sink, name, "resolved", since) is None]
        time.sleep(3)
    if pending:
        print(f"  still firing after {limit:.0f}s: {', '.join(pending)} (continuing)", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sink", default="http://127.0.0.1:9095", help="the Slack sink of the running stack")
    parser.add_argument("--rps", type=float, default=10.0)
    parser.add_argument("--limit", type=float, default=360.0, help="seconds a scenario may take to page")
    parser.add_argument("scenarios", nargs="*", help=f"default: all of {', '.join(EXPECTED)}")
    args = parser.parse_args(argv)
    unknown = [s for s in args.scenarios if s not in EXPECTED]
    if unknown:
        parser.error(f"unknown scenario {unknown[0]!r}; choose from {', '.join(EXPECTED)}")
    args.scenarios = args.scenarios or list(EXPECTED)
    try:
        messages(args.sink)
    except (urllib.error.URLError, OSError):
        print(
            f"no Slack sink at {args.sink}: start the stack first (`make up` in another terminal)",
            file=sys.stderr,
        )
        return 2
    results: list[tuple[str, str, float | None]] = []
    for scenario in args.scenarios:
        print(f"scenario {scenario}: expecting {', '.join(EXPECTED[scenario])}", flush=True)
        started = datetime.now(UTC)
        seen = run_scenario(scenario, args.rps, args.sink, args.limit)
        results += [(scenario, name, seconds) for name, seconds in seen.items()]
        wait_resolved(args.sink, EXPECTED[scenario], started, limit=300)
    print("\nscenario      alert                      seconds to Slack")
    for scenario, name, seconds in results:
        shown = f"{seconds:.0f}" if seconds is not None else f"NOT within {args.limit:.0f}s"
        print(f"{scenario:<13} {name:<26} {shown}")
    return 0 if all(seconds is not None for _, _, seconds in results) else 1


if __name__ == "__main__":
    sys.exit(main())
