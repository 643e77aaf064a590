"""deploy/ built offline with `kubectl kustomize` and checked object by object: selectors, ports,
probes, resources, security, configuration references and the monitoring objects agree with each
other, with the image and with the services' configuration contract."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BASE = "deploy/base"
DEMO = "deploy/overlays/demo"

Objects = list[dict[str, Any]]

SERVICES = {"userd": {"grpc": 50051, "metrics": 9091}, "orderd": {"grpc": 50052, "metrics": 9092}}
# The other Deployment: the blackbox exporter (its own image and user), probing the apps' Services.
BLACKBOX = "blackbox"
BLACKBOX_PORTS = {"http": 9115}
PROTOS = {"userd": "protos/user/v1/user.proto", "orderd": "protos/order/v1/order.proto"}
REQUIRED_ENV = {
    "userd": {"JWT_SECRET", "DATABASE_URL", "GRPC_ADDR", "METRICS_ADDR"},
    "orderd": {"DATABASE_URL", "GRPC_ADDR", "METRICS_ADDR", "USERD_ADDR"},
}
# The Secrets an operator creates by hand (deploy/README.md says how); never committed.
SECRET_KEYS = {
    ("userd-secrets", "jwt-secret"),
    ("userd-secrets", "database-url"),
    ("orderd-secrets", "database-url"),
}
SECRET_ENV = re.compile(r"SECRET|PASSWORD|TOKEN|DATABASE_URL|WEBHOOK", re.IGNORECASE)


def of_kind(objects: Objects, kind: str) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def app_deployments(objects: Objects) -> dict[str, dict[str, Any]]:
    """userd's and orderd's Deployments: the project's image, its user, its configuration."""
    return {name: obj for name, obj in of_kind(objects, "Deployment").items() if name in SERVICES}


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def all_containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(deployment)
    containers: list[dict[str, Any]] = spec["containers"] + spec.get("initContainers", [])
    return containers


