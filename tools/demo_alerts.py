"""`make demo-alerts`: with the native stack running (`make up`), set off every alert that a demo can
set off, one after another, and report how long each took to arrive; for each alert that a demo cannot
set off, say why and which test proves it instead. It prints its expected total duration first.

Arrivals are read from the Slack sink when the stack notifies it (the default), or from
Alertmanager's API when a real webhook is configured (SLACK_WEBHOOK_URL in .env), since then the
notifications leave the machine; with Alertmanager itself held down, from Prometheus's alert API.
It says which it reads. An alert counts only when its (alertname, service) pair is one the demo
expects and it arrived after the demo started. Each demo runs until its alerts have arrived (or a
time limit passes) and then undoes its fault; the next one starts only once Alertmanager holds
none of the alerts it expects, so a late notification is never credited to the wrong demo. Exit
code 0 when every driven alert arrived."""

from __future__ import annotations

import argparse
import json
import os
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

from nativestack.supervisor import write_hold

ROOT = Path(__file__).resolve().parent.parent
LOADGEN = Path(sys.executable).parent / "loadgen"
POLL_SECONDS = 3.0
# How long a demo may take to set off its alerts before it counts as failed.
DEFAULT_LIMIT_SECONDS = 600.0


@dataclass(frozen=True, order=True)
class AlertKey:
    """What Alertmanager groups notifications by (alertmanager.yml: `group_by: [alertname, service]`)."""

    alertname: str
    service: str

    def __str__(self) -> str:
        return f"{self.alertname} on {self.service}"


# The `service` labels come from prometheus/rules/alerts.yml: each rule keeps the `service` target
# label of the series it evaluates (file_sd), or sets it (the Watchdog).
RUN = ROOT / ".run"
BROKEN_RULES = ROOT / "prometheus" / "rules" / "demo-broken.yml"  # git-ignored; removed afterwards
BROKEN_RULES_TEXT = """# Written by `make demo-alerts` and removed when it ends: a rule that fails at every evaluation
# (many-to-many matching), so PrometheusRuleEvaluationFailures fires.
groups:
  - name: demo_broken
    rules:
      - record: demo:broken:many_to_many
        expr: up * on () group_left up
"""

Source = Literal["sink", "alertmanager", "prometheus"]


@dataclass(frozen=True)
class Stack:
    sink: str
    alertmanager: str
    prometheus: str
    rps: float
    source: Source


Undo = Callable[[], None]


def loadgen_scenario(scenario: str) -> Callable[[Stack], Undo]:
    def start(stack: Stack) -> Undo:
        proc = subprocess.Popen(
            [str(LOADGEN), "--scenario", scenario, "--rps", str(stack.rps), "--metrics-addr", "",
             "--progress-interval", "60"],
            cwd=ROOT,
        )  # fmt: skip

        def stop() -> None:
            # SIGINT: the load generator switches its injected faults off before it exits.
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()

        return stop

    return start


def hold_down(component: str, seconds: float) -> Callable[[Stack], Undo]:
    """What `make chaos-down` does: the native supervisor stops it and starts it again after
    `seconds`, or as soon as the demo is over."""

    def start(_stack: Stack) -> Undo:
        write_hold(RUN, component, seconds)
        return lambda: (RUN / "hold" / component).unlink(missing_ok=True)

    return start


def reload_prometheus(stack: Stack) -> None:
    request = urllib.request.Request(f"{stack.prometheus}/-/reload", method="POST")  # noqa: S310 - local
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - the local stack's URL
        pass


def broken_rule(stack: Stack) -> Undo:
    BROKEN_RULES.write_text(BROKEN_RULES_TEXT)
    reload_prometheus(stack)

    def undo() -> None:
        BROKEN_RULES.unlink(missing_ok=True)
        reload_prometheus(stack)

    return undo


@dataclass(frozen=True)
class Demo:
    name: str
    how: str
    alerts: tuple[AlertKey, ...]
    typical_seconds: int  # measured on the native stack, 2 cores
    start: Callable[[Stack], Undo]
    # Alertmanager held down cannot tell: Prometheus's own alert API can.
    seen_in: Source | None = None
    needs_sink: bool = False


