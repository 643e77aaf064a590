"""The rehearsal reads docker-compose.yml as compose does: interpolation rules, merge keys, command and
environment per service, mounts resolved against the file's folder; a required variable left unset
stops it as it stops compose."""

from __future__ import annotations

from pathlib import Path

import pytest
from nativestack.dotenv import SECRETS
from rehearsal import container
from rehearsal.composefile import ComposeError, dockerfile_env, dockerfile_user, interpolate, load
from rehearsal.stack import Rehearsal, localize

ROOT = Path(__file__).resolve().parents[2]
ENV = {name: f"{name.lower()}-value" for name in SECRETS}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${A}", "a"),
        ("$A-$B", "a-"),
        ("${B:-fallback}", "fallback"),
        ("${E:-fallback}", "fallback"),
        ("${E-fallback}", ""),
        ("${A:+alt}", "alt"),
        ("${B:+alt}", ""),
        ("$$A", "$A"),
    ],
)
def test_interpolation_follows_compose(text: str, expected: str) -> None:
    assert interpolate(text, {"A": "a", "E": ""}) == expected


def test_a_required_variable_unset_stops_it_with_compose_s_message() -> None:
    with pytest.raises(ComposeError, match="JWT_SECRET is not set"):
        interpolate("${JWT_SECRET:?JWT_SECRET is not set}", {})


def test_the_real_file_gives_each_service_what_compose_gives_it() -> None:
    project = load(ROOT / "docker-compose.yml", ENV)
    userd = project.services["userd"]
    assert userd.built_here and userd.command == ("userd", "serve")
    # Merge keys: the telemetry block, the userd block and the fault-injection block all arrive.
    assert userd.environment["GRPC_ADDR"] == "0.0.0.0:50051"
    assert userd.environment["SHUTDOWN_DRAIN_SECONDS"] == "12"
    assert userd.environment["FAULT_INJECTION_TOKEN"] == "fault_injection_token-value"
    assert "userd_db_password-value@postgres:5432/userd" in userd.environment["DATABASE_URL"]
    assert userd.depends_on["userd-migrate"] == "service_completed_successfully"
    assert userd.stop_grace_period == 30.0 and userd.read_only and userd.tmpfs == ("/tmp",)
    assert userd.healthcheck is not None and userd.healthcheck.argv == ("grpc-healthcheck", "127.0.0.1:50051")
    alertmanager = project.services["alertmanager"]
    assert alertmanager.working_dir == "/etc/alertmanager"
    mounts = {m.target: m for m in alertmanager.mounts}
    assert (
        mounts["/etc/alertmanager"].source == str(ROOT / "alertmanager")
        and mounts["/etc/alertmanager"].read_only
    )
    assert mounts["/alertmanager"].named_volume
    assert all(not spec.unsupported for spec in project.services.values()), "a compose key nobody rehearses"


def test_the_image_environment_and_user_come_from_the_dockerfile() -> None:
    env = dockerfile_env(ROOT / "Dockerfile")
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert env["PYTHONUNBUFFERED"] == "1"
    assert dockerfile_user(ROOT / "Dockerfile") == "10001:10001"


def test_services_start_after_what_they_depend_on(tmp_path: Path) -> None:
    project = load(ROOT / "docker-compose.yml", ENV)
    order = Rehearsal(project, tmp_path).start_order()
    for name, spec in project.services.items():
        for dependency in spec.depends_on:
            assert order.index(dependency) < order.index(name), f"{name} before {dependency}"


def test_a_container_s_own_addresses_are_the_replica_s() -> None:
    assert localize("0.0.0.0:50051", "127.77.4.2") == "127.77.4.2:50051"
    assert localize("http://127.0.0.1:9115/-/healthy", "127.77.9.1") == "http://127.77.9.1:9115/-/healthy"
    assert localize("dns:///userd:50051", "127.77.5.1") == "dns:///userd:50051"


def test_the_namespace_script_mounts_parents_first_then_tmpfs_then_read_only_root() -> None:
    fs = container.Filesystem(
        binds=(
            container.Bind(Path("/src/secrets"), "/etc/am/secrets", read_only=True),
            container.Bind(Path("/src/am"), "/etc/am", read_only=True),
        ),
        resolv_conf=Path("/work/resolv.conf"),
        tmpfs=("/tmp",),
        read_only_root=True,
        working_dir="/etc/am",
        user="65534:65534",
    )
    lines = container.script(fs).splitlines()
    assert lines.index("mount --bind /src/am /etc/am") < lines.index(
        "mount --bind /src/secrets /etc/am/secrets"
    )
    assert lines.index("mount -t tmpfs -o mode=1777 tmpfs /tmp") < lines.index("mount -o remount,bind,ro /")
    assert lines[-2:] == ["cd /etc/am", 'exec "$@"']
    argv = container.argv(fs, ["prometheus-alertmanager", "--flag"])
    assert argv[-3:] == ["--", "prometheus-alertmanager", "--flag"]
    assert "--reuid=65534" in argv


def test_a_checkout_under_tmp_stays_visible_through_the_container_s_own_tmpfs() -> None:
    fs = container.Filesystem(
        binds=(),
        resolv_conf=Path("/work/resolv.conf"),
        tmpfs=("/tmp",),
        read_only_root=True,
        keep=(Path("/tmp/clone"), Path("/opt/elsewhere")),
        stage=Path("/var/tmp/stage"),
    )
    lines = container.script(fs).splitlines()
    park = lines.index("mkdir -p /var/tmp/stage/0 && mount --bind /tmp/clone /var/tmp/stage/0")
    tmpfs = lines.index("mount -t tmpfs -o mode=1777 tmpfs /tmp")
    back = lines.index("mkdir -p /tmp/clone && mount --move /var/tmp/stage/0 /tmp/clone")
    assert park < tmpfs < back < lines.index("mount -o remount,bind,ro /")
    assert not any("/opt/elsewhere" in line for line in lines), "only what the tmpfs would hide is parked"
