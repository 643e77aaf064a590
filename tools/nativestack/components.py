"""The native stack, described once: every component's command, environment, ports, health check
and start order. `make up`, `make down`, the Prometheus target files, the benchmarks and the
end-to-end test fixtures all build it with `components(settings)`; they differ only in
`StackSettings` (ports, folders, secrets) and, for tests and benchmarks, in the one named override
`StackOverrides`.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

from stackconfig import (
    NotificationUrls,
    write_alertmanager_secrets,
    write_blackbox_targets,
    write_prometheus_targets,
)

ROOT: Final = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------------------
# Ports


@dataclass(frozen=True)
class ServicePorts:
    grpc: int
    metrics: int

    @property
    def grpc_addr(self) -> str:
        return f"127.0.0.1:{self.grpc}"


@dataclass(frozen=True)
class Ports:
    slacksink: int
    userd: tuple[ServicePorts, ...]
    orderd: ServicePorts
    alertmanager: int
    prometheus: int
    loadgen: int
    grafana: int
    blackbox: int

    @classmethod
    def default(cls, userd_replicas: int = 1) -> Ports:
        """The documented ports (README). A second userd replica listens 10 above the first (gRPC)
        and 100 above it (metrics): 50061 and 9191."""
        return cls(
            slacksink=9095,
            userd=tuple(ServicePorts(50051 + 10 * n, 9091 + 100 * n) for n in range(userd_replicas)),
            orderd=ServicePorts(50052, 9092),
            alertmanager=9093,
            prometheus=9090,
            loadgen=9097,
            grafana=3000,
            blackbox=9115,
        )

    @classmethod
    def free(cls, userd_replicas: int = 1) -> Ports:
        """Ports the OS says are free now, so a test stack never collides with a running demo."""
        return cls(
            slacksink=free_port(),
            userd=tuple(ServicePorts(free_port(), free_port()) for _ in range(userd_replicas)),
            orderd=ServicePorts(free_port(), free_port()),
            alertmanager=free_port(),
            prometheus=free_port(),
            loadgen=free_port(),
            grafana=free_port(),
            blackbox=free_port(),
        )

    def scrape_targets(self) -> dict[str, list[str]]:
        """host:port lists per Prometheus job (prometheus/prometheus.yml reads them from files)."""
        return {
            "userd": [f"127.0.0.1:{p.metrics}" for p in self.userd],
            "orderd": [f"127.0.0.1:{self.orderd.metrics}"],
            "loadgen": [f"127.0.0.1:{self.loadgen}"],
            "prometheus": [f"127.0.0.1:{self.prometheus}"],
            "alertmanager": [f"127.0.0.1:{self.alertmanager}"],
        }

    def probe_targets(self) -> dict[str, list[str]]:
        """gRPC addresses per service for the black-box probes: the addresses clients use."""
        return {"userd": [p.grpc_addr for p in self.userd], "orderd": [self.orderd.grpc_addr]}

    @property
    def userd_target(self) -> str:
        """orderd's USERD_ADDR: one address, or gRPC's `ipv4:` list for several replicas."""
        if len(self.userd) == 1:
            return self.userd[0].grpc_addr
        return "ipv4:" + ",".join(p.grpc_addr for p in self.userd)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ---------------------------------------------------------------------------------------------
# Health checks (data, so two descriptions of the stack compare equal or not)


class Probe(Protocol):
    def check(self) -> bool: ...


@dataclass(frozen=True)
class HttpProbe:
    url: str

    def check(self) -> bool:
        try:
            with urllib.request.urlopen(self.url, timeout=1) as response:  # noqa: S310 - local URLs
                return bool(200 <= response.status < 300)
        except (urllib.error.URLError, OSError):
            return False


@dataclass(frozen=True)
class GrpcHealthProbe:
    """grpc.health.v1 Check answers SERVING, asked in-process (no subprocess per poll)."""

    port: int

    def check(self) -> bool:
        import grpc  # the stack's own venv has it; imported late so `make env` needs no venv
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        try:
            with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


@dataclass(frozen=True)
class AllOf:
    probes: tuple[Probe, ...]

    def check(self) -> bool:
        return all(probe.check() for probe in self.probes)


# ---------------------------------------------------------------------------------------------
# The table


@dataclass(frozen=True)
class Component:
    """One process of the stack. `env` is what it gets on top of the stack's base environment."""

    name: str
    argv: tuple[str, ...]
    ports: Mapping[str, int]
    ready: Probe
    urls: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path = ROOT
    # Services are restarted when they exit, like an orchestrator would; the load generator too.
    restart: bool = True


