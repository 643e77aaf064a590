"""The docker compose path, rehearsed without Docker (tools/rehearsal): docker-compose.yml's own
services, commands, environment, mounts and health checks, with userd x3 and orderd x2 behind a real
DNS server that answers each service name with its running replicas, as Docker's does. The compose
load generator runs as compose starts it; drills run the way `make chaos-*` runs them in compose (a
one-off container of the loadgen service, with the Makefile's own command).

What the compose path must do, each measured here: every replica scraped; calls spread over the
replicas for orderd's and the generator's traffic alike; a replica stopped costs at most 1% of calls
and none after 2 s; a drill reaches every replica, also one that joins, and ends on every one; the
whole of userd stopped (`make chaos-down` in compose) pages once, and resolves."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from rehearsal.stack import Rehearsal, Replica

from tests.support.live_stack import http_json, wait_until
from tests.support.observability_echo import Scrape
from tests.support.processes import ROOT
from tests.support.rehearsal import prometheus_query, running_rehearsal, scrape, url

pytestmark = [pytest.mark.e2e, pytest.mark.rehearsal]

USERD, ORDERD = 3, 2
USER_SERVICE = "user.v1.UserService"
# What a caller counts as the system's failure (loadgen's `code` label, Go spelling).
SERVER_FAULTS = {"Unavailable", "DeadlineExceeded", "Canceled", "Internal", "Unknown", "ResourceExhausted"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rehearsal]:
    yield from running_rehearsal(tmp_path_factory.mktemp("rehearsal"), {"userd": USERD, "orderd": ORDERD})


def makefile_drill_command() -> list[str]:
    """The command `make loadgen`/`chaos-*` run in compose: the Makefile's LOADGEN_COMPOSE after
    `docker compose run --rm --no-deps loadgen`."""
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    match = re.search(r"^LOADGEN_COMPOSE := (.*)$", text, re.MULTILINE)
    assert match, "the Makefile has no LOADGEN_COMPOSE"
    words = shlex.split(match.group(1))
    assert words[:6] == ["docker", "compose", "run", "--rm", "--no-deps", "loadgen"], words
    return words[6:]


def drill(stack: Rehearsal, *args: str) -> Replica:
    return stack.run("loadgen", [*makefile_drill_command(), *args])


def finish(replica: Replica, timeout: float = 120.0) -> str:
    assert replica.process is not None
    try:
        replica.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        replica.process.send_signal(signal.SIGTERM)
        replica.process.wait(timeout=30)
    return replica.log.read_text(errors="replace")


def samples(scrape_: Scrape, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in scrape_.samples.items() if n == name and wanted <= set(ls))


def userd_metrics(stack: Rehearsal, index: int) -> Scrape:
    return scrape(url(stack, "userd", 9091, "/metrics", index))


def loadgen_counts(stack: Rehearsal, replica: Replica) -> tuple[float, float]:
    """(calls, server-fault failures) the one-off generator has counted so far."""
    found = scrape(f"http://{replica.address}:9097/metrics")
    calls = failures = 0.0
    for (name, labels), value in found.samples.items():
        if name == "loadgen_requests_total":
            calls += value
            failures += value if dict(labels)["code"] in SERVER_FAULTS else 0.0
    return calls, failures


def test_every_replica_is_scraped_and_probed_through_compose_dns(stack: Rehearsal) -> None:
    def all_up() -> bool:
        up = prometheus_query(stack, 'up{job=~"userd|orderd"} == 1')
        return len(up) == USERD + ORDERD

    wait_until(all_up, 60, "5 userd/orderd instances up in Prometheus")
    instances = {r["metric"]["instance"] for r in prometheus_query(stack, 'up{job=~"userd|orderd"}')}
    assert instances == {f"{a}:9091" for a in stack.addresses("userd")} | {
        f"{a}:9092" for a in stack.addresses("orderd")
    }
    wait_until(
        lambda: (
            {r["metric"]["instance"] for r in prometheus_query(stack, 'probe_success{job="blackbox"} == 1')}
            == {"userd:50051", "orderd:50052"}
        ),
        60,
        "black-box probes of userd:50051 and orderd:50052 succeeding",
    )
    # Loki is not rehearsed: its name does not resolve, and the log exporter drops, counted.
    wait_until(
        lambda: samples(userd_metrics(stack, 1), "log_records_dropped_total") > 0,
        60,
        "userd counting the log records Loki never took",
    )


def test_calls_spread_over_every_userd_replica(stack: Rehearsal) -> None:
    output = finish(drill(stack, "--rps", "25", "--duration", "25", "--users", "6"), timeout=120)
    assert "users ready" in output, output[-2000:]
    scrapes = [userd_metrics(stack, n) for n in range(1, USERD + 1)]
    # Me: orderd authenticates every call of its own there (about two thirds of all Me calls), the
    # generator calls it directly for the rest. 47% is below what either would give one replica if
    # it pinned its calls there: pinned orderd traffic alone is ~67%, a pinned generator ~55%.
    me = [
        samples(s, "grpc_server_handled_total", grpc_service=USER_SERVICE, grpc_method="Me") for s in scrapes
    ]
    # Register and Login come only from the generators (both pools' setup and the mix).
    direct = [
        samples(s, "grpc_server_handled_total", grpc_service=USER_SERVICE, grpc_method=m)
        for s in scrapes
        for m in ("Register", "Login")
    ]
    direct_per_replica = [sum(direct[2 * n : 2 * n + 2]) for n in range(USERD)]
    print(f"Me per replica: {me}; Register+Login per replica: {direct_per_replica}")
    assert sum(me) > 500
    for name, counts in (("Me", me), ("Register+Login", direct_per_replica)):
        shares = [count / sum(counts) for count in counts]
        assert all(0.20 <= share <= 0.47 for share in shares), f"{name} shares {shares}"


def test_one_userd_replica_stopped_costs_at_most_one_percent_of_calls(stack: Rehearsal) -> None:
    generator = drill(
        stack, "--rps", "25", "--duration", "90", "--users", "6", "--metrics-addr", "0.0.0.0:9097"
    )
    try:

        def under_way() -> bool:
            try:
                return loadgen_counts(stack, generator)[0] > 100
            except OSError:  # not listening yet: its pool is being set up
                return False

        wait_until(under_way, 90, "the one-off generator under way")
        timeline: list[tuple[float, float, float]] = []
        exited: list[float] = []

        def stop_replica() -> None:
            stack.stop("userd", USERD)
            exited.append(time.monotonic())

        stopper = threading.Thread(target=stop_replica)
        stopped_at = time.monotonic()
        stopper.start()
        while not exited or time.monotonic() < exited[0] + 15:
            timeline.append((time.monotonic(), *loadgen_counts(stack, generator)))
            time.sleep(0.5)
        stopper.join()
    finally:
        generator_output = finish(generator, timeout=0.1)
    (_start, calls0, failed0), (_, calls1, failed1) = timeline[0], timeline[-1]
    failed_at = [t for (t, _, f), (_, _, before) in zip(timeline[1:], timeline, strict=False) if f > before]
    drain = exited[0] - stopped_at
    print(
        f"replica 3: SIGTERM to exit {drain:.1f}s; calls {calls1 - calls0:.0f}, failed {failed1 - failed0:.0f}; "
        f"failures at {[round(t - exited[0], 1) for t in failed_at]} s from its exit"
    )
    assert failed1 - failed0 <= 0.01 * (calls1 - calls0), generator_output[-2000:]
    assert all(t <= exited[0] + 2 for t in failed_at), (
        "calls still failed more than 2 s after the replica stopped"
    )
    assert stack.addresses("userd") == [stack.address("userd", n) for n in range(1, USERD)]
    stack.start("userd")
    wait_until(lambda: all(stack.healthy(r) for r in stack.replicas["userd"]), 60, "userd replica 3 back")


def faults_of(stack: Rehearsal, index: int) -> dict[str, object]:
    token = stack.project.services["userd"].environment["FAULT_INJECTION_TOKEN"]
    request = urllib.request.Request(
        url(stack, "userd", 9091, "/admin/faults", index), headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        answer: dict[str, object] = json.loads(response.read())
        return answer


def test_a_drill_reaches_every_replica_also_one_that_joins_and_ends_on_every_one(stack: Rehearsal) -> None:
    generator = drill(stack, "--scenario", "slow-userd", "--rps", "10", "--duration", "35", "--users", "6")
    try:
        wait_until(
            lambda: all(faults_of(stack, n)["latency"] for n in range(1, USERD + 1)),
            60,
            "the slow drill on every userd replica",
        )
        stack.scale_to("userd", USERD + 1)
        joiner = stack.address("userd", USERD + 1)
        wait_until(
            lambda: f"userd replica {joiner}:9091 joined during the drill" in generator.log.read_text(),
            60,
            "the drill naming the replica that joined",
        )
        wait_until(lambda: bool(faults_of(stack, USERD + 1)["latency"]), 30, "the joiner slowed too")
        output = finish(generator, timeout=90)
        for n in range(1, USERD + 2):
            assert faults_of(stack, n)["latency"] is None, f"replica {n} still slowed after the drill"
            assert f"faults off in userd at {stack.address('userd', n)}:9091" in output
        # Each replica's own series shows the drill: Me calls slower than 100 ms on every replica.
        for n in range(1, USERD + 1):
            found = userd_metrics(stack, n)
            labels = {"grpc_service": USER_SERVICE, "grpc_method": "Me"}
            slow = samples(found, "grpc_server_handling_seconds_count", **labels) - samples(
                found, "grpc_server_handling_seconds_bucket", le="0.1", **labels
            )
            assert slow > 0, f"replica {n} shows no slow Me call"
    finally:
        if generator.process is not None and generator.process.poll() is None:
            generator.process.send_signal(signal.SIGTERM)
        stack.scale_to("userd", USERD)


def sink_titles(stack: Rehearsal, since: datetime) -> list[str]:
    answer = http_json(url(stack, "slacksink", 9095, "/api/messages"))
    titles = []
    for message in answer["messages"]:
        if datetime.fromisoformat(message["received_at"]) >= since:
            titles += [a.get("title", "") for a in message["payload"].get("attachments", [])]
    return titles


def test_the_whole_userd_service_stopped_pages_once_and_resolves(stack: Rehearsal) -> None:
    since = datetime.now(UTC)
    started = time.monotonic()
    stack.stop("userd")  # `make chaos-down` in compose: `docker compose stop userd`
    assert stack.addresses("userd") == []

    def paged() -> bool:
        return any(
            "ServiceDown" in t and "userd" in t and "RESOLVED" not in t for t in sink_titles(stack, since)
        )

    wait_until(paged, 90 - (time.monotonic() - started), "ServiceDown for userd in the Slack sink")
    paged_after = time.monotonic() - started
    stack.start("userd")
    wait_until(
        lambda: any(
            "RESOLVED" in t and "ServiceDown" in t and "userd" in t for t in sink_titles(stack, since)
        ),
        150,
        "ServiceDown for userd resolved in the Slack sink",
    )
    firing = [t for t in sink_titles(stack, since) if "RESOLVED" not in t and "Watchdog" not in t]
    print(f"paged {paged_after:.0f}s after the stop; notifications: {firing}")
    assert all("ServiceDown" in t for t in firing), f"one outage, more than one page: {firing}"
