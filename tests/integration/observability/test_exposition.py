from __future__ import annotations

import json
import socket
import threading
import urllib.request

import pytest
from grpcdemo.observability.exposition import (
    ExpositionServer,
    HttpRequest,
    HttpResponse,
    parse_listen_address,
    start_exposition,
)
from prometheus_client import CollectorRegistry, Counter

from tests.support.observability_echo import Scrape, http_get

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def registry_with_exemplar() -> CollectorRegistry:
    registry = CollectorRegistry()
    counter = Counter("demo_events", "Events.", registry=registry)
    counter.inc(1, {"trace_id": "0af7651916cd43dd8448eb211c80319c"})
    return registry


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        ("127.0.0.1:9091", ("127.0.0.1", 9091)),
        ("[::1]:0", ("::1", 0)),
        (":9091", ("", 9091)),
        (("127.0.0.1", 0), ("127.0.0.1", 0)),
    ],
)
def test_parse_listen_address(addr: str | tuple[str, int], expected: tuple[str, int]) -> None:
    assert parse_listen_address(addr) == expected


@pytest.mark.parametrize("addr", ["9091", "127.0.0.1:http"])
def test_parse_listen_address_rejects_garbage(addr: str) -> None:
    with pytest.raises(ValueError, match="listen address"):
        parse_listen_address(addr)


def test_port_zero_reports_the_bound_port_and_close_frees_it() -> None:
    for _ in range(10):
        server = start_exposition("127.0.0.1:0", registry=CollectorRegistry())
        port = server.port
        assert port > 0
        assert server.url == f"http://127.0.0.1:{port}"
        status, _, _ = http_get(server.url + "/metrics")
        assert status == 200
        server.close()
        server.close()  # idempotent
        with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=1):
            pass
    assert not [t for t in threading.enumerate() if t.name.startswith("metrics-http-")]


def test_text_format_by_default_without_exemplars() -> None:
    with start_exposition("127.0.0.1:0", registry=registry_with_exemplar()) as server:
        status, headers, body = http_get(server.url + "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    assert "demo_events_total 1.0" in text
    assert "trace_id" not in text
    assert Scrape(text).value("demo_events_total") == 1


def test_openmetrics_when_accept_asks_for_it_with_exemplars() -> None:
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    with start_exposition("127.0.0.1:0", registry=registry_with_exemplar()) as server:
        status, headers, body = http_get(server.url + "/metrics", accept=accept)
    assert status == 200
    assert headers["Content-Type"].startswith(OPENMETRICS)
    text = body.decode()
    assert text.endswith("# EOF\n")
    assert 'demo_events_total 1.0 # {trace_id="0af7651916cd43dd8448eb211c80319c"} 1.0' in text


def test_healthz_follows_the_readiness_callable() -> None:
    ready = {"value": False}
    with start_exposition(
        "127.0.0.1:0", registry=CollectorRegistry(), ready=lambda: ready["value"]
    ) as server:
        assert http_get(server.url + "/healthz")[0] == 503
        ready["value"] = True
        status, _, body = http_get(server.url + "/healthz")
        assert (status, body) == (200, b"ok\n")


def test_healthz_is_503_when_readiness_check_raises() -> None:
    def broken() -> bool:
        raise RuntimeError("db gone")

    with start_exposition("127.0.0.1:0", registry=CollectorRegistry(), ready=broken) as server:
        assert http_get(server.url + "/healthz")[0] == 503


def test_extra_routes_get_method_query_and_body() -> None:
    seen: list[HttpRequest] = []

    def admin(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        return HttpResponse(202, json.dumps({"ok": True}).encode(), "application/json")

    with start_exposition(
        "127.0.0.1:0", registry=CollectorRegistry(), routes={"/admin/faults": admin}
    ) as server:
        request = urllib.request.Request(
            server.url + "/admin/faults?rate=0.5",
            data=b'{"code": "UNAVAILABLE"}',
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 202
            assert response.headers["Content-Type"] == "application/json"
            assert json.loads(response.read()) == {"ok": True}
        assert http_get(server.url + "/nope")[0] == 404

    assert len(seen) == 1
    assert seen[0].method == "POST"
    assert seen[0].query == {"rate": ["0.5"]}
    assert seen[0].body == b'{"code": "UNAVAILABLE"}'
    assert seen[0].headers["content-type"] == "application/json"


def test_failing_route_is_a_500_and_the_server_keeps_serving() -> None:
    def broken(_: HttpRequest) -> HttpResponse:
        raise RuntimeError("boom")

    with start_exposition("127.0.0.1:0", registry=CollectorRegistry(), routes={"/broken": broken}) as server:
        assert http_get(server.url + "/broken")[0] == 500
        assert http_get(server.url + "/metrics")[0] == 200


def test_oversized_bodies_are_refused() -> None:
    with start_exposition(
        "127.0.0.1:0", registry=CollectorRegistry(), routes={"/admin": lambda _: HttpResponse(200)}
    ) as server:
        request = urllib.request.Request(server.url + "/admin", data=b"x" * (65 * 1024), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        assert status == 413


def test_routes_cannot_replace_metrics_or_healthz() -> None:
    with pytest.raises(ValueError, match="may not replace"):
        ExpositionServer("127.0.0.1:0", routes={"/metrics": lambda _: HttpResponse(200)})


def test_bind_failure_is_reported_at_construction() -> None:
    with (
        start_exposition("127.0.0.1:0", registry=CollectorRegistry()) as first,
        pytest.raises(OSError, match="in use"),
    ):
        ExpositionServer(("127.0.0.1", first.port), registry=CollectorRegistry())


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 support in this kernel")
    try:
        server = start_exposition("[::1]:0", registry=CollectorRegistry())
    except OSError as error:
        pytest.skip(f"IPv6 loopback unavailable: {error}")
    with server:
        assert server.url == f"http://[::1]:{server.port}"
        assert http_get(server.url + "/healthz")[0] == 200