DEMOS: tuple[Demo, ...] = (
    Demo("bruteforce", "make attack-bruteforce", (AlertKey("InvalidLoginSpike", "userd"),), 90,
         loadgen_scenario("bruteforce")),
    Demo("outage", "make chaos-outage",
         (AlertKey("HighGRPCFailures", "orderd"), AlertKey("OrderCreationFailing", "orderd")), 210,
         loadgen_scenario("outage")),
    Demo("slow", "make chaos-slow", (AlertKey("GRPCLatencyP95High", "orderd"),), 210, loadgen_scenario("slow")),
    Demo("errors", "make chaos-errors",
         (AlertKey("GRPCServerErrorRateHigh", "orderd"), AlertKey("ErrorBudgetBurnFast", "orderd")), 240,
         loadgen_scenario("errors")),
    Demo("down", "make chaos-down SVC=userd", (AlertKey("ServiceDown", "userd"),), 60, hold_down("userd", 300)),
    # The same outage seen black-box: muted in Slack by ServiceDown (one outage, one page), firing in
    # Prometheus.
    Demo("probe", "make chaos-down SVC=userd (the gRPC health probe of 127.0.0.1:50051 fails)",
         (AlertKey("BlackboxProbeFailed", "userd"),), 135, hold_down("userd", 300), seen_in="prometheus"),
    Demo("broken-rule", "a rule file that fails at every evaluation, then Prometheus reloaded",
         (AlertKey("PrometheusRuleEvaluationFailures", "prometheus"),), 330, broken_rule),
    Demo("no-alertmanager", "make chaos-down SVC=alertmanager",
         (AlertKey("PrometheusNotConnectedToAlertmanager", "prometheus"),), 150,
         hold_down("alertmanager", 600), seen_in="prometheus"),
    Demo("sink-down", "make chaos-down SVC=slacksink (the receiver stops answering)",
         (AlertKey("AlertmanagerNotificationsFailing", "alertmanager"),), 480,
         hold_down("slacksink", 900), seen_in="alertmanager", needs_sink=True),
)  # fmt: skip

# The alerts no demo sets off, each with why and what proves it instead.
NOT_DEMOED: dict[str, str] = {
    "Watchdog": "always firing by design; checked before the first demo (heartbeat receiver); "
    "prometheus/tests/alerts_business_meta_test.yml",
    "DatabaseUnavailable": "natively the database is an embedded SQLite file that cannot be cut off "
    "(with compose: `docker compose stop postgres`); tests/integration/test_database_outage.py cuts a "
    "TCP proxy to PostgreSQL, prometheus/tests/alerts_business_meta_test.yml proves the rule",
    "ServiceRecentlyDown": "never notifies anyone: it holds for 5 minutes after ServiceDown (the down "
    "demo sets it off) as the source of inhibitions; prometheus/tests/replicas_test.yml proves the rule, "
    "tests/e2e/test_compose_rehearsal.py that an outage pages once",
    "ErrorBudgetBurnSlow": "needs 20% errors for about 20 minutes (`for: 15m` over 30 m and 6 h "
    "windows); prometheus/tests/slo_test.yml and tests/stack/test_alert_volume.py prove it",
}


# Alerts no demo waits for to clear: the heartbeat fires all the time by design, and
# ServiceRecentlyDown holds for 5 minutes after any ServiceDown, notifying no one.
ALWAYS_FIRING = frozenset({"Watchdog", "ServiceRecentlyDown"})

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
    expected: Iterable[AlertKey] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[AlertKey]:
    """Waits up to `limit` seconds for Alertmanager to hold none of `expected` (default: no active
    alert but the Watchdog); returns what is still active (empty when quiet). Other alerts cannot be
    credited to the next demo, which matches by (alertname, service), so they need not resolve
    first. An Alertmanager that does not answer (the supervisor is starting it again after a demo
    held it down) counts as not quiet yet."""
    deadline = clock() + limit
    unreachable = [AlertKey("Alertmanager", "unreachable")]
    wanted = None if expected is None else set(expected)

    def poll() -> list[AlertKey]:
        try:
            active = active_alerts(alertmanager)
        except (urllib.error.URLError, OSError):
            return unreachable
        return active if wanted is None else [key for key in active if key in wanted]

    active = poll()
    if active:
        print(f"  waiting for {', '.join(map(str, active))} to resolve", flush=True)
    while active and clock() < deadline:
        sleep(POLL_SECONDS)
        active = poll()
    return active


def firing_now(stack: Stack, source: Source, since: datetime) -> set[AlertKey]:
    if source == "sink":
        return {a.key for a in sink_arrivals(stack.sink) if a.status == "firing" and a.received_at >= since}
    if source == "alertmanager":
        return set(active_alerts(stack.alertmanager))
    body = get_json(f"{stack.prometheus}/api/v1/alerts")
    return {
        AlertKey(alert["labels"].get("alertname", ""), alert["labels"].get("service", ""))
        for alert in body["data"]["alerts"]
        if alert.get("state") == "firing"
    }


def run_demo(demo: Demo, stack: Stack, limit: float) -> dict[AlertKey, float | None]:
    source = demo.seen_in or stack.source
    print(f"demo {demo.name} ({demo.how}): expecting {', '.join(map(str, demo.alerts))}, "
          f"typically {demo.typical_seconds // 60} min {demo.typical_seconds % 60} s; reading {source}",
          flush=True)  # fmt: skip
    started = datetime.now(UTC)
    clock = time.monotonic()
    seen: dict[AlertKey, float | None] = dict.fromkeys(demo.alerts)
    undo = demo.start(stack)
    try:
        while time.monotonic() - clock < limit and any(v is None for v in seen.values()):
            try:
                now = firing_now(stack, source, started)
            except (urllib.error.URLError, OSError):
                now = set()  # a component on its way back; ask again
            for key in demo.alerts:
                if seen[key] is None and key in now:
                    seen[key] = time.monotonic() - clock
                    print(f"  {key} arrived after {seen[key]:.0f}s", flush=True)
            time.sleep(2)
    finally:
        undo()
    return seen


