"""What the five dashboards show: their panels, queries, units, thresholds and layout, in the terms of
tools/dashboards/builder.py (which builds the JSON).

Conventions (tests/dashboards/ enforces most of them):
- Panels read the recording rules of prometheus/rules/recording.yml where one exists, so a graph
  shows the very series an alert evaluates. Raw series are queried with `$__rate_interval` only where
  no rule exists (per-code breakdowns, business counters, runtime) or where exemplars are wanted:
  Prometheus keeps exemplars on the scraped series, never on recording-rule output.
- Multi-value template variables appear only inside `=~` matchers, because Grafana expands them to a
  regex `(a|b)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from dashboards import thresholds as rule
from dashboards.builder import (
    OFF_ON,
    UP_DOWN,
    Grid,
    Json,
    LogQuery,
    Panel,
    Query,
    alert_line,
    dashboard,
    dashboard_link,
    query_variable,
    thresholds,
)
from dashboards.thresholds import INFRASTRUCTURE_GRPC_SERVICES, SERVER_FAULT_CODES, SLO_PERIOD

# Read from prometheus/rules/alerts.yml (dashboards/thresholds.py): each line sits where its alert fires.
SLO_ERROR_BUDGET = rule.error_budget()
ERROR_RATIO_ALERT = rule.error_ratio().value
CLIENT_ERROR_RATIO_ALERT = rule.client_error_ratio().value
CLIENT_FAILURES_ALERT = rule.client_failures_per_minute().value
P95_LATENCY_ALERT = rule.p95_latency().value
ORDER_FAILURE_ALERT = rule.order_failure_ratio().value
LOGIN_FAILURE_SHARE_ALERT = rule.login_failure_share().value
LOGIN_THROTTLED_ALERT = rule.login_throttled().value
FAST_BURN = rule.fast_burn().value
SLOW_BURN = rule.slow_burn().value


def percent(ratio: float) -> str:
    return f"{ratio * 100:g}%"


def alerts_now(grid: Grid) -> None:
    """The first row of every dashboard but the overview (which has its own, fuller one): what pages
    now, so a reader of a graph sees at once whether it is alerting. Read from Prometheus's ALERTS
    series (what fires, before Alertmanager's silences and inhibitions), which the tests can query."""
    grid.row("Alerts now")
    grid.add(
        Panel(
            "table",
            "Firing alerts",
            "Alerts firing now (Prometheus's ALERTS series), without the Watchdog heartbeat; empty "
            "when nothing pages. Alertmanager (http://127.0.0.1:9093) shows which are silenced or "
            "inhibited; each alert's runbook is at http://127.0.0.1:9095/runbook.",
            [
                Query(
                    'sum by (alertname, severity, service) (ALERTS{alertstate="firing", alertname!="Watchdog"})',
                    instant=True,
                    fmt="table",
                )
            ],
            minimum=None,
            transformations=[
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True, "Value": True},
                        "indexByName": {"alertname": 0, "severity": 1, "service": 2},
                    },
                }
            ],
        ),
        24,
        4,
    )


# ---------------------------------------------------------------------------------------------
# Dashboards


