from __future__ import annotations

import pytest
from grpcdemo.observability.grpc_metrics import (
    GRPC_LATENCY_BUCKETS,
    GrpcClientMetrics,
    GrpcServerMetrics,
    MethodSpec,
    methods_of,
)
from prometheus_client import CollectorRegistry, generate_latest

from tests.support.observability_echo import Scrape, echo_service_descriptor

ECHO_SERVICE = echo_service_descriptor()
ECHO_TYPES = {
    "Echo": "unary",
    "EchoStrict": "unary",
    "Collect": "client_stream",
    "Expand": "server_stream",
    "Chat": "bidi_stream",
    "ExpandWriter": "server_stream",
    "CollectReader": "client_stream",
}


def scrape_registry(registry: CollectorRegistry) -> Scrape:
    return Scrape(generate_latest(registry).decode())


def test_families_have_go_grpc_middleware_names_types_and_labels() -> None:
    registry = CollectorRegistry()
    GrpcServerMetrics(registry).method("/a.v1.S/M", "unary").ensure_code("OK")
    GrpcClientMetrics(registry).method("/a.v1.S/M", "unary").ensure_code("OK")
    scrape = scrape_registry(registry)

    for side in ("server", "client"):
        assert scrape.families[f"grpc_{side}_started"] == "counter"
        assert scrape.families[f"grpc_{side}_handled"] == "counter"
        assert scrape.families[f"grpc_{side}_msg_received"] == "counter"
        assert scrape.families[f"grpc_{side}_msg_sent"] == "counter"
        assert scrape.families[f"grpc_{side}_handling_seconds"] == "histogram"
        base = {"grpc_type": "unary", "grpc_service": "a.v1.S", "grpc_method": "M"}
        assert scrape.has(f"grpc_{side}_started_total", **base)
        assert scrape.has(f"grpc_{side}_handled_total", **base, grpc_code="OK")
        assert scrape.has(f"grpc_{side}_msg_received_total", **base)
        assert scrape.has(f"grpc_{side}_msg_sent_total", **base)
        assert scrape.has(f"grpc_{side}_handling_seconds_count", **base)
    assert scrape.families["grpc_server_in_flight_requests"] == "gauge"
    assert scrape.has("grpc_server_in_flight_requests", grpc_service="a.v1.S", grpc_method="M")


def test_buckets_cover_sub_millisecond_to_seconds_and_are_shared() -> None:
    assert list(GRPC_LATENCY_BUCKETS) == sorted(GRPC_LATENCY_BUCKETS)
    assert GRPC_LATENCY_BUCKETS[0] <= 0.0005
    assert GRPC_LATENCY_BUCKETS[-1] >= 10
    # bcrypt logins (~200-300 ms) fall in their own buckets rather than one wide one.
    assert len([b for b in GRPC_LATENCY_BUCKETS if 0.15 <= b <= 0.5]) >= 3

    registry = CollectorRegistry()
    GrpcServerMetrics(registry).method("/a.v1.S/M", "unary")
    GrpcClientMetrics(registry).method("/a.v1.S/M", "unary")
    scrape = scrape_registry(registry)
    for side in ("server", "client"):
        bounds = sorted(
            float(labels["le"]) for labels in scrape.series(f"grpc_{side}_handling_seconds_bucket")
        )
        assert bounds == [*GRPC_LATENCY_BUCKETS, float("inf")]


def test_preinitialise_from_descriptor_creates_every_series_at_zero() -> None:
    registry = CollectorRegistry()
    server = GrpcServerMetrics(registry)
    client = GrpcClientMetrics(registry)
    server.preinitialize(ECHO_SERVICE)
    client.preinitialize(ECHO_SERVICE)
    scrape = scrape_registry(registry)

    for side in ("server", "client"):
        for method, grpc_type in ECHO_TYPES.items():
            labels = {"grpc_type": grpc_type, "grpc_service": "test.v1.EchoService", "grpc_method": method}
            assert scrape.has(f"grpc_{side}_started_total", **labels)
            assert scrape.value(f"grpc_{side}_started_total", **labels) == 0
            assert scrape.has(f"grpc_{side}_handled_total", **labels, grpc_code="OK")
            assert scrape.has(f"grpc_{side}_msg_received_total", **labels)
            assert scrape.has(f"grpc_{side}_msg_sent_total", **labels)
            assert scrape.has(f"grpc_{side}_handling_seconds_bucket", **labels, le="+Inf")
        # Only OK is pre-created: error codes appear when they happen.
        assert {labels["grpc_code"] for labels in scrape.series(f"grpc_{side}_handled_total")} == {"OK"}
        assert len(scrape.series(f"grpc_{side}_started_total")) == len(ECHO_TYPES)
    assert scrape.has(
        "grpc_server_in_flight_requests", grpc_service="test.v1.EchoService", grpc_method="Chat"
    )