def expected_total(demos: Sequence[Demo]) -> int:
    return sum(d.typical_seconds for d in demos)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sink", default="http://127.0.0.1:9095", help="the Slack sink of the running stack")
    parser.add_argument(
        "--alertmanager", default="http://127.0.0.1:9093", help="the Alertmanager of the running stack"
    )
    parser.add_argument(
        "--prometheus", default="http://127.0.0.1:9090", help="the Prometheus of the running stack"
    )
    parser.add_argument("--rps", type=float, default=10.0)
    parser.add_argument(
        "--limit", type=float, default=DEFAULT_LIMIT_SECONDS, help="seconds a demo may take to page"
    )
    parser.add_argument(
        "--quiet-limit",
        type=float,
        default=600.0,
        help="seconds to wait before a demo for its alerts to resolve from an earlier one",
    )
    parser.add_argument(
        "--webhook",
        action="store_true",
        default=bool(os.environ.get("SLACK_WEBHOOK_URL")),
        help="a real Slack webhook receives the alerts (default: when SLACK_WEBHOOK_URL is set): "
        "read arrivals from Alertmanager's API instead of the sink",
    )
    names = [d.name for d in DEMOS]
    parser.add_argument("demos", nargs="*", help=f"default: all of {', '.join(names)}")
    args = parser.parse_args(argv)
    unknown = [n for n in args.demos if n not in names]
    if unknown:
        parser.error(f"unknown demo {unknown[0]!r}; choose from {', '.join(names)}")
    source: Source = "alertmanager" if args.webhook else "sink"
    stack = Stack(args.sink, args.alertmanager, args.prometheus, args.rps, source)
    demos = [d for d in DEMOS if not args.demos or d.name in args.demos]
    skipped_by_webhook = [d for d in demos if d.needs_sink and args.webhook]
    demos = [d for d in demos if d not in skipped_by_webhook]
    probes: list[tuple[str, str, Callable[[str], Any]]] = [
        ("Alertmanager", args.alertmanager, active_alerts),
        ("Prometheus", args.prometheus, lambda url: get_json(f"{url}/api/v1/alerts")),
    ]
    if not args.webhook:
        probes.append(("Slack sink", args.sink, sink_arrivals))
    for what, url, probe in probes:
        try:
            probe(url)
        except (urllib.error.URLError, OSError):
            print(
                f"no {what} at {url}: start the stack first (`make up` in another terminal)", file=sys.stderr
            )
            return 2
    total = expected_total(demos)
    print(f"{len(demos)} demos, about {total // 60} minutes in all (more if an earlier alert must resolve "
          f"first); arrivals read from {'Alertmanager' if args.webhook else 'the Slack sink'}", flush=True)  # fmt: skip
    for alert, why in NOT_DEMOED.items():
        print(f"  not demoed: {alert}: {why}")
    for demo in skipped_by_webhook:
        print(
            f"  not demoed: {', '.join(map(str, demo.alerts))}: needs the local sink to stop (real webhook set)"
        )
    watchdog = AlertKey("Watchdog", "prometheus")
    if watchdog not in firing_now(stack, "prometheus", datetime.now(UTC)):
        print("  the Watchdog is not firing: rule evaluation is broken", file=sys.stderr)
        return 1
    results: list[tuple[str, AlertKey, float | None]] = []
    skipped: list[tuple[str, AlertKey]] = []
    try:
        for demo in demos:
            still_active = wait_quiet(args.alertmanager, args.quiet_limit, expected=demo.alerts)
            clashing = [key for key in still_active if key in demo.alerts]
            if clashing:
                print(
                    f"  skipped {demo.name}: still active after {args.quiet_limit:.0f}s: {', '.join(map(str, clashing))}"
                )
                skipped += [(demo.name, key) for key in demo.alerts]
                continue
            seen = run_demo(demo, stack, args.limit)
            results += [(demo.name, key, seconds) for key, seconds in seen.items()]
    finally:
        BROKEN_RULES.unlink(missing_ok=True)
    print(f"\n{'demo':<16} {'alert':<52} seconds")
    for name, key, seconds in results:
        shown = f"{seconds:.0f}" if seconds is not None else f"NOT within {args.limit:.0f}s"
        print(f"{name:<16} {key!s:<52} {shown}")
    for name, key in skipped:
        print(f"{name:<16} {key!s:<52} not measured: still active from before")
    return 0 if not skipped and all(seconds is not None for _, _, seconds in results) else 1


if __name__ == "__main__":
    sys.exit(main())