def overview() -> Json:
    job = 'job=~"$job"'
    to_server = [dashboard_link("grpc-server", "gRPC server: per method", ["job"])]
    grid = Grid()

    grid.row("Health")
    grid.add(
        Panel(
            "stat",
            "Targets up",
            "Whether Prometheus' last scrape of every target of each job succeeded (the lowest `up` "
            "of the job). ServiceDown fires after 30s of DOWN for userd or orderd.",
            [Query("min by (job) (up)", "{{job}}", instant=True)],
            thresholds=thresholds([("red", None), ("green", 1)]),
            mappings=UP_DOWN,
        ),
        12,
        4,
    )
    grid.add(
        Panel(
            "stat",
            "Alerts firing",
            "Alerts Prometheus reports as firing (the ALERTS series), without the Watchdog heartbeat, "
            "which always fires. The table below names them.",
            [
                Query(
                    'count(ALERTS{alertstate="firing", alertname!="Watchdog"}) or vector(0)',
                    "firing",
                    instant=True,
                )
            ],
            thresholds=thresholds([("green", None), ("red", 1)]),
        ),
        4,
        4,
    )
    grid.add(
        Panel(
            "stat",
            "Alertmanagers discovered",
            "How many Alertmanagers Prometheus sends alerts to. Below 1, firing alerts reach no one "
            "(PrometheusNotConnectedToAlertmanager).",
            [
                Query(
                    'max(prometheus_notifications_alertmanagers_discovered{job="prometheus"})',
                    "Alertmanagers",
                    instant=True,
                )
            ],
            thresholds=thresholds([("red", None), ("green", 1)]),
        ),
        4,
        4,
    )
    grid.add(
        Panel(
            "stat",
            "Rule evaluation failures (5m)",
            "Failed recording and alerting rule evaluations over the last 5 minutes; anything above 0 "
            "means some alerts may not fire (PrometheusRuleEvaluationFailures).",
            [
                Query(
                    'sum(increase(prometheus_rule_evaluation_failures_total{job="prometheus"}[5m]))',
                    "failures",
                    instant=True,
                )
            ],
            thresholds=thresholds([("green", None), ("red", 1)]),
            decimals=0,
        ),
        4,
        4,
    )
    grid.add(
        Panel(
            "table",
            "Firing alerts",
            "Every alert firing now, with its severity and service. Watchdog is always listed: it is "
            "the heartbeat that proves rules are evaluated. Links in Slack messages point at the "
            "dashboard each alert names.",
            [
                Query(
                    'sum by (alertname, severity, service) (ALERTS{alertstate="firing"})',
                    instant=True,
                    fmt="table",
                )
            ],
            minimum=None,
            transformations=[
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True, "Value": True},
                        "indexByName": {"alertname": 0, "severity": 1, "service": 2},
                    },
                }
            ],
        ),
        24,
        6,
    )

    grid.row("Black-box probes")
    grid.add(
        Panel(
            "stat",
            "Probe success",
            "The blackbox exporter's gRPC health check of each service through the address clients use "
            "(userd:50051 in compose, 127.0.0.1:50051 natively, the Service in Kubernetes). DOWN when "
            "nothing answers there or health is NOT_SERVING, also when every replica is gone and the "
            "white-box targets above have vanished (BlackboxProbeFailed after 2m).",
            [
                Query(
                    'min by (service) (probe_success{job="blackbox", service=~"$job"})',
                    "{{service}}",
                    instant=True,
                )
            ],
            thresholds=thresholds([("red", None), ("green", 1)]),
            mappings=UP_DOWN,
        ),
        8,
        6,
    )
    grid.add(
        Panel(
            "timeseries",
            "Probe duration",
            "How long each black-box probe took: name resolution, connection and the health call, as a "
            "new client would pay them. A probe that fails returns quickly or at its 3s timeout.",
            [
                Query(
                    'max by (service) (probe_duration_seconds{job="blackbox", service=~"$job"})',
                    "{{service}}",
                )
            ],
            unit="s",
        ),
        16,
        6,
    )

    grid.row("Traffic and errors per service")
    grid.add(
        Panel(
            "timeseries",
            "Request rate",
            "gRPC requests handled per second by each service, all methods and codes "
            "(job:grpc_server_requests:rate1m).",
            [Query(f"job:grpc_server_requests:rate1m{{{job}}}", "{{service}}")],
            unit="reqps",
            links=to_server,
        ),
        12,
        8,
    )
    grid.add(
        Panel(
            "timeseries",
            "Server-fault error ratio",
            "Share of requests answered with a server-fault code (Unknown, Internal, Unavailable, "
            "DataLoss, DeadlineExceeded, ResourceExhausted) over 1 minute; caller errors such as "
            "NotFound or Unauthenticated are not counted. The dashed line is the SLO's error budget "
            f"({percent(SLO_ERROR_BUDGET)}), which ErrorBudgetBurnFast and ErrorBudgetBurnSlow divide by.",
            [Query(f"job:grpc_server_errors_per_request:ratio_rate1m{{{job}}}", "{{service}}")],
            unit="percentunit",
            thresholds=alert_line(SLO_ERROR_BUDGET),
            threshold_line=True,
            links=to_server,
        ),
        12,
        8,
    )
    grid.add(
        Panel(
            "timeseries",
            "Responses by status code",
            "Requests per second by service and gRPC status code. Caller errors (InvalidArgument, "
            "Unauthenticated, NotFound, AlreadyExists) are normal answers; server faults are not.",
            [Query(f"job_grpc_code:grpc_server_requests:rate1m{{{job}}}", "{{service}} {{grpc_code}}")],
            unit="reqps",
            stacked=True,
            links=to_server,
        ),
        12,
        8,
    )
    grid.add(
        Panel(
            "timeseries",
            "p95 latency",
            "95th percentile of server handling time per service over 1 minute, all methods together "
            f"(job:grpc_server_handling_seconds:p95_rate1m). The dashed line is the {P95_LATENCY_ALERT:g} s at which "
            "GRPCLatencyP95High fires for a single method; the gRPC server dashboard has per-method "
            "percentiles and traces.",
            [Query(f"job:grpc_server_handling_seconds:p95_rate1m{{{job}}}", "{{service}}")],
            unit="s",
            thresholds=alert_line(P95_LATENCY_ALERT),
            threshold_line=True,
            links=to_server,
        ),
        12,
        8,
    )

    grid.row("SLO: 99.9% availability")
    # No recording rule spans the SLO period (the longest is 6h), so the budget is read from the raw
    # counter; `or 0 * requests` makes a service without a single fault read 100% instead of no data.
    sli = f'{job}, grpc_service!~"{INFRASTRUCTURE_GRPC_SERVICES}"'
    requests = f"sum by (job, service) (increase(grpc_server_handled_total{{{sli}}}[{SLO_PERIOD}]))"
    faults = (
        "sum by (job, service) (increase(grpc_server_handled_total"
        f'{{{sli}, grpc_code=~"{SERVER_FAULT_CODES}"}}[{SLO_PERIOD}]))'
    )
    grid.add(
        Panel(
            "bargauge",
            "Error budget remaining",
            f"Share of the {percent(1 - SLO_ERROR_BUDGET)} availability SLO's error budget left over the SLO "
            f"period ({SLO_PERIOD}, rolling): 1 - (server-fault responses / all responses over {SLO_PERIOD}) "
            f"/ {percent(SLO_ERROR_BUDGET)}, per "
            "service, never below 0%; health checks and reflection are not counted, as in the SLO "
            "rules. 100% means no server faults in the period, 0% that the budget is spent. A demo "
            "younger than 30 days, or a Prometheus keeping less (compose keeps 7 d, a native run the "
            "default 15 d), counts the data it has. The burn-rate panel shows how fast it goes now.",
            [
                Query(
                    f"clamp_min(1 - ({faults} or 0 * {requests}) / ({requests} > 0) / {SLO_ERROR_BUDGET}, 0)",
                    "{{service}}",
                    instant=True,
                )
            ],
            unit="percentunit",
            maximum=1,
            thresholds=thresholds([("red", None), ("orange", 0.25), ("green", 0.75)]),
        ),
        12,
        9,
    )
    windows = ("5m", "30m", "1h", "6h")
    grid.add(
        Panel(
            "timeseries",
            "Error budget burn rate",
            "How many times faster than sustainable each service spends its error budget (server-fault "
            f"ratio / {percent(SLO_ERROR_BUDGET)}). ErrorBudgetBurnFast fires when both 1h and 5m exceed "
            f"{FAST_BURN:g}; ErrorBudgetBurnSlow when both 6h and 30m exceed {SLOW_BURN:g} (dashed lines).",
            [
                Query(
                    f"job:grpc_server_errors_per_request:ratio_rate{window}{{{job}}} / {SLO_ERROR_BUDGET}",
                    f"{{{{service}}}} {window}",
                )
                for window in windows
            ],
            unit="suffix:x",
            thresholds=thresholds([("green", None), ("orange", SLOW_BURN), ("red", FAST_BURN)]),
            threshold_line=True,
        ),
        12,
        9,
    )

    grid.row("Logs")
    grid.add(
        Panel(
            "logs",
            "Warnings and errors",
            "The selected services' warning and error lines, newest first, from Loki (compose; natively "
            "the lines are in .run/logs/). Each line written inside a request carries trace_id: its "
            "log details link to the trace in Jaeger.",
            [LogQuery('{service_name=~"$job"} | detected_level=~"warn|warning|error|critical"')],
        ),
        24,
        10,
    )

    grid.row("Alerting pipeline")
    grid.add(
        Panel(
            "timeseries",
            "Alertmanager notifications",
            "Notifications Alertmanager sent per second by integration (Slack, webhook), and how many "
            "failed. AlertmanagerNotificationsFailing fires when more than 1% fail.",
            [
                Query(
                    'sum by (integration) (rate(alertmanager_notifications_total{job="alertmanager"}[$__rate_interval]))',
                    "{{integration}} sent",
                ),
                Query(
                    "sum by (integration) "
                    '(rate(alertmanager_notifications_failed_total{job="alertmanager"}[$__rate_interval]))',
                    "{{integration}} failed",
                ),
            ],
            unit="ops",
        ),
        24,
        7,
    )
    return dashboard(
        "grpc-overview",
        "gRPC demo: overview",
        "Health of userd and orderd at a glance: targets, firing alerts, traffic, errors, latency and "
        "the 99.9% availability SLO.",
        [query_variable("job", "Service", "job:grpc_server_requests:rate1m", "job")],
        grid,
    )