def test_preinitialise_takes_extra_codes() -> None:
    registry = CollectorRegistry()
    GrpcServerMetrics(registry).preinitialize(ECHO_SERVICE, codes=("OK", "Internal"))
    codes = {labels["grpc_code"] for labels in scrape_registry(registry).series("grpc_server_handled_total")}
    assert codes == {"OK", "Internal"}


def test_methods_of_reads_streaming_kinds_from_the_descriptor() -> None:
    specs = methods_of(ECHO_SERVICE)
    assert {spec.method: spec.grpc_type for spec in specs} == ECHO_TYPES
    assert all(spec.service == "test.v1.EchoService" for spec in specs)


def test_preinitialise_explicit_methods_with_streaming_types() -> None:
    registry = CollectorRegistry()
    GrpcServerMetrics(registry).preinitialize_methods(
        [
            MethodSpec("test.v1.Echo", "Chat", "bidi_stream"),
            MethodSpec("test.v1.Echo", "Expand", "server_stream"),
        ]
    )
    scrape = scrape_registry(registry)
    assert scrape.has(
        "grpc_server_started_total", grpc_type="bidi_stream", grpc_service="test.v1.Echo", grpc_method="Chat"
    )
    assert scrape.has(
        "grpc_server_handled_total",
        grpc_type="server_stream",
        grpc_service="test.v1.Echo",
        grpc_method="Expand",
        grpc_code="OK",
    )


def test_state_is_cached_per_method_and_type() -> None:
    metrics = GrpcServerMetrics(CollectorRegistry())
    first = metrics.method("/a.v1.S/M", "unary")
    assert metrics.method("/a.v1.S/M", "unary") is first
    assert metrics.method(b"/a.v1.S/M", "unary") is first
    assert metrics.method("/a.v1.S/M", "server_stream") is not first


def test_method_names_beyond_the_cap_collapse_into_unknown() -> None:
    registry = CollectorRegistry()
    metrics = GrpcClientMetrics(registry, max_methods=3)
    for index in range(10):
        metrics.method(f"/svc.v1.S/M{index}", "unary").start()
    scrape = scrape_registry(registry)
    methods = {labels["grpc_method"] for labels in scrape.series("grpc_client_started_total")}
    assert methods == {"M0", "M1", "M2", "unknown"}
    assert (
        scrape.value(
            "grpc_client_started_total", grpc_type="unary", grpc_service="unknown", grpc_method="unknown"
        )
        == 7
    )
    # A name seen before the cap was reached keeps its own series.
    metrics.method("/svc.v1.S/M1", "unary").start()
    assert (
        scrape_registry(registry).value(
            "grpc_client_started_total", grpc_type="unary", grpc_service="svc.v1.S", grpc_method="M1"
        )
        == 2
    )