@dataclass(frozen=True)
class StackOverrides:
    """The only way tests and benchmarks change what `make up` starts (`tests/support/live_stack.py`
    documents why the tests use each). Everything else (commands, flags, health checks, order) is
    `make up`'s."""

    service_env: Mapping[str, str] = field(default_factory=dict)
    """Added to userd's and orderd's environment, e.g. BCRYPT_ROUNDS=4, LOG_FORMAT=json."""
    loadgen_args: Sequence[str] = ()
    """Appended to the load generator's command, e.g. a smaller user pool and a fixed seed."""


@dataclass(frozen=True)
class Binaries:
    """Executables outside the project's venv (the Debian packages), and the venv's bin folder."""

    prometheus: str
    alertmanager: str
    venv_bin: Path
    grafana: tuple[str, ...] | None = None
    blackbox: str = "prometheus-blackbox-exporter"


@dataclass(frozen=True)
class StackSettings:
    run_dir: Path
    data_dir: Path
    ports: Ports
    binaries: Binaries
    loadgen_rps: str = "5"
    with_loadgen: bool = True
    overrides: StackOverrides = field(default_factory=StackOverrides)

    @property
    def logs_dir(self) -> Path:
        return self.run_dir / "logs"


def _service(
    settings: StackSettings, name: str, ports: ServicePorts, label: str, extra_env: Mapping[str, str]
) -> Component:
    binary = "userd" if name.startswith("userd") else "orderd"
    env = {
        "GRPC_ADDR": ports.grpc_addr,
        "METRICS_ADDR": f"127.0.0.1:{ports.metrics}",
        "DATABASE_URL": f"sqlite+aiosqlite:///{settings.data_dir / f'{binary}.sqlite3'}",
        # `make up` turns the chaos drills on; the token comes from .env (the base environment).
        "FAULT_INJECTION_ENABLED": "true",
        **extra_env,
        **settings.overrides.service_env,
    }
    return Component(
        name,
        (str(settings.binaries.venv_bin / binary),),
        {"gRPC": ports.grpc, "metrics": ports.metrics},
        AllOf((GrpcHealthProbe(ports.grpc), HttpProbe(f"http://127.0.0.1:{ports.metrics}/healthz"))),
        {f"{label} gRPC": ports.grpc_addr, f"{label} metrics": f"http://127.0.0.1:{ports.metrics}/metrics"},
        env,
    )


def _grafana(settings: StackSettings) -> Component:
    """A locally installed Grafana (optional) with the same dashboards as compose, provisioned from
    <run>/grafana/provisioning (prepare_run_dir), its data in <run>/grafana/data."""
    assert settings.binaries.grafana is not None
    port = settings.ports.grafana
    env = {
        "GF_PATHS_PROVISIONING": str(settings.run_dir / "grafana" / "provisioning"),
        "GF_PATHS_DATA": str(settings.run_dir / "grafana" / "data"),
        "GF_PATHS_LOGS": str(settings.logs_dir / "grafana"),
        "GF_SERVER_HTTP_ADDR": "127.0.0.1",
        "GF_SERVER_HTTP_PORT": str(port),
        "GF_SERVER_ROOT_URL": f"http://127.0.0.1:{port}",
        "GF_AUTH_ANONYMOUS_ENABLED": "true",
        "GF_AUTH_ANONYMOUS_ORG_ROLE": "Viewer",
        "GF_USERS_ALLOW_SIGN_UP": "false",
        "GF_ANALYTICS_REPORTING_ENABLED": "false",
        "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
        # The admin password: GF_SECURITY_ADMIN_PASSWORD in the base environment, which tools/up.py
        # sets from .env's GRAFANA_ADMIN_PASSWORD (never written into a file or a log).
    }
    return Component(
        "grafana",
        settings.binaries.grafana,
        {"http": port},
        HttpProbe(f"http://127.0.0.1:{port}/api/health"),
        {"Grafana": f"http://127.0.0.1:{port}/d/grpc-overview (admin / GRAFANA_ADMIN_PASSWORD in .env)"},
        env,
    )


