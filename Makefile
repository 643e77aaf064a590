# Two commands matter: `make up` (the whole demo) and `make test` (lint + every test layer).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# `make up` installs what running needs; `make test` (and the other dev targets) add the dev extras.
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev
MODE ?= auto
# Test processes for `make test`: most tests wait on sockets, processes and real alerts rather
# than on the CPU, so more workers than cores pays.
TEST_WORKERS ?= 4

.DEFAULT_GOAL := help
.PHONY: help venv venv-dev proto lint format test test-unit test-integration test-e2e test-rehearsal up down \
	migrate bench bench-metrics bench-capacity bench-rpc env k8s-rules dashboards demo-alerts chaos-down rehearse \
	quiet-check

help: ## list targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-20s %s\n", $$1, $$2}'

$(STAMP_RUN): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "$(PYTHON) is Python $$($(PYTHON) -c 'import platform; print(platform.python_version())'); 3.11 or newer is needed: make up PYTHON=python3.12" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e .
	touch $(STAMP_RUN)

$(STAMP_DEV): $(STAMP_RUN)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP_DEV)

venv: $(STAMP_RUN) ## create .venv with what running the stack needs (pinned by constraints.txt)

venv-dev: $(STAMP_DEV) ## add the dev extras (tests, linters, generators, benchmarks)

proto: $(STAMP_DEV) ## regenerate services/grpcdemo/genproto from protos/
	$(PY) tools/gen_proto.py

env: ## add any missing secret (JWT_SECRET, POSTGRES_PASSWORD, USERD_DB_PASSWORD, ORDERD_DB_PASSWORD, GRAFANA_ADMIN_PASSWORD, FAULT_INJECTION_TOKEN) to the git-ignored .env
	@$(PYTHON) tools/up.py env

dashboards: $(STAMP_DEV) ## regenerate grafana/dashboards/*.json from tools/gen_dashboards.py
	$(PY) tools/gen_dashboards.py

k8s-rules: $(STAMP_DEV) ## regenerate deploy/base/prometheusrule.yaml from prometheus/rules/*.yml (RUNBOOK_BASE_URL= for a served runbook)
	$(PY) tools/gen_k8s_rules.py $(if $(RUNBOOK_BASE_URL),--runbook-base-url $(RUNBOOK_BASE_URL))

lint: $(STAMP_DEV) ## ruff, ruff format, mypy --strict and the import direction (import-linter)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy services tools tests loadgen
	PYTHONPATH=services:. $(VENV)/bin/lint-imports --no-cache

format: $(STAMP_DEV) ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint ## lint, then every test layer in parallel (unit, integration, e2e)
	$(VENV)/bin/pytest -rs -n $(TEST_WORKERS) --dist loadfile

test-unit: $(STAMP_DEV) ## I/O-free tests only (no sockets, processes or sleeps), a few seconds
	$(VENV)/bin/pytest -rs -m unit

test-integration: $(STAMP_DEV) ## in-process servers, SQLite and PostgreSQL, promtool/amtool, deployment tools
	$(VENV)/bin/pytest -rs -m integration -n $(TEST_WORKERS) --dist loadfile

test-e2e: $(STAMP_DEV) ## the stack `make up` starts, as real processes, with real alerts (a few minutes)
	$(VENV)/bin/pytest -rs -m e2e -n $(TEST_WORKERS) --dist loadfile

quiet-check: $(STAMP_DEV) ## the live quiet test for 10 min instead of 3: 100 requests/s of the steady mix pages no one (~14 min)
	QUIET_MINUTES=10 $(VENV)/bin/pytest -rs -s tests/e2e/test_quiet_under_load.py

test-rehearsal: $(STAMP_DEV) ## docker-compose.yml rehearsed without Docker, userd x3 and orderd x2 (root; ~6 min; part of `make test`)
	$(VENV)/bin/pytest -rs -m rehearsal

# Extra flags for `make rehearse`, e.g. REHEARSE_ARGS="--scale userd=3 --scale orderd=2"
REHEARSE_ARGS ?= --scale userd=3 --scale orderd=2
rehearse: $(STAMP_RUN) env ## run docker-compose.yml without Docker until Ctrl-C (root; dnsmasq, each replica on its own 127.77.x.y)
	$(PY) tools/rehearse.py $(REHEARSE_ARGS)

migrate: $(STAMP_RUN) env ## apply database migrations for both services
	set -a; source .env; set +a; $(VENV)/bin/userd migrate && $(VENV)/bin/orderd migrate

bench: bench-metrics bench-rpc bench-capacity ## every benchmark: instrumentation cost, per-RPC cost vs bare gRPC, sustained rate

bench-capacity: $(STAMP_DEV) ## highest zero-error steady rate of the stack on this machine, p50/p99 per step (~2 min)
	$(PY) tools/bench_capacity.py

bench-metrics: $(STAMP_DEV) ## CPU per unary call: bare vs metrics wrapper vs the services' wrapper vs OpenTelemetry's interceptor (~75 s)
	$(PY) tools/bench_metrics.py

bench-rpc: $(STAMP_DEV) ## each RPC's calls/s and server CPU next to a bare grpc.aio echo, in one run (~3 min)
	$(PY) tools/bench_rpc.py