def grpc_server() -> Json:
    # The recording rules keep the labels of the raw series, so one selector serves both.
    sel = 'job=~"$job", grpc_service=~"$grpc_service", grpc_method=~"$method"'
    grid = Grid()
    alerts_now(grid)

    grid.row("Traffic and errors")
    grid.add(
        Panel(
            "timeseries",
            "Requests by method and code",
            "Requests handled per second, per method and gRPC status code (go-grpc-middleware's "
            "grpc_server_handled_total).",
            [
                Query(
                    "sum by (service, grpc_method, grpc_code) "
                    f"(rate(grpc_server_handled_total{{{sel}}}[$__rate_interval]))",
                    "{{service}} {{grpc_method}} {{grpc_code}}",
                )
            ],
            unit="reqps",
            stacked=True,
        ),
        12,
        8,
    )
    grid.add(
        Panel(
            "timeseries",
            "Server-fault error ratio by method",
            "Share of a method's requests answered with a server-fault code over 1 minute "
            "(job_grpc_method:grpc_server_errors_per_request:ratio_rate1m). GRPCServerErrorRateHigh "
            f"fires after 2 minutes above {percent(ERROR_RATIO_ALERT)} (dashed line). A method without calls "
            "has no ratio.",
            [
                Query(
                    f"job_grpc_method:grpc_server_errors_per_request:ratio_rate1m{{{sel}}}",
                    "{{service}} {{grpc_method}}",
                )
            ],
            unit="percentunit",
            thresholds=alert_line(ERROR_RATIO_ALERT),
            threshold_line=True,
        ),
        12,
        8,
    )
    grid.add(
        Panel(
            "timeseries",
            "Server faults by method and code",
            "Server-fault responses per second by method and code; empty while nothing fails. "
            "Exemplars on: the dots link to the trace of a failed call in Jaeger.",
            [
                Query(
                    "sum by (service, grpc_method, grpc_code) (rate(grpc_server_handled_total"
                    f'{{{sel}, grpc_code=~"{SERVER_FAULT_CODES}"}}[$__rate_interval]))',
                    "{{service}} {{grpc_method}} {{grpc_code}}",
                    exemplar=True,
                )
            ],
            unit="reqps",
            bars=True,
        ),
        12,
        8,
    )
    grid.add(
        Panel(
            "timeseries",
            "In-flight requests",
            "Requests a server has started and not yet answered, per method. A steady climb under "
            "constant load means the service is falling behind.",
            [
                Query(
                    f"sum by (service, grpc_method) (grpc_server_in_flight_requests{{{sel}}})",
                    "{{service}} {{grpc_method}}",
                )
            ],
            decimals=0,
        ),
        12,
        8,
    )

    grid.row("Latency")
    grid.add(
        Panel(
            "timeseries",
            "Latency p50 / p95 / p99 by method",
            "Handling-time percentiles per method over 1 minute, from the recording rules "
            "job_grpc_method:grpc_server_handling_seconds:p50/p95/p99_rate1m that the alerts use. "
            f"GRPCLatencyP95High fires when p95 stays above {P95_LATENCY_ALERT:g} s (dashed line) for 2 minutes.",
            [
                Query(
                    f"job_grpc_method:grpc_server_handling_seconds:{quantile}_rate1m{{{sel}}}",
                    f"{{{{service}}}} {{{{grpc_method}}}} {quantile}",
                )
                for quantile in ("p50", "p95", "p99")
            ],
            unit="s",
            thresholds=alert_line(P95_LATENCY_ALERT),
            threshold_line=True,
        ),
        12,
        9,
    )
    grid.add(
        Panel(
            "timeseries",
            "p95 latency with traces",
            "The same p95 computed from the raw histogram, because exemplars live on scraped series "
            "only: each dot is one sampled call with its trace id; click it to open the trace in "
            "Jaeger.",
            [
                Query(
                    "histogram_quantile(0.95, sum by (service, grpc_method, le) "
                    f"(rate(grpc_server_handling_seconds_bucket{{{sel}}}[$__rate_interval])))",
                    "{{service}} {{grpc_method}} p95",
                    exemplar=True,
                )
            ],
            unit="s",
            thresholds=alert_line(P95_LATENCY_ALERT),
            threshold_line=True,
        ),
        12,
        9,
    )
    grid.add(
        Panel(
            "heatmap",
            "Latency distribution",
            "Requests per latency bucket (grpc_server_handling_seconds_bucket) for the selected "
            "methods: two bands usually mean two kinds of call (bcrypt-bound Register/Login versus "
            "database reads). Exemplar dots link to traces.",
            [
                Query(
                    f"sum by (le) (increase(grpc_server_handling_seconds_bucket{{{sel}}}[$__rate_interval]))",
                    "{{le}}",
                    exemplar=True,
                    fmt="heatmap",
                )
            ],
        ),
        24,
        9,
    )

    grid.row("Replicas")
    instance_sel = 'job=~"$job"'
    grid.add(
        Panel(
            "timeseries",
            "Requests by instance",
            "Requests per second each replica handles (instance:grpc_server_requests:rate1m). With "
            "several replicas behind a round-robin client (orderd's USERD_ADDR, compose's "
            "--scale, the headless Service in Kubernetes) the lines should run together; one line "
            "carrying everything means the clients are pinned to one connection.",
            [Query(f"instance:grpc_server_requests:rate1m{{{instance_sel}}}", "{{service}} {{instance}}")],
            unit="reqps",
        ),
        12,
        8,
    )
    grid.add(
        Panel(
            "timeseries",
            "Server-fault ratio by instance",
            "Share of each replica's requests answered with a server-fault code over 1 minute "
            "(instance:grpc_server_errors_per_request:ratio_rate1m): a replica that fails while the "
            "others serve (a lost database connection, a bad node) stands out here before the "
            "service-wide ratio moves.",
            [
                Query(
                    f"instance:grpc_server_errors_per_request:ratio_rate1m{{{instance_sel}}}",
                    "{{service}} {{instance}}",
                )
            ],
            unit="percentunit",
        ),
        12,
        8,
    )

    grid.row("Methods at a glance")
    grid.add(
        Panel(
            "table",
            "Methods now",
            "Per method over the last minute: requests per second, server-fault ratio and p95 "
            "latency, from the recording rules.",
            [
                Query(f"job_grpc_method:grpc_server_requests:rate1m{{{sel}}}", instant=True, fmt="table"),
                Query(
                    f"job_grpc_method:grpc_server_errors_per_request:ratio_rate1m{{{sel}}}",
                    instant=True,
                    fmt="table",
                ),
                Query(
                    f"job_grpc_method:grpc_server_handling_seconds:p95_rate1m{{{sel}}}",
                    instant=True,
                    fmt="table",
                ),
            ],
            minimum=None,
            transformations=[
                {"id": "merge", "options": {}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True, "job": True},
                        "renameByName": {
                            "Value #A": "req/s",
                            "Value #B": "server-fault ratio",
                            "Value #C": "p95 (s)",
                        },
                    },
                },
            ],
        ),
        24,
        8,
    )
    return dashboard(
        "grpc-server",
        "gRPC demo: server",
        "Per-method traffic, status codes, latency percentiles and distribution of the gRPC servers, "
        "with exemplars linking slow or failed calls to their traces.",
        [
            query_variable("job", "Service", "job_grpc_method:grpc_server_requests:rate1m", "job"),
            query_variable(
                "grpc_service",
                "gRPC service",
                'job_grpc_method:grpc_server_requests:rate1m{job=~"$job"}',
                "grpc_service",
            ),
            query_variable(
                "method",
                "Method",
                'job_grpc_method:grpc_server_requests:rate1m{job=~"$job", grpc_service=~"$grpc_service"}',
                "grpc_method",
            ),
        ],
        grid,
    )