def write_grafana_provisioning(settings: StackSettings, directory: Path) -> None:
    """grafana/provisioning/ for a native Grafana: grafana/provisioning/'s data sources with their
    uids and settings but 127.0.0.1 URLs, without Jaeger and Loki (natively there are none), and the
    dashboards from the repo's folder. Written as JSON, which YAML readers take as is (running the
    stack needs no YAML library); tests/unit/test_nativestack.py keeps it equal to the repo's files."""
    datasources: list[dict[str, object]] = [
        {
            "name": "Prometheus",
            "uid": "prometheus",
            "type": "prometheus",
            "access": "proxy",
            "url": f"http://127.0.0.1:{settings.ports.prometheus}",
            "isDefault": True,
            "editable": False,
            "jsonData": {"timeInterval": "5s", "httpMethod": "POST"},
        },
        {
            "name": "Alertmanager",
            "uid": "alertmanager",
            "type": "alertmanager",
            "access": "proxy",
            "url": f"http://127.0.0.1:{settings.ports.alertmanager}",
            "editable": False,
            "jsonData": {"implementation": "prometheus"},
        },
    ]
    provider = {
        "name": "grpc-demo",
        "orgId": 1,
        "folder": "gRPC demo",
        "type": "file",
        "disableDeletion": True,
        "allowUiUpdates": False,
        "updateIntervalSeconds": 30,
        "options": {"path": str(ROOT / "grafana" / "dashboards"), "foldersFromFilesStructure": False},
    }
    for kind, document in (
        ("datasources", {"apiVersion": 1, "datasources": datasources}),
        ("dashboards", {"apiVersion": 1, "providers": [provider]}),
    ):
        (directory / kind).mkdir(parents=True, exist_ok=True)
        (directory / kind / f"{kind}.yml").write_text(json.dumps(document, indent=2) + "\n")


def components(settings: StackSettings) -> list[Component]:
    """The stack in start order: each component starts once the ones before it are healthy."""
    ports, run, binaries = settings.ports, settings.run_dir, settings.binaries
    stack = [
        Component(
            "slacksink",
            (
                str(binaries.venv_bin / "slacksink"),
                "--addr",
                f"127.0.0.1:{ports.slacksink}",
                "--jsonl",
                str(run / "slack-messages.jsonl"),
            ),
            {"http": ports.slacksink},
            HttpProbe(f"http://127.0.0.1:{ports.slacksink}/healthz"),
            {"Slack sink": f"http://127.0.0.1:{ports.slacksink}/"},
        )
    ]
    replicas = len(ports.userd)
    for n, userd_ports in enumerate(ports.userd):
        name = "userd" if n == 0 else f"userd-{n + 1}"
        label = name if replicas == 1 else f"userd replica {n + 1}"
        stack.append(_service(settings, name, userd_ports, label, {}))
    stack.append(_service(settings, "orderd", ports.orderd, "orderd", {"USERD_ADDR": ports.userd_target}))
    stack += [
        Component(
            "alertmanager",
            (
                binaries.alertmanager,
                f"--config.file={run / 'alertmanager' / 'alertmanager.yml'}",
                f"--storage.path={run / 'alertmanager' / 'data'}",
                f"--web.listen-address=127.0.0.1:{ports.alertmanager}",
                f"--web.external-url=http://127.0.0.1:{ports.alertmanager}",
                "--cluster.listen-address=",
            ),
            {"http": ports.alertmanager},
            HttpProbe(f"http://127.0.0.1:{ports.alertmanager}/-/ready"),
            {"Alertmanager": f"http://127.0.0.1:{ports.alertmanager}/"},
            # Alertmanager 0.25 opens `api_url_file` relative to its working directory (templates
            # relative to the config file): run it from the config's folder so both resolve alike.
            cwd=run / "alertmanager",
        ),
        Component(
            "blackbox",
            (
                binaries.blackbox,
                f"--config.file={ROOT / 'prometheus' / 'blackbox.yml'}",
                f"--web.listen-address=127.0.0.1:{ports.blackbox}",
            ),
            {"http": ports.blackbox},
            HttpProbe(f"http://127.0.0.1:{ports.blackbox}/-/healthy"),
            {"Blackbox exporter": f"http://127.0.0.1:{ports.blackbox}/"},
        ),
        Component(
            "prometheus",
            (
                binaries.prometheus,
                f"--config.file={run / 'prometheus' / 'prometheus.yml'}",
                f"--storage.tsdb.path={run / 'prometheus' / 'data'}",
                f"--web.listen-address=127.0.0.1:{ports.prometheus}",
                f"--web.external-url=http://127.0.0.1:{ports.prometheus}",
                # POST /-/reload after editing a rule file, without a restart.
                "--web.enable-lifecycle",
                "--enable-feature=exemplar-storage",
            ),
            {"http": ports.prometheus},
            HttpProbe(f"http://127.0.0.1:{ports.prometheus}/-/ready"),
            {"Prometheus": f"http://127.0.0.1:{ports.prometheus}/ (classic UI: /classic/graph)"},
        ),
    ]
    if binaries.grafana is not None:
        stack.append(_grafana(settings))
    if settings.with_loadgen:
        userd_admin = f"http://127.0.0.1:{ports.userd[0].metrics}"
        stack.append(
            Component(
                "loadgen",
                (
                    str(binaries.venv_bin / "loadgen"),
                    "--rps",
                    settings.loadgen_rps,
                    "--target-userd",
                    ports.userd[0].grpc_addr,
                    "--target-orderd",
                    ports.orderd.grpc_addr,
                    "--userd-admin",
                    userd_admin,
                    "--orderd-admin",
                    f"http://127.0.0.1:{ports.orderd.metrics}",
                    "--pool-file",
                    str(settings.data_dir / "loadgen-users.json"),
                    "--metrics-addr",
                    f"127.0.0.1:{ports.loadgen}",
                    *settings.overrides.loadgen_args,
                ),
                {"metrics": ports.loadgen},
                HttpProbe(f"http://127.0.0.1:{ports.loadgen}/metrics"),
                {"loadgen metrics": f"http://127.0.0.1:{ports.loadgen}/metrics"},
            )
        )
    return stack


