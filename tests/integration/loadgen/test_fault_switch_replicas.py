"""A drill reaches every replica of a service: each address the admin name resolves to is switched
on and checked, a replica that joins during the drill is named and switched on too, and every one is
switched off at the end. Each replica here is the services' own admin handler on its own port;
the name's answers come from a resolver the test controls, as DNS would change them."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from grpcdemo.faults import FaultInjector
from grpcdemo.faults.admin import FaultAdmin
from prometheus_client import CollectorRegistry

from loadgen.fault_switch import FaultSwitch, replica_urls
from loadgen.scenarios import SCENARIOS

TOKEN = "replica-drill-token-0123456789"


class Replica:
    def __init__(self) -> None:
        self.injector = FaultInjector("userd", CollectorRegistry())
        admin = FaultAdmin(self.injector, enabled=True, token=TOKEN)

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status, body = admin.handle(
                    self.command, self.path, dict(self.headers), self.rfile.read(length)
                )
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_DELETE = _answer

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def slowed(self) -> bool:
        return "latency" in self.injector.state.active_kinds()


@pytest.fixture
def replicas() -> Iterator[list[Replica]]:
    started = [Replica() for _ in range(4)]
    yield started
    for replica in started:
        replica.server.shutdown()


async def test_every_replica_gets_the_fault_a_joiner_too_and_every_one_loses_it(
    replicas: list[Replica],
) -> None:
    answering = [r.url for r in replicas[:3]]
    out = io.StringIO()
    switch = FaultSwitch(
        SCENARIOS["slow-userd"].faults,
        {"userd": "http://userd:9091", "orderd": "http://orderd:9092"},
        TOKEN,
        out,
        resolve=lambda _url: list(answering),
        recheck_seconds=0.05,
    )
    await switch.switch_on()
    assert [r.slowed for r in replicas] == [True, True, True, False]
    follow = asyncio.create_task(switch.follow())
    answering.append(replicas[3].url)
    for _ in range(100):
        if replicas[3].slowed:
            break
        await asyncio.sleep(0.05)
    follow.cancel()
    assert replicas[3].slowed
    assert (
        f"userd replica {replicas[3].url.removeprefix('http://')} joined during the drill" in out.getvalue()
    )
    # The joiner leaves DNS before the end: it had the fault, so it is switched off all the same.
    answering.remove(replicas[3].url)
    await switch.switch_off()
    assert [r.slowed for r in replicas] == [False] * 4
    for replica in replicas:
        assert f"faults off in userd at {replica.url.removeprefix('http://')}" in out.getvalue()


async def test_a_name_that_resolves_to_nothing_says_what_to_do() -> None:
    out = io.StringIO()
    switch = FaultSwitch(
        SCENARIOS["outage"].faults,
        {"userd": "http://u:1", "orderd": "http://o:1"},
        None,
        out,
        resolve=lambda _u: [],
    )
    await switch.switch_on()
    assert "no replica of userd took the faults" in out.getvalue()
    assert switch.applied == {}


def test_replica_urls_lists_every_address_once_and_nothing_for_an_unknown_name() -> None:
    assert replica_urls("http://127.0.0.1:9091") == ["http://127.0.0.1:9091"]
    assert replica_urls("http://name-that-does-not-resolve.invalid:9091") == []