def grpc_client() -> Json:
    sel = 'job="$job", grpc_service=~"$callee"'
    grid = Grid()
    alerts_now(grid)

    grid.row("Calls")
    grid.add(
        Panel(
            "stat",
            "Server-fault results per minute",
            "Calls from the caller to each callee that ended with a server-fault code, per minute. "
            f"HighGRPCFailures (orderd -> userd) fires when more than {CLIENT_FAILURES_ALERT:g} a minute are "
            f"also more than {percent(CLIENT_ERROR_RATIO_ALERT)} of the calls, for 1 minute.",
            [
                Query(
                    f"job_grpc_service:grpc_client_errors:rate1m{{{sel}}} * 60",
                    "{{grpc_service}}",
                    instant=True,
                )
            ],
            unit="short",
            decimals=1,
            thresholds=alert_line(CLIENT_FAILURES_ALERT),
        ),
        8,
        5,
    )
    grid.add(
        Panel(
            "stat",
            "Server-fault ratio",
            "Share of the caller's calls to each callee ending with a server-fault code over 1 "
            f"minute (job_grpc_service:grpc_client_errors_per_request:ratio_rate1m); red from "
            f"{percent(CLIENT_ERROR_RATIO_ALERT)}, the HighGRPCFailures ratio.",
            [
                Query(
                    f"job_grpc_service:grpc_client_errors_per_request:ratio_rate1m{{{sel}}}",
                    "{{grpc_service}}",
                    instant=True,
                )
            ],
            unit="percentunit",
            thresholds=alert_line(CLIENT_ERROR_RATIO_ALERT),
        ),
        8,
        5,
    )
    grid.add(
        Panel(
            "stat",
            "Call rate",
            "Calls per second from the caller to each callee (job_grpc_service:grpc_client_requests:rate1m).",
            [
                Query(
                    f"job_grpc_service:grpc_client_requests:rate1m{{{sel}}}", "{{grpc_service}}", instant=True
                )
            ],
            unit="reqps",
            thresholds=thresholds([("blue", None)]),
        ),
        8,
        5,
    )
    grid.add(
        Panel(
            "timeseries",
            "Calls by method and code",
            "Calls per second as the caller saw them finish, by callee method and status code "
            "(grpc_client_handled_total). Unauthenticated from userd.Me is userd rejecting a bad "
            "token, a normal answer.",
            [
                Query(
                    "sum by (grpc_service, grpc_method, grpc_code) "
                    f"(rate(grpc_client_handled_total{{{sel}}}[$__rate_interval]))",
                    "{{grpc_method}} {{grpc_code}}",
                )
            ],
            unit="reqps",
            stacked=True,
        ),
        12,
        8,
    )
    grid.add(
        Panel(
            "timeseries",
            "Failed calls by method and code",
            "Calls that did not end OK, by method and code, caller errors included; empty while every "
            "call succeeds. Server-fault codes here are what HighGRPCFailures counts.",
            [
                Query(
                    "sum by (grpc_service, grpc_method, grpc_code) "
                    f'(rate(grpc_client_handled_total{{{sel}, grpc_code!="OK"}}[$__rate_interval]))',
                    "{{grpc_method}} {{grpc_code}}",
                    exemplar=True,
                )
            ],
            unit="reqps",
            bars=True,
        ),
        12,
        8,
    )
    grid.add(
        Panel(
            "timeseries",
            "Server-fault ratio by method",
            "Per callee method, the share of calls ending with a server-fault code over 1 minute "
            "(job_grpc_method:grpc_client_errors_per_request:ratio_rate1m); dashed line at "
            f"{percent(CLIENT_ERROR_RATIO_ALERT)}, the ratio HighGRPCFailures applies per callee.",
            [
                Query(
                    f"job_grpc_method:grpc_client_errors_per_request:ratio_rate1m{{{sel}}}",
                    "{{grpc_method}}",
                )
            ],
            unit="percentunit",
            thresholds=alert_line(CLIENT_ERROR_RATIO_ALERT),
            threshold_line=True,
        ),
        24,
        7,
    )

    grid.row("Latency")
    grid.add(
        Panel(
            "timeseries",
            "Client latency p50 / p95 / p99",
            "Time from sending a call to seeing it finish, per callee method, as the caller measures "
            "it (job_grpc_method:grpc_client_handling_seconds:*_rate1m).",
            [
                Query(
                    f"job_grpc_method:grpc_client_handling_seconds:{quantile}_rate1m{{{sel}}}",
                    f"{{{{grpc_method}}}} {quantile}",
                )
                for quantile in ("p50", "p95", "p99")
            ],
            unit="s",
        ),
        12,
        9,
    )
    grid.add(
        Panel(
            "timeseries",
            "Client p95 versus callee's own p95",
            "p95 of the same methods seen by the caller and by the callee's server. The gap is the "
            "network, the connection and queueing on either side; the callee's figure covers all of "
            "its callers.",
            [
                Query(
                    f"job_grpc_method:grpc_client_handling_seconds:p95_rate1m{{{sel}}}",
                    "{{grpc_method}} as the caller sees it",
                ),
                Query(
                    'job_grpc_method:grpc_server_handling_seconds:p95_rate1m{grpc_service=~"$callee"}',
                    "{{grpc_method}} on {{service}}",
                ),
            ],
            unit="s",
        ),
        12,
        9,
    )
    grid.add(
        Panel(
            "heatmap",
            "Client latency distribution",
            "Calls per latency bucket as the caller measures them (grpc_client_handling_seconds_bucket). "
            "Exemplar dots link to the traces of the calls.",
            [
                Query(
                    f"sum by (le) (increase(grpc_client_handling_seconds_bucket{{{sel}}}[$__rate_interval]))",
                    "{{le}}",
                    exemplar=True,
                    fmt="heatmap",
                )
            ],
        ),
        24,
        9,
    )
    return dashboard(
        "grpc-client",
        "gRPC demo: client (orderd -> userd)",
        "Outgoing gRPC calls as the caller sees them: orderd authenticating every request through "
        "userd.Me by default, or the load generator's calls.",
        [
            query_variable(
                "job",
                "Caller",
                "job_grpc_method:grpc_client_requests:rate1m",
                "job",
                multi=False,
                default="orderd",
            ),
            query_variable(
                "callee", "Callee", 'job_grpc_method:grpc_client_requests:rate1m{job="$job"}', "grpc_service"
            ),
        ],
        grid,
    )


