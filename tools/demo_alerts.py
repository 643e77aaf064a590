"""`make demo-alerts`: with the native stack running (`make up`), run each attack and chaos scenario
of the load generator in turn and report which alert reached the Slack sink and after how long.

An alert counts only when its (alertname, service) pair is one the scenario expects, as read from
the Slack title "[FIRING:1] AlertName on service", and it arrived after the scenario started. Each
scenario runs until all its expected alerts have arrived (or a time limit passes) and is stopped with
SIGINT (the load generator then switches its injected faults off). The next one starts only once
Alertmanager shows no active alert but the Watchdog, so a late notification from one scenario is
never credited to the next. Exit code 0 when every expected alert arrived."""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parent.parent
LOADGEN = Path(sys.executable).parent / "loadgen"
POLL_SECONDS = 3.0


@dataclass(frozen=True, order=True)
class AlertKey:
    """What Alertmanager groups notifications by (alertmanager.yml: `group_by: [alertname, service]`)."""

    alertname: str
    service: str

    def __str__(self) -> str:
        return f"{self.alertname} on {self.service}"


# The `service` labels come from prometheus/rules/alerts.yml: each rule keeps the `service` target
# label of the series it evaluates.
EXPECTED: dict[str, tuple[AlertKey, ...]] = {
    "bruteforce": (AlertKey("InvalidLoginSpike", "userd"),),
    "outage": (AlertKey("HighGRPCFailures", "orderd"), AlertKey("OrderCreationFailing", "orderd")),
    "slow": (AlertKey("GRPCLatencyP95High", "orderd"),),
    "errors": (AlertKey("GRPCServerErrorRateHigh", "orderd"), AlertKey("ErrorBudgetBurnFast", "orderd")),
}

# The heartbeat fires all the time by design; it is never a scenario's alert.
ALWAYS_FIRING = frozenset({"Watchdog"})

Status = Literal["firing", "resolved"]

# alertmanager/templates/slack.tmpl: "[FIRING:<n>] <alertname> on <service>" or "[RESOLVED] …".
_TITLE = re.compile(r"\[(?P<status>FIRING:\d+|RESOLVED)\] (?P<alertname>\w+) on (?P<service>[\w.-]+)")


@dataclass(frozen=True)
class Arrival:
    key: AlertKey
    status: Status
    received_at: datetime


def parse_title(title: str) -> tuple[AlertKey, Status] | None:
    """The alert and status a Slack title names; None for a title of another shape."""
    match = _TITLE.fullmatch(title.strip())
    if match is None:
        return None
    status: Status = "resolved" if match["status"] == "RESOLVED" else "firing"
    return AlertKey(match["alertname"], match["service"]), status


def arrivals(sink_body: dict[str, Any]) -> list[Arrival]:
    """Every alert notification in a GET /api/messages answer of the Slack sink."""
    found = []
    for message in sink_body["messages"]:
        received = datetime.fromisoformat(message["received_at"])
        for attachment in message["payload"].get("attachments", []):
            parsed = parse_title(attachment.get("title", ""))
            if parsed is not None:
                found.append(Arrival(parsed[0], parsed[1], received))
    return found


def first_firing(found: Iterable[Arrival], key: AlertKey, since: datetime) -> datetime | None:
    """When `key` first reached Slack as firing at or after `since`."""
    times = [a.received_at for a in found if a.key == key and a.status == "firing" and a.received_at >= since]
    return min(times) if times else None


def blocking_alerts(alertmanager_body: list[dict[str, Any]]) -> list[AlertKey]:
    """The alerts in a GET /api/v2/alerts answer that must clear before a scenario starts."""
    keys = {
        AlertKey(alert["labels"].get("alertname", ""), alert["labels"].get("service", ""))
        for alert in alertmanager_body
    }
    return sorted(key for key in keys if key.alertname not in ALWAYS_FIRING)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - the local stack's URLs
        return json.load(response)


def sink_arrivals(sink: str) -> list[Arrival]:
    return arrivals(get_json(f"{sink}/api/messages"))


def active_alerts(alertmanager: str) -> list[AlertKey]:
    # Silenced or inhibited alerts send no notification, so they cannot be miscredited.
    query = urllib.parse.urlencode({"active": "true", "silenced": "false", "inhibited": "false"})
    return blocking_alerts(get_json(f"{alertmanager}/api/v2/alerts?{query}"))


