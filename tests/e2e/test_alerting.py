"""End to end on real processes: Prometheus and Alertmanager from the Debian packages with the
repo's configs, both services, the Slack sink and the load generator, as `make up` starts them.
Every target is scraped, the heartbeat reaches its own receiver, a brute-force burst pages, every
link of a delivered alert resolves, a killed service comes back, and the README's "Try it" block
runs as written. Measured times to detect are printed (run with -s to see them). A service held down:
test_service_down.py."""

from __future__ import annotations

import re
import subprocess
import time
import urllib.request

import grpc
import pytest
from grpcdemo.genproto.user.v1 import user_pb2, user_pb2_grpc

from tests.e2e.alerts import ALERT_TIMEOUT, arrived
from tests.support.live_stack import LiveStack, http_ok, wait_until
from tests.support.processes import ROOT

pytestmark = pytest.mark.e2e


def test_targets_up_and_traffic_flows(live_stack: LiveStack) -> None:
    def all_up() -> bool:
        up = {r["metric"]["job"]: r["value"][1] for r in live_stack.query("up")}
        return all(up.get(job) == "1" for job in ("userd", "orderd", "prometheus", "alertmanager", "loadgen"))

    wait_until(all_up, 60, "every target up")
    wait_until(
        lambda: bool(
            live_stack.query('sum(rate(grpc_server_handled_total{job="orderd",grpc_code="OK"}[1m])) > 0')
        ),
        60,
        "orderd serving traffic",
    )
    wait_until(
        lambda: bool(
            live_stack.query('sum(rate(grpc_client_handled_total{job="orderd",grpc_code="OK"}[1m])) > 0')
        ),
        30,
        "orderd -> userd client calls recorded",
    )
    # Watchdog goes to its own receiver, never to a people channel.
    wait_until(lambda: arrived(live_stack, "Watchdog"), 60, "Watchdog heartbeat")
    for message in live_stack.slack_messages():
        titles_here = [a.get("title", "") for a in message["payload"].get("attachments", [])]
        if any("Watchdog" in t for t in titles_here):
            assert message["hook"].endswith("heartbeat")


# The README's "Try it" block runs as written against the native stack: the same commands, with
# only the documented default addresses replaced by the test stack's (it runs on free ports).
def try_it_block() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Try it") :]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match, "no sh block under ### Try it"
    return match.group(1)


def test_the_try_it_block_runs(live_stack: LiveStack) -> None:
    wait_until(lambda: bool(live_stack.query('up{job="orderd"} == 1')), 60, "orderd scraped")
    wait_until(
        lambda: bool(
            live_stack.query('sum(rate(grpc_client_handled_total{job="orderd",grpc_code="OK"}[1m])) > 0')
        ),
        60,
        "orderd authenticating through userd",
    )
    ports = live_stack.ports
    script = (
        try_it_block()
        .replace(
            "tools/call.py",
            f"tools/call.py --userd {live_stack.userd_target} --orderd {live_stack.orderd_target}",
        )
        .replace("127.0.0.1:50051", live_stack.userd_target)
        .replace("127.0.0.1:50052", live_stack.orderd_target)
        .replace("127.0.0.1:9092", f"127.0.0.1:{ports.orderd.metrics}")
        .replace("127.0.0.1:9091", f"127.0.0.1:{ports.userd[0].metrics}")
    )
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"total_cents": "2500"' in result.stdout
    assert 'orderd_service_total_orders_total{result="success"' in result.stdout