def business() -> Json:
    grid = Grid()
    alerts_now(grid)
    to_server = [dashboard_link("grpc-server", "gRPC server: per method")]

    def by_result(metric: str) -> Query:
        return Query(f"sum by (result) (rate({metric}[$__rate_interval]))", "{{result}}")

    grid.row("Users (userd)")
    grid.add(
        Panel(
            "timeseries",
            "Logins by result",
            "Login attempts per second by outcome: success, user_not_found, invalid_password (wrong "
            "password for a known account) and invalid_input (malformed request).",
            [by_result('userd_service_login_handler_total{job="userd"}')],
            unit="ops",
            stacked=True,
            links=to_server,
        ),
        12,
        8,
    )
    grid.add(
        Panel(
            "timeseries",
            "Failed-login share (brute-force signal)",
            "Share of the logins that reached a password check and failed (wrong password, unknown "
            "account, or refused by the throttle) over 5 minutes "
            "(job:userd_login_failures_per_attempt:ratio_rate5m). InvalidLoginSpike fires above "
            f"{percent(LOGIN_FAILURE_SHARE_ALERT)} (dashed line) with at least "
            f"{rule.alert_threshold('InvalidLoginSpike', 'job:userd_login_failures:increase5m').value:g} "
            "failures in the window: typos alone stay well below it at any traffic volume.",
            [Query('job:userd_login_failures_per_attempt:ratio_rate5m{job="userd"}', "{{service}}")],
            unit="percentunit",
            thresholds=alert_line(LOGIN_FAILURE_SHARE_ALERT),
            threshold_line=True,
        ),
        6,
        8,
    )
    grid.add(
        Panel(
            "timeseries",
            "Throttled logins in 5 minutes (attack on accounts)",
            "Logins the failed-login throttle refused over 5 minutes (job:userd_login_throttled:increase5m): "
            "an email past its failures in the throttle's window, which typos spread over many accounts "
            f"never reach. InvalidLoginSpike fires at {LOGIN_THROTTLED_ALERT:g} (dashed line).",
            [Query('job:userd_login_throttled:increase5m{job="userd"}', "{{service}}")],
            unit="short",
            decimals=0,
            thresholds=alert_line(LOGIN_THROTTLED_ALERT),
            threshold_line=True,
        ),
        6,
        8,
    )
    grid.add(
        Panel(
            "timeseries",
            "Registrations by result",
            "Register calls per second by outcome: success, user_exists (email already taken) and "
            "invalid_input.",
            [by_result('userd_service_register_handler_total{job="userd"}')],
            unit="ops",
            stacked=True,
        ),
        12,
        8,
    )
    grid.add(
        Panel(
            "timeseries",
            "Me lookups by result",
            "Me calls per second by outcome; orderd authenticates every request this way, so "
            "invalid_token and missing_token include orders sent with a bad token.",
            [by_result('userd_service_me_handler_total{job="userd"}')],
            unit="ops",
            stacked=True,
        ),
        12,
        8,
    )

    grid.row("Orders (orderd)")
    grid.add(
        Panel(
            "timeseries",
            "Orders created by result",
            "CreateOrder calls per second by outcome: success (including idempotent replays), failed "
            "(a fault on orderd's side), invalid_input and unauthenticated.",
            [by_result('orderd_service_total_orders_total{job="orderd"}')],
            unit="ops",
            stacked=True,
            links=to_server,
        ),
        12,
        8,
    )
    grid.add(
        Panel(
            "timeseries",
            "Order creation failure ratio",
            "failed / (success + failed) over 1 minute (job:orderd_orders_failed_per_attempt:ratio_rate1m): "
            "valid, authenticated orders that orderd could not create. OrderCreationFailing fires after "
            f"2 minutes above {percent(ORDER_FAILURE_ALERT)} (dashed line); caller errors do not count.",
            [Query('job:orderd_orders_failed_per_attempt:ratio_rate1m{job="orderd"}', "failure ratio")],
            unit="percentunit",
            thresholds=alert_line(ORDER_FAILURE_ALERT),
            threshold_line=True,
        ),
        12,
        8,
    )
    grid.add(
        Panel(
            "timeseries",
            "Orders fetched by result",
            "GetOrder and ListOrders calls per second by outcome: success, not_found, failed and "
            "unauthenticated.",
            [by_result('orderd_service_total_fetched_orders_total{job="orderd"}')],
            unit="ops",
            stacked=True,
        ),
        12,
        8,
    )
    grid.add(
        Panel(
            "timeseries",
            "Idempotent replays",
            "CreateOrder calls answered with an existing order because their request_id was seen "
            "before: client retries that did not create a duplicate.",
            [
                Query(
                    'sum(rate(orderd_service_idempotent_replays_total{job="orderd"}[$__rate_interval]))',
                    "replays",
                )
            ],
            unit="ops",
        ),
        12,
        8,
    )

    grid.row("Totals over the selected time range")
    grid.add(
        Panel(
            "stat",
            "Orders created",
            "Orders created successfully over the dashboard's time range (idempotent replays included).",
            [
                Query(
                    'sum(increase(orderd_service_total_orders_total{job="orderd", result="success"}[$__range]))',
                    "orders",
                    instant=True,
                )
            ],
            decimals=0,
            thresholds=thresholds([("blue", None)]),
        ),
        8,
        4,
    )
    grid.add(
        Panel(
            "stat",
            "Users registered",
            "Successful registrations over the dashboard's time range.",
            [
                Query(
                    'sum(increase(userd_service_register_handler_total{job="userd", result="success"}[$__range]))',
                    "users",
                    instant=True,
                )
            ],
            decimals=0,
            thresholds=thresholds([("blue", None)]),
        ),
        8,
        4,
    )
    grid.add(
        Panel(
            "stat",
            "Login success ratio",
            "Share of login attempts that succeeded over the dashboard's time range.",
            [
                Query(
                    'sum(increase(userd_service_login_handler_total{job="userd", result="success"}[$__range])) / '
                    '(sum(increase(userd_service_login_handler_total{job="userd"}[$__range])) > 0)',
                    "success",
                    instant=True,
                )
            ],
            unit="percentunit",
            thresholds=thresholds([("red", None), ("orange", 0.5), ("green", 0.8)]),
        ),
        8,
        4,
    )
    return dashboard(
        "business",
        "gRPC demo: business",
        "What the services do for their users: logins (with the brute-force signal), registrations, "
        "token checks, orders created and fetched, idempotent replays.",
        [],
        grid,
    )