def wait_quiet(
    alertmanager: str,
    limit: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[AlertKey]:
    """Waits up to `limit` seconds for Alertmanager to hold no active alert but the Watchdog;
    returns what is still active (empty when quiet)."""
    deadline = clock() + limit
    active = active_alerts(alertmanager)
    if active:
        print(f"  waiting for {', '.join(map(str, active))} to resolve", flush=True)
    while active and clock() < deadline:
        sleep(POLL_SECONDS)
        active = active_alerts(alertmanager)
    return active


def run_scenario(scenario: str, rps: float, sink: str, limit: float) -> dict[AlertKey, float | None]:
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
    seen: dict[AlertKey, float | None] = dict.fromkeys(expected)
    try:
        while time.monotonic() - clock < limit and any(v is None for v in seen.values()):
            if proc.poll() is not None:
                print(f"  loadgen exited early with code {proc.returncode}", flush=True)
                break
            found = sink_arrivals(sink)
            for key in expected:
                if seen[key] is None and (at := first_firing(found, key, started)) is not None:
                    seen[key] = (at - started).total_seconds()
                    print(f"  {key} arrived after {seen[key]:.0f}s", flush=True)
            time.sleep(2)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return seen


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sink", default="http://127.0.0.1:9095", help="the Slack sink of the running stack")
    parser.add_argument(
        "--alertmanager", default="http://127.0.0.1:9093", help="the Alertmanager of the running stack"
    )
    parser.add_argument("--rps", type=float, default=10.0)
    parser.add_argument("--limit", type=float, default=360.0, help="seconds a scenario may take to page")
    parser.add_argument(
        "--quiet-limit",
        type=float,
        default=600.0,
        help="seconds to wait before a scenario for the previous alerts to resolve",
    )
    parser.add_argument("scenarios", nargs="*", help=f"default: all of {', '.join(EXPECTED)}")
    args = parser.parse_args(argv)
    unknown = [s for s in args.scenarios if s not in EXPECTED]
    if unknown:
        parser.error(f"unknown scenario {unknown[0]!r}; choose from {', '.join(EXPECTED)}")
    args.scenarios = args.scenarios or list(EXPECTED)
    for what, url, probe in (
        ("Slack sink", args.sink, sink_arrivals),
        ("Alertmanager", args.alertmanager, active_alerts),
    ):
        try:
            probe(url)
        except (urllib.error.URLError, OSError):
            print(
                f"no {what} at {url}: start the stack first (`make up` in another terminal)", file=sys.stderr
            )
            return 2
    results: list[tuple[str, AlertKey, float | None]] = []
    skipped: list[tuple[str, AlertKey]] = []
    for scenario in args.scenarios:
        expected = EXPECTED[scenario]
        print(f"scenario {scenario}: expecting {', '.join(map(str, expected))}", flush=True)
        still_active = wait_quiet(args.alertmanager, args.quiet_limit)
        # An alert outside this scenario's expectations cannot be miscredited (matching is by
        # alertname and service), so only an expected one that is still active forces a skip.
        clashing = [key for key in still_active if key in expected]
        if clashing:
            print(f"  skipped: still active after {args.quiet_limit:.0f}s: {', '.join(map(str, clashing))}")
            skipped += [(scenario, key) for key in expected]
            continue
        if still_active:
            print(f"  starting anyway; still active, not expected here: {', '.join(map(str, still_active))}")
        seen = run_scenario(scenario, args.rps, args.sink, args.limit)
        results += [(scenario, key, seconds) for key, seconds in seen.items()]
    print("\nscenario      alert                                seconds to Slack")
    for scenario, key, seconds in results:
        shown = f"{seconds:.0f}" if seconds is not None else f"NOT within {args.limit:.0f}s"
        print(f"{scenario:<13} {key!s:<36} {shown}")
    for scenario, key in skipped:
        print(f"{scenario:<13} {key!s:<36} not measured: still active from before")
    return 0 if not skipped and all(seconds is not None for _, _, seconds in results) else 1


if __name__ == "__main__":
    sys.exit(main())