LOADGEN := $(VENV)/bin/loadgen
# Extra flags for every loadgen target, e.g. make chaos-slow LOADGEN_ARGS="--rps 20 --duration 120"
LOADGEN_ARGS ?=
# The services of `make up` require FAULT_INJECTION_TOKEN on /admin/faults; loadgen reads it from its
# environment (never from argv, which `ps` shows). `make env` keeps it in .env.
FAULT_TOKEN_FROM_ENV_FILE := FAULT_INJECTION_TOKEN="$$(sed -n 's/^FAULT_INJECTION_TOKEN=//p' .env)"
# These scenarios run next to the background generator of `make up`, which owns the metrics port
# (127.0.0.1:9097 natively), so they serve no metrics of their own.
LOADGEN_HOST := $(FAULT_TOKEN_FROM_ENV_FILE) $(LOADGEN) --metrics-addr 0
# In compose the services' gRPC and admin ports are reachable only on the compose network: run the
# scenario there, in a throw-away container of the loadgen service (its image, and its environment,
# which carries the token). The root filesystem is read-only, so the user pool lives in /tmp.
LOADGEN_COMPOSE := docker compose run --rm --no-deps loadgen loadgen \
	--target-userd userd:50051 --target-orderd orderd:50052 \
	--userd-admin http://userd:9091 --orderd-admin http://orderd:9092 \
	--pool-file /tmp/loadgen-users.json --metrics-addr 0
# `make up` leaves .run/stack.pid while the native stack runs and no marker for compose: without the
# pid file, ask compose whether its userd is running (empty when there is no Docker engine).
COMPOSE_RUNNING = $(if $(wildcard .run/stack.pid),,$(shell docker compose ps -q --status running userd 2>/dev/null))
LOADGEN_SIDE = $(if $(COMPOSE_RUNNING),$(LOADGEN_COMPOSE),$(LOADGEN_HOST))
.PHONY: loadgen spike attack-bruteforce attack-bad-requests chaos-outage chaos-slow chaos-errors

loadgen: $(STAMP_RUN) env ## steady default mix at 10/s until Ctrl-C, summary at the end
	$(LOADGEN_SIDE) --scenario steady --rps 10 $(LOADGEN_ARGS)

spike: $(STAMP_RUN) env ## 10/s, then 50/s from 30 s for 60 s, then 10/s again (150 s)
	$(LOADGEN_SIDE) --scenario spike --rps 10 --duration 150 $(LOADGEN_ARGS)

attack-bruteforce: $(STAMP_RUN) env ## wrong-password logins against 3 accounts, ~60/min for 3 min: InvalidLoginSpike
	$(LOADGEN_SIDE) --scenario bruteforce --rps 5 --duration 180 $(LOADGEN_ARGS)

attack-bad-requests: $(STAMP_RUN) env ## a third of requests malformed (INVALID_ARGUMENT) for 3 min: no server-error alert
	$(LOADGEN_SIDE) --scenario bad-requests --rps 10 --duration 180 $(LOADGEN_ARGS)

chaos-outage: $(STAMP_RUN) env ## userd Me answers UNAVAILABLE for 5 min: HighGRPCFailures, OrderCreationFailing
	$(LOADGEN_SIDE) --scenario outage --rps 10 --duration 300 $(LOADGEN_ARGS)

chaos-slow: $(STAMP_RUN) env ## 600-900 ms added to every orderd call for 5 min: GRPCLatencyP95High
	$(LOADGEN_SIDE) --scenario slow --rps 10 --duration 300 $(LOADGEN_ARGS)

chaos-errors: $(STAMP_RUN) env ## INTERNAL on 20% of orderd calls for 5 min: GRPCServerErrorRateHigh, ErrorBudgetBurnFast
	$(LOADGEN_SIDE) --scenario errors --rps 10 --duration 300 $(LOADGEN_ARGS)

SVC ?= userd
MINUTES ?= 2
chaos-down: ## hold SVC (userd) down for MINUTES (2), then bring it back: ServiceDown fires, then resolves
	@if [ -n "$(COMPOSE_RUNNING)" ]; then \
	  docker compose stop $(SVC) && echo "$(SVC) stopped for $(MINUTES) min" && sleep $$(( $(MINUTES) * 60 )) && docker compose start $(SVC); \
	else \
	  $(PYTHON) tools/up.py hold --component $(SVC) --minutes $(MINUTES); \
	fi

demo-alerts: $(STAMP_RUN) env ## with native `make up` running: sets off every alert a demo can (about 30 min), times each, says why the rest cannot
	$(FAULT_TOKEN_FROM_ENV_FILE) SLACK_WEBHOOK_URL="$$(sed -n 's/^SLACK_WEBHOOK_URL=//p' .env)" $(PY) tools/demo_alerts.py

up: $(STAMP_RUN) env ## run the demo (docker compose when an engine answers, else native; MODE=native forces it)
	$(PY) tools/up.py up --mode $(MODE)

down: ## stop a stack started with `make up` (in the background or left behind)
	@$(PYTHON) tools/up.py down