def runtime() -> Json:
    sel = 'job=~"$job", instance=~"$instance"'
    grid = Grid()
    alerts_now(grid)

    grid.row("Process")
    grid.add(
        Panel(
            "timeseries",
            "CPU",
            "CPU time used per second of wall time, user and system (process_cpu_seconds_total): "
            "100% is one core. A Python process runs its event loop on one core, so near 100% it is "
            "saturated.",
            [
                Query(
                    f"rate(process_cpu_seconds_total{{{sel}}}[$__rate_interval])",
                    "{{service}} {{instance}}",
                )
            ],
            unit="percentunit",
        ),
        12,
        8,
    )
    grid.add(
        Panel(
            "timeseries",
            "Resident memory",
            "Physical memory the process holds (process_resident_memory_bytes). A steady climb under "
            "constant load is a leak.",
            [Query(f"process_resident_memory_bytes{{{sel}}}", "{{service}} {{instance}}")],
            unit="bytes",
        ),
        12,
        8,
    )
    grid.add(
        Panel(
            "timeseries",
            "Open file descriptors",
            "File descriptors in use (sockets, database files) as a share of the process limit "
            "(process_open_fds / process_max_fds).",
            [
                Query(
                    f"process_open_fds{{{sel}}} / process_max_fds{{{sel}}}",
                    "{{service}} {{instance}}",
                )
            ],
            unit="percentunit",
        ),
        12,
        8,
    )
    grid.add(
        Panel(
            "table",
            "Running builds",
            "Which build each instance runs (version and Python version from *_build_info) and how "
            "long it has been up; a restart resets the uptime.",
            [
                Query(
                    f"(time() - process_start_time_seconds{{{sel}}}) * on (job, instance) "
                    f"group_left (version, python_version) (userd_build_info{{{sel}}} or orderd_build_info{{{sel}}})",
                    instant=True,
                    fmt="table",
                )
            ],
            unit="s",
            minimum=None,
            transformations=[
                {
                    "id": "organize",
                    "options": {"excludeByName": {"Time": True}, "renameByName": {"Value": "uptime"}},
                }
            ],
        ),
        12,
        8,
    )

    grid.row("Python garbage collector")
    grid.add(
        Panel(
            "timeseries",
            "GC collections by generation",
            "Garbage-collector runs per second per generation (python_gc_collections_total). "
            "Frequent generation-2 runs pause the event loop and show up as latency.",
            [
                Query(
                    f"sum by (service, generation) (rate(python_gc_collections_total{{{sel}}}[$__rate_interval]))",
                    "{{service}} gen {{generation}}",
                )
            ],
            unit="ops",
        ),
        8,
        8,
    )
    grid.add(
        Panel(
            "timeseries",
            "Objects collected",
            "Objects the garbage collector freed per second, by generation (python_gc_objects_collected_total).",
            [
                Query(
                    "sum by (service, generation) "
                    f"(rate(python_gc_objects_collected_total{{{sel}}}[$__rate_interval]))",
                    "{{service}} gen {{generation}}",
                )
            ],
            unit="ops",
        ),
        8,
        8,
    )
    grid.add(
        Panel(
            "timeseries",
            "Uncollectable objects",
            "Objects the collector found but could not free since start (python_gc_objects_uncollectable_total); "
            "should stay 0.",
            [
                Query(
                    f"sum by (service) (python_gc_objects_uncollectable_total{{{sel}}})",
                    "{{service}}",
                )
            ],
            thresholds=alert_line(1),
            threshold_line=True,
            decimals=0,
        ),
        8,
        8,
    )

    grid.row("Database")
    grid.add(
        Panel(
            "timeseries",
            "DB query latency p95 by operation",
            "95th percentile duration of each repository operation (<service>_db_query_duration_seconds) "
            "over the rate window. A rise here with a flat CPU points at the database.",
            [
                Query(
                    "histogram_quantile(0.95, sum by (service, operation, le) "
                    f"(rate({service}_db_query_duration_seconds_bucket{{{sel}}}[$__rate_interval])))",
                    "{{service}} {{operation}}",
                )
                for service in ("userd", "orderd")
            ],
            unit="s",
        ),
        12,
        8,
    )
    grid.add(
        Panel(
            "timeseries",
            "DB queries by operation",
            "Repository operations per second per service and operation.",
            [
                Query(
                    "sum by (service, operation) "
                    f"(rate({service}_db_query_duration_seconds_count{{{sel}}}[$__rate_interval]))",
                    "{{service}} {{operation}}",
                )
                for service in ("userd", "orderd")
            ],
            unit="ops",
            stacked=True,
        ),
        12,
        8,
    )

    grid.row("Fault injection")
    grid.add(
        Panel(
            "stat",
            "Injected faults",
            "Whether a chaos drill has switched on injected latency or errors in a service "
            "(<service>_fault_injection_active). ON explains alerts that fire during a drill; a "
            "restart switches every fault off.",
            [
                Query(
                    f"max by (service, kind) ({service}_fault_injection_active{{{sel}}})",
                    "{{service}} {{kind}}",
                    instant=True,
                )
                for service in ("userd", "orderd")
            ],
            mappings=OFF_ON,
            thresholds=thresholds([("green", None), ("red", 1)]),
        ),
        24,
        4,
    )
    return dashboard(
        "runtime",
        "gRPC demo: runtime",
        "The Python processes behind the services: CPU, memory, file descriptors, garbage collection, "
        "database query latency and injected faults.",
        [
            query_variable("job", "Service", "python_info", "job"),
            query_variable("instance", "Instance", 'python_info{job=~"$job"}', "instance"),
        ],
        grid,
    )


DASHBOARDS: Final[dict[str, Callable[[], Json]]] = {
    "grpc-overview": overview,
    "grpc-server": grpc_server,
    "grpc-client": grpc_client,
    "business": business,
    "runtime": runtime,
}