def main_container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = pod_spec(deployment)["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def container_env(container: dict[str, Any], objects: Objects) -> dict[str, dict[str, Any]]:
    """Every variable the container gets, from envFrom ConfigMaps and env, as {name: source}."""
    config_maps = of_kind(objects, "ConfigMap")
    env: dict[str, dict[str, Any]] = {}
    for source in container.get("envFrom", []):
        name = source["configMapRef"]["name"]
        assert name in config_maps, f"envFrom names ConfigMap {name}, which the build does not contain"
        env.update({key: {"value": value} for key, value in config_maps[name]["data"].items()})
    for item in container.get("env", []):
        env[item["name"]] = item
    return env


def served_grpc_service(name: str) -> str:
    """The fully qualified service the server registers (and reports health for), from its .proto."""
    text = (REPO / PROTOS[name]).read_text(encoding="utf-8")
    package = re.search(r"^package\s+([\w.]+);", text, re.MULTILINE)
    services = re.findall(r"^service\s+(\w+)", text, re.MULTILINE)
    assert package and len(services) == 1, PROTOS[name]
    return f"{package.group(1)}.{services[0]}"


def cpu_millicores(quantity: str) -> float:
    return float(quantity[:-1]) if quantity.endswith("m") else float(quantity) * 1000


def memory_bytes(quantity: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * factor
    return float(quantity)


@pytest.fixture(scope="module")
def base(kustomize: Callable[..., Objects]) -> Objects:
    return kustomize(BASE)


def test_base_holds_exactly_the_expected_objects(base: Objects) -> None:
    names = sorted((obj["kind"], obj["metadata"]["name"]) for obj in base)
    assert names == sorted(
        [
            ("ConfigMap", "blackbox-config"),
            ("Deployment", "blackbox"),
            ("Probe", "grpc-health"),
            ("Service", "blackbox"),
            ("ConfigMap", "orderd-config"),
            ("ConfigMap", "userd-config"),
            ("Deployment", "orderd"),
            ("Deployment", "userd"),
            ("HorizontalPodAutoscaler", "orderd"),
            ("HorizontalPodAutoscaler", "userd"),
            ("PodDisruptionBudget", "orderd"),
            ("PodDisruptionBudget", "userd"),
            ("PrometheusRule", "grpc-observability-demo"),
            ("Service", "orderd"),
            ("Service", "userd"),
            ("Service", "userd-headless"),
            ("ServiceMonitor", "orderd"),
            ("ServiceMonitor", "userd"),
        ]
    )


def test_deployment_selectors_match_their_pod_labels(base: Objects) -> None:
    for name, deployment in of_kind(base, "Deployment").items():
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector, name
        assert selects(selector, deployment["spec"]["template"]["metadata"]["labels"]), name


# The Deployment behind each Service: the headless one is userd's, for orderd's balanced channel.
DEPLOYMENT_OF = {"userd": "userd", "orderd": "orderd", "userd-headless": "userd", BLACKBOX: BLACKBOX}


def test_each_service_selects_the_pods_of_exactly_its_deployment(base: Objects) -> None:
    deployments = of_kind(base, "Deployment")
    for name, service in of_kind(base, "Service").items():
        selector = service["spec"]["selector"]
        matched = [
            d
            for d, obj in deployments.items()
            if selects(selector, obj["spec"]["template"]["metadata"]["labels"])
        ]
        assert matched == [DEPLOYMENT_OF[name]], f"Service {name} selects {matched}"


def test_service_ports_target_named_container_ports(base: Objects) -> None:
    deployments = of_kind(base, "Deployment")
    for name, service in of_kind(base, "Service").items():
        deployment = DEPLOYMENT_OF[name]
        container_ports = {
            p["name"]: p["containerPort"] for p in main_container(deployments[deployment])["ports"]
        }
        service_ports = {p["name"]: p for p in service["spec"]["ports"]}
        expected = {**SERVICES, BLACKBOX: BLACKBOX_PORTS}[deployment]
        # The headless Service is for gRPC clients only; the ClusterIP one is scraped.
        assert set(service_ports) == ({"grpc"} if name == "userd-headless" else set(expected)), name
        for port_name, port in service_ports.items():
            assert port["targetPort"] in container_ports, f"{name}: targetPort {port['targetPort']}"
            assert port["port"] == container_ports[port["targetPort"]] == expected[port_name]


def test_both_services_run_two_replicas_at_least_and_scale_on_cpu(base: Objects) -> None:
    deployments = app_deployments(base)
    autoscalers = of_kind(base, "HorizontalPodAutoscaler")
    budgets = of_kind(base, "PodDisruptionBudget")
    assert set(autoscalers) == set(deployments) == set(budgets)
    for name, hpa in autoscalers.items():
        spec = hpa["spec"]
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert deployments[name]["spec"]["replicas"] == spec["minReplicas"] >= 2
        assert spec["maxReplicas"] > spec["minReplicas"]
        # The budget must leave a pod to evict at the autoscaler's floor, or a drain never proceeds.
        assert budgets[name]["spec"]["minAvailable"] < spec["minReplicas"]
        [metric] = spec["metrics"]
        assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
        # Utilization is of the CPU request: every container must have one (tested below too).
        assert main_container(deployments[name])["resources"]["requests"]["cpu"]


def test_orderd_reaches_every_userd_pod_through_the_headless_service(base: Objects) -> None:
    headless = of_kind(base, "Service")["userd-headless"]
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"].get("publishNotReadyAddresses", False) is False
    env = container_env(main_container(of_kind(base, "Deployment")["orderd"]), base)
    assert env["USERD_ADDR"]["value"] == "dns:///userd-headless:50051"


def test_disruption_budget_covers_orderd_and_lets_a_drain_proceed(base: Objects) -> None:
    deployments = of_kind(base, "Deployment")
    for name, budget in of_kind(base, "PodDisruptionBudget").items():
        pods = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert selects(budget["spec"]["selector"]["matchLabels"], pods), name
        # minAvailable equal to replicas would block every voluntary eviction.
        assert 0 < budget["spec"]["minAvailable"] < deployments[name]["spec"]["replicas"], name


def test_grpc_probes_hit_the_grpc_port_and_readiness_names_the_served_service(base: Objects) -> None:
    for name, deployment in app_deployments(base).items():
        container = main_container(deployment)
        grpc_port = SERVICES[name]["grpc"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"]["port"] == grpc_port, f"{name} {probe}"
        # The named service goes NOT_SERVING at shutdown; it must be one the server registers.
        assert container["readinessProbe"]["grpc"]["service"] == served_grpc_service(name)
        # Liveness asks the health entry that stays SERVING while the database is down or the pod
        # drains (grpcdemo.runtime.grpc_server.LIVENESS_SERVICE): a restart fixes neither.
        assert container["livenessProbe"]["grpc"]["service"] == "liveness"


def test_every_container_has_requests_and_limits(base: Objects) -> None:
    for name, deployment in of_kind(base, "Deployment").items():
        for container in all_containers(deployment):
            resources = container["resources"]
            where = f"{name}/{container['name']}"
            for resource, parse in (("cpu", cpu_millicores), ("memory", memory_bytes)):
                request, limit = resources["requests"][resource], resources["limits"][resource]
                assert parse(str(request)) <= parse(str(limit)), f"{where}: {resource} request above limit"


def _dockerfile_uid() -> int:
    users = re.findall(r"^USER\s+(\d+)", (REPO / "Dockerfile").read_text(encoding="utf-8"), re.MULTILINE)
    assert users
    return int(users[-1])


def test_pods_run_non_root_read_only_without_capabilities(base: Objects) -> None:
    for name, deployment in of_kind(base, "Deployment").items():
        spec = pod_spec(deployment)
        pod_security = spec["securityContext"]
        assert pod_security["runAsNonRoot"] is True, name
        # The project's image runs as its Dockerfile's USER; the exporter's as nobody.
        image_user = 65534 if name == BLACKBOX else _dockerfile_uid()
        assert pod_security["runAsUser"] == image_user, f"{name}: not the image's user"
        assert pod_security["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec["automountServiceAccountToken"] is False, name
        tmp_volumes = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for container in all_containers(deployment):
            where = f"{name}/{container['name']}"
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in security["capabilities"], where
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            assert mounts.get("/tmp") in tmp_volumes, f"{where}: /tmp is not a writable emptyDir"


def test_containers_get_the_configuration_the_services_require(base: Objects) -> None:
    services = of_kind(base, "Service")
    for name, deployment in app_deployments(base).items():
        for container in all_containers(deployment):
            env = container_env(container, base)
            assert REQUIRED_ENV[name] <= set(env), (
                f"{name}/{container['name']} lacks {REQUIRED_ENV[name] - set(env)}"
            )
            assert env["MIGRATE_ON_START"]["value"] == "false", (
                "the init container migrates, servers must not"
            )
        env = container_env(main_container(deployment), base)
        ports = {p["name"]: p["containerPort"] for p in main_container(deployment)["ports"]}
        for variable, port_name in (("GRPC_ADDR", "grpc"), ("METRICS_ADDR", "metrics")):
            host, _, port = env[variable]["value"].rpartition(":")
            assert host == "0.0.0.0", f"{name}: {variable} must listen beyond loopback inside a pod"
            assert int(port) == ports[port_name], f"{name}: {variable} vs containerPort {port_name}"
    userd_target = container_env(main_container(of_kind(base, "Deployment")["orderd"]), base)["USERD_ADDR"]
    userd_host, _, userd_port = userd_target["value"].removeprefix("dns:///").rpartition(":")
    assert userd_host in services, f"USERD_ADDR names {userd_host}, which is not a Service"
    grpc = next(p for p in services[userd_host]["spec"]["ports"] if p["name"] == "grpc")
    assert int(userd_port) == grpc["port"]


def test_init_containers_migrate_before_serving(base: Objects) -> None:
    for name, deployment in app_deployments(base).items():
        init = pod_spec(deployment)["initContainers"]
        assert [c["command"] for c in init] == [[name, "migrate"]]
        assert main_container(deployment)["command"] == [name, "serve"]


def test_secrets_are_only_referenced_never_committed(base: Objects, repo: Path) -> None:
    assert not of_kind(base, "Secret"), "Secret values must not be in the repository"
    referenced = set()
    for deployment in of_kind(base, "Deployment").values():
        for container in all_containers(deployment):
            for variable, source in container_env(container, base).items():
                if SECRET_ENV.search(variable):
                    assert "value" not in source, f"{variable} is set inline; it must come from a Secret"
                    ref = source["valueFrom"]["secretKeyRef"]
                    referenced.add((ref["name"], ref["key"]))
    assert referenced == SECRET_KEYS
    readme = (repo / "deploy/README.md").read_text(encoding="utf-8")
    # One shell command, continuation lines included, per Secret.
    commands = {
        match.group(1): match.group(2)
        for match in re.finditer(r"create secret generic ([\w-]+)((?:[^\n]*\\\n)*[^\n]*)", readme)
    }
    for secret, key in SECRET_KEYS:
        assert re.search(rf"--from-(?:literal|file)={key}=", commands.get(secret, "")), (
            f"deploy/README.md must show how to create {secret} with key {key}"
        )


def test_images_are_pinned_and_shared(base: Objects) -> None:
    images = {c["image"] for d in app_deployments(base).values() for c in all_containers(d)}
    assert len(images) == 1, images
    tag = images.pop().rsplit(":", 1)[1]
    assert tag != "latest" and re.search(r"\d", tag), tag


def test_servicemonitors_select_their_service_and_scrape_the_metrics_port(base: Objects) -> None:
    services = of_kind(base, "Service")
    monitors = of_kind(base, "ServiceMonitor")
    # The exporter is not scraped for its own metrics; the Probe below scrapes it for the probes.
    assert set(monitors) == set(services) - {"userd-headless", BLACKBOX}
    for name, monitor in monitors.items():
        selector = monitor["spec"]["selector"]["matchLabels"]
        selected = [s for s, obj in services.items() if selects(selector, obj["metadata"]["labels"])]
        # The operator names the job after the Service: job="userd" / "orderd", as the rules expect.
        assert selected == [name], f"ServiceMonitor {name} selects {selected}"
        assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
        assert monitor["spec"].get("jobLabel") is None, "jobLabel would rename the job the rules match on"


def test_scrape_interval_matches_prometheus_yml(base: Objects, repo: Path) -> None:
    config_path = repo / "prometheus/prometheus.yml"
    if not config_path.exists():
        pytest.skip("prometheus/prometheus.yml not written yet")
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    interval = config["global"]["scrape_interval"]
    for name, monitor in of_kind(base, "ServiceMonitor").items():
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["interval"] == interval, f"{name}: the rules are tuned for {interval} scrapes"


def test_objects_validate_against_the_kubernetes_schema(
    base: Objects,
    require_tool: Callable[[str, str], str],
    tmp_path: Path,
    run: Callable[..., Any],
) -> None:
    validate = require_tool("kubernetes-validate", "pip install kubernetes-validate: offline OpenAPI schemas")
    manifest = tmp_path / "base.yaml"
    # The Prometheus Operator's kinds have no schema in the tool; the other tests cover them.
    manifest.write_text(
        yaml.safe_dump_all([obj for obj in base if "monitoring.coreos.com" not in obj["apiVersion"]])
    )
    # 1.27 is the oldest release with native gRPC probes generally available; then the newest.
    for version in ("1.27.0", None):
        args = [validate, "--strict", "--quiet", *(["-k", version] if version else []), str(manifest)]
        result = run(args)
        assert result.returncode == 0, result.stdout + result.stderr


# --- the demo overlay -----------------------------------------------------------------------------


def _overlay_dashboard_files(repo: Path) -> list[Path]:
    kustomization = yaml.safe_load((repo / DEMO / "kustomization.yaml").read_text(encoding="utf-8"))
    return [
        (repo / DEMO / file).resolve()
        for generator in kustomization.get("configMapGenerator", [])
        for file in generator["files"]
    ]


def _require_dashboards(repo: Path) -> list[Path]:
    dashboards = sorted((repo / "grafana/dashboards").glob("*.json"))
    if not dashboards:
        pytest.skip("grafana/dashboards/*.json not written yet; the demo overlay reads them")
    return dashboards


def test_demo_overlay_ships_every_dashboard(repo: Path) -> None:
    dashboards = _require_dashboards(repo)
    assert sorted(_overlay_dashboard_files(repo)) == [d.resolve() for d in dashboards]


def test_demo_overlay_builds_into_one_namespace_with_labelled_dashboards(
    kustomize: Callable[..., Objects], repo: Path
) -> None:
    _require_dashboards(repo)
    objects = kustomize(DEMO, load_anywhere=True)
    namespaces = of_kind(objects, "Namespace")
    assert list(namespaces) == ["grpc-demo"]
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "grpc-demo", obj["metadata"]["name"]
    dashboards = [
        c for c in of_kind(objects, "ConfigMap").values() if "grafana_dashboard" in c["metadata"]["labels"]
    ]
    assert dashboards
    for config_map in dashboards:
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert all(key.endswith(".json") for key in config_map["data"])
    for kind in ("ServiceMonitor", "PrometheusRule"):
        for obj in of_kind(objects, kind).values():
            assert "release" in obj["metadata"]["labels"], f"{kind} would be ignored by kube-prometheus-stack"


def test_the_probe_checks_each_services_grpc_health_through_its_service(base: Objects, repo: Path) -> None:
    [probe] = of_kind(base, "Probe").values()
    spec = probe["spec"]
    services = of_kind(base, "Service")
    # The same job, module and labels as natively and in compose: the rules select job="blackbox".
    assert spec["jobName"] == "blackbox"
    modules = yaml.safe_load((repo / "prometheus/blackbox.yml").read_text(encoding="utf-8"))["modules"]
    assert spec["module"] in modules
    config = of_kind(base, "ConfigMap")["blackbox-config"]["data"]["blackbox.yml"]
    assert yaml.safe_load(config) == yaml.safe_load(
        (repo / "prometheus/blackbox.yml").read_text(encoding="utf-8")
    )
    for target in spec["targets"]["staticConfig"]["static"]:
        host, _, port = target.rpartition(":")
        grpc = next(p for p in services[host]["spec"]["ports"] if p["name"] == "grpc")
        assert int(port) == grpc["port"], target
    [relabel] = spec["targets"]["staticConfig"]["relabelingConfigs"]
    assert re.sub(relabel["regex"], relabel["replacement"].replace("$1", r"\1"), "userd:50051") == "userd"
    # Prometheus reaches the exporter from its own namespace: the Service's full name there.
    overlay = yaml.safe_load((repo / DEMO / "kustomization.yaml").read_text(encoding="utf-8"))
    assert spec["prober"]["url"] == f"{BLACKBOX}.{overlay['namespace']}.svc:{BLACKBOX_PORTS['http']}"
    config_path = repo / "prometheus/prometheus.yml"
    assert (
        spec["interval"]
        == yaml.safe_load(config_path.read_text(encoding="utf-8"))["global"]["scrape_interval"]
    )