def service_components(settings: StackSettings) -> list[Component]:
    """Only userd (every replica) and orderd, as the stack runs them."""
    return [c for c in components(settings) if c.name.startswith(("userd", "orderd"))]


def services_settings(
    work: Path, *, userd_replicas: int = 1, overrides: StackOverrides | None = None
) -> StackSettings:
    """Settings for running just the services (benchmarks, tests) on free ports under `work`."""
    return StackSettings(
        run_dir=work / "run",
        data_dir=work / "data",
        ports=Ports.free(userd_replicas),
        # Not started by service_components: Prometheus and Alertmanager are not needed.
        binaries=Binaries("prometheus", "alertmanager", Path(sys.executable).parent),
        with_loadgen=False,
        overrides=overrides or StackOverrides(),
    )


# ---------------------------------------------------------------------------------------------
# Run-time files


def _link(target: Path, at: Path) -> None:
    if at.is_symlink() or at.exists():
        at.unlink()
    at.symlink_to(os.path.relpath(target, at.parent))


def prepare_run_dir(settings: StackSettings, env: Mapping[str, str], sink_url: str | None = None) -> None:
    """The same prometheus.yml, rules, alertmanager.yml and templates as compose, unedited: linked
    next to the files only a native run needs (targets on 127.0.0.1, webhook URL files)."""
    run = settings.run_dir
    prom = run / "prometheus"
    prom.mkdir(parents=True, exist_ok=True)
    _link(ROOT / "prometheus" / "prometheus.yml", prom / "prometheus.yml")
    _link(ROOT / "prometheus" / "rules", prom / "rules")
    write_prometheus_targets(prom / "targets", settings.ports.scrape_targets())
    write_blackbox_targets(
        prom / "targets", settings.ports.probe_targets(), f"127.0.0.1:{settings.ports.blackbox}"
    )
    am = run / "alertmanager"
    am.mkdir(parents=True, exist_ok=True)
    _link(ROOT / "alertmanager" / "alertmanager.yml", am / "alertmanager.yml")
    _link(ROOT / "alertmanager" / "templates", am / "templates")
    sink = sink_url or f"http://127.0.0.1:{settings.ports.slacksink}"
    write_alertmanager_secrets(am, NotificationUrls.from_env(env, sink))
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.binaries.grafana is not None:
        write_grafana_provisioning(settings, run / "grafana" / "provisioning")


def describe(stack: Sequence[Component]) -> str:
    """A stable text form of a stack, for comparing two descriptions in tests."""
    return json.dumps(
        [
            {
                "name": c.name,
                "argv": list(c.argv),
                "ports": dict(c.ports),
                "ready": repr(c.ready),
                "env": dict(sorted(c.env.items())),
                "cwd": str(c.cwd),
                "restart": c.restart,
            }
            for c in stack
        ],
        indent=1,
    )
