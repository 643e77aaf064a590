"""The alert thresholds and SLO figures the dashboards draw, so a reader sees how close a graph is to
paging. They mirror prometheus/rules/alerts.yml and recording.yml."""

from __future__ import annotations

from typing import Final

# The same set recording.yml calls "errors": faults of the server, not of the caller.
SERVER_FAULT_CODES: Final = "Unknown|Internal|Unavailable|DataLoss|DeadlineExceeded|ResourceExhausted"
# What recording.yml's server rules (the SLI) leave out: health checks and reflection are not user
# traffic. Needed only where a panel reads the raw server series in the rules' stead.
INFRASTRUCTURE_GRPC_SERVICES: Final = "grpc[.]health[.]v1[.]Health|grpc[.]reflection[.].*"

# Alert thresholds from prometheus/rules/alerts.yml, drawn as lines on the panels that show the
# alerting series, so a reader sees how close a graph is to paging.
ERROR_RATIO_ALERT: Final = 0.05  # GRPCServerErrorRateHigh, HighGRPCFailures
P95_LATENCY_ALERT: Final = 0.5  # GRPCLatencyP95High
INVALID_LOGINS_ALERT: Final = 3  # InvalidLoginSpike, per minute
ORDER_FAILURE_ALERT: Final = 0.1  # OrderCreationFailing
SLO_ERROR_BUDGET: Final = 0.001  # 99.9% availability
SLO_PERIOD: Final = "30d"  # the window the error budget is granted over
FAST_BURN: Final = 14.4  # ErrorBudgetBurnFast
SLOW_BURN: Final = 6  # ErrorBudgetBurnSlow