def test_start_and_finish_record_every_family() -> None:
    registry = CollectorRegistry()
    state = GrpcServerMetrics(registry).method("/a.v1.S/M", "unary")
    state.start(received=1)
    state.start(received=1)
    state.received()
    state.finish("NotFound", 0.003, None)
    state.finish("OK", 0.0005, None, sent=1)
    state.sent()
    scrape = scrape_registry(registry)
    labels = {"grpc_type": "unary", "grpc_service": "a.v1.S", "grpc_method": "M"}
    assert scrape.value("grpc_server_started_total", **labels) == 2
    assert scrape.value("grpc_server_msg_received_total", **labels) == 3
    assert scrape.value("grpc_server_msg_sent_total", **labels) == 2
    assert scrape.value("grpc_server_handled_total", **labels, grpc_code="NotFound") == 1
    assert scrape.value("grpc_server_handled_total", **labels, grpc_code="OK") == 1
    assert scrape.value("grpc_server_in_flight_requests", grpc_service="a.v1.S", grpc_method="M") == 0
    # Cumulative buckets; a value equal to a bound falls into that bucket (le is "<=").
    assert scrape.value("grpc_server_handling_seconds_bucket", **labels, le="0.0005") == 1
    assert scrape.value("grpc_server_handling_seconds_bucket", **labels, le="0.0025") == 1
    assert scrape.value("grpc_server_handling_seconds_bucket", **labels, le="0.005") == 2
    assert scrape.value("grpc_server_handling_seconds_bucket", **labels, le="+Inf") == 2
    assert scrape.value("grpc_server_handling_seconds_count", **labels) == 2
    assert scrape.value("grpc_server_handling_seconds_sum", **labels) == pytest.approx(0.0035)


def test_in_flight_counts_started_and_unfinished() -> None:
    registry = CollectorRegistry()
    state = GrpcServerMetrics(registry).method("/a.v1.S/M", "unary")
    state.start()
    state.start()
    state.finish("OK", 0.001, None)
    scrape = scrape_registry(registry)
    assert scrape.value("grpc_server_in_flight_requests", grpc_service="a.v1.S", grpc_method="M") == 1


def test_same_layout_as_a_prometheus_client_histogram() -> None:
    """Bucket `le` spelling and sample names match what prometheus_client's own Histogram emits."""
    from prometheus_client import Histogram

    ours, theirs = CollectorRegistry(), CollectorRegistry()
    GrpcServerMetrics(ours).method("/a.v1.S/M", "unary").finish("OK", 0.2, None)
    reference = Histogram(
        "grpc_server_handling_seconds",
        "x",
        ["grpc_type", "grpc_service", "grpc_method"],
        buckets=GRPC_LATENCY_BUCKETS,
        registry=theirs,
    )
    reference.labels("unary", "a.v1.S", "M").observe(0.2)
    ours_scrape, theirs_scrape = scrape_registry(ours), scrape_registry(theirs)
    for name in (
        "grpc_server_handling_seconds_bucket",
        "grpc_server_handling_seconds_count",
        "grpc_server_handling_seconds_sum",
    ):
        assert {
            (frozenset(labels.items()), ours_scrape.value(name, **labels))
            for labels in ours_scrape.series(name)
        } == {
            (frozenset(labels.items()), theirs_scrape.value(name, **labels))
            for labels in theirs_scrape.series(name)
        }


def test_without_a_registry_nothing_is_registered() -> None:
    metrics = GrpcClientMetrics(None)
    registry = CollectorRegistry()
    registry.register(metrics.collector)
    metrics.method("/a.v1.S/M", "unary").start(sent=1)
    assert (
        scrape_registry(registry).value(
            "grpc_client_msg_sent_total", grpc_type="unary", grpc_service="a.v1.S", grpc_method="M"
        )
        == 1
    )


def test_same_registry_twice_is_rejected() -> None:
    registry = CollectorRegistry()
    GrpcServerMetrics(registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        GrpcServerMetrics(registry)


def test_preinitialise_from_the_real_service_descriptors() -> None:
    from grpcdemo.genproto.order.v1 import order_pb2
    from grpcdemo.genproto.user.v1 import user_pb2

    registry = CollectorRegistry()
    server = GrpcServerMetrics(registry)
    server.preinitialize(user_pb2.DESCRIPTOR.services_by_name["UserService"])
    server.preinitialize(order_pb2.DESCRIPTOR.services_by_name["OrderService"])
    started = scrape_registry(registry).series("grpc_server_started_total")
    assert sorted(
        (labels["grpc_service"], labels["grpc_method"], labels["grpc_type"]) for labels in started
    ) == [
        ("order.v1.OrderService", "CreateOrder", "unary"),
        ("order.v1.OrderService", "GetOrder", "unary"),
        ("order.v1.OrderService", "ListOrders", "unary"),
        ("user.v1.UserService", "Login", "unary"),
        ("user.v1.UserService", "Me", "unary"),
        ("user.v1.UserService", "Register", "unary"),
    ]