def test_bruteforce_logins_page(live_stack: LiveStack) -> None:
    wait_until(lambda: bool(live_stack.query('up{job="userd"} == 1')), 60, "userd scraped")
    target = live_stack.userd_target
    started = time.monotonic()
    with grpc.insecure_channel(target) as channel:
        users = user_pb2_grpc.UserServiceStub(channel)
        users.Register(
            user_pb2.RegisterRequest(email="victim@example.com", password="the-right-one", name="V")
        )
        for attempt in range(20):
            with pytest.raises(grpc.RpcError) as caught:
                users.Login(
                    user_pb2.LoginRequest(email="victim@example.com", password=f"guess-{attempt:04d}")
                )
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    wait_until(lambda: arrived(live_stack, "InvalidLoginSpike on userd"), ALERT_TIMEOUT, "InvalidLoginSpike")
    print(
        f"\ntime to detect: InvalidLoginSpike reached Slack {time.monotonic() - started:.1f}s after the burst began"
    )


def test_a_killed_service_is_restarted_while_the_rest_keeps_serving(live_stack: LiveStack) -> None:
    """`kill -9` of userd: the supervisor reports it and restarts it with backoff; Prometheus,
    Alertmanager and orderd never stop answering; userd serves again within 30 s."""
    wait_until(lambda: bool(live_stack.query('up{job="userd"} == 1')), 60, "userd scraped")
    live_stack.kill("userd")

    def userd_serves() -> bool:
        try:
            with grpc.insecure_channel(live_stack.userd_target) as channel:
                user_pb2_grpc.UserServiceStub(channel).Login(
                    user_pb2.LoginRequest(email="nobody@example.com", password="x" * 12), timeout=2
                )
        except grpc.RpcError as error:
            return error.code() == grpc.StatusCode.UNAUTHENTICATED
        return True

    back = wait_until(userd_serves, 30, "userd serving again after kill -9")
    print(f"\nuserd back {back:.1f}s after kill -9")
    assert back < 30

    # Leave the stack as found: orderd authenticates through the new userd too (its channel's
    # reconnect backoff is capped at 2 s), seen as orderd's successful calls to userd growing.
    def orderd_ok() -> float:
        result = live_stack.query('sum(grpc_client_handled_total{job="orderd", grpc_code="OK"})')
        return float(result[0]["value"][1]) if result else 0.0

    before = orderd_ok()
    wait_until(lambda: orderd_ok() > before, 60, "orderd authenticating through userd again")
    for url in (f"{live_stack.prometheus_url}/-/ready", f"{live_stack.alertmanager_url}/-/ready"):
        assert http_ok(url), url
    assert live_stack.query('up{job="orderd"} == 1')


def test_every_link_of_every_delivered_alert_resolves(live_stack: LiveStack) -> None:
    """Runbook links (served by the Slack sink) and silence links (Alertmanager) answer 200, on the
    test stack's ports in place of the documented ones; dashboard links name a provisioned dashboard
    and its variables (no Grafana runs here)."""
    wait_until(lambda: arrived(live_stack, "InvalidLoginSpike on userd"), ALERT_TIMEOUT, "an alert delivered")
    documented = {
        "127.0.0.1:9095": f"127.0.0.1:{live_stack.ports.slacksink}",
        "127.0.0.1:9093": f"127.0.0.1:{live_stack.ports.alertmanager}",
    }
    followed: set[str] = set()
    for message in live_stack.slack_messages():
        for attachment in message["payload"].get("attachments", []):
            for action in attachment.get("actions", []):
                url = action["url"]
                for local, actual in documented.items():
                    url = url.replace(local, actual)
                if "/runbook#" in url:
                    page, anchor = url.split("#", 1)
                    with urllib.request.urlopen(page, timeout=5) as response:
                        assert response.status == 200
                        assert f'id="{anchor}"'.encode() in response.read(), url
                    followed.add("runbook")
                elif "/#/silences/new" in url:
                    assert http_ok(url.split("#", 1)[0]), url
                    followed.add("silence")
                else:
                    dashboard = re.fullmatch(r"http://127\.0\.0\.1:3000/d/([\w-]+)(?:\?.*)?", url)
                    assert dashboard, url
                    assert (ROOT / "grafana" / "dashboards" / f"{dashboard.group(1)}.json").is_file(), url
                    followed.add("dashboard")
    assert followed == {"runbook", "silence", "dashboard"}
