"""docker-compose.yml's topology run without Docker, read from the file itself.

Every service built from this repo runs from the project's venv with the command and environment
compose gives it; Prometheus, Alertmanager and the blackbox exporter run from their Debian packages
with the compose command's flags and the compose-mounted files; `postgres` is a private cluster of
the machine's PostgreSQL set up by the compose init scripts (postgres.py). Each replica listens on its
own loopback address, 127.<net>.<service>.<replica>, and a wildcard or loopback address in its
command, environment or health check means that address (in a container, 0.0.0.0 and 127.0.0.1 are
the container's own). Names resolve through dnsmasq as they do through Docker's DNS (dns.py).

What differs from Docker, and what was never run: docs/compose-rehearsal.md."""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from rehearsal import container
from rehearsal.composefile import ComposeProject, ServiceSpec, dockerfile_env, dockerfile_user
from rehearsal.dns import ComposeDns
from rehearsal.postgres import PrivateCluster

HOST_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The images compose pulls that Debian packages here: their entrypoint is this binary, compose's
# `command` its flags; they run as the images do, as nobody.
PACKAGED: Final[Mapping[str, str]] = {
    "prom/prometheus": "/usr/bin/prometheus",
    "prom/alertmanager": "/usr/bin/prometheus-alertmanager",
    "prom/blackbox-exporter": "/usr/bin/prometheus-blackbox-exporter",
}
PACKAGED_USER: Final = "65534:65534"
POSTGRES_IMAGE: Final = "postgres"
# Images with nothing to run them from on these machines: left out, and their names NXDOMAIN.
NOT_RUNNABLE: Final[Mapping[str, str]] = {
    "jaegertracing/jaeger": "Jaeger: no package or binary here; span export finds no `jaeger` and drops",
    "grafana/loki": "Loki: no package or binary here; log export finds no `loki` and drops, counted",
    "grafana/grafana": "Grafana: no package or binary here; every panel query is run against Prometheus instead",
}


class RehearsalError(RuntimeError):
    pass


def localize(text: str, address: str) -> str:
    """A container's wildcard and loopback addresses are its own: here, the replica's address."""
    return text.replace("0.0.0.0", address).replace("127.0.0.1", address)


@dataclass
class Replica:
    service: str
    index: int
    address: str
    log: Path
    process: subprocess.Popen[bytes] | None = None
    stopped: bool = False
    """Stopped on purpose (`stop`, `scale` down): not restarted, out of DNS."""
    restarts: int = 0

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Rehearsal:
    project: ComposeProject
    work: Path
    scale: Mapping[str, int] = field(default_factory=dict)
    network: int = 77
    """The second octet of every address: 127.<network>.x.y."""
    venv: Path = Path(sys.prefix)
    replicas: dict[str, list[Replica]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    """What was left out or changed, said once each (printed by tools/rehearse.py)."""
    _dns: ComposeDns | None = None
    _postgres: PrivateCluster | None = None
    _filesystems: list[container.Filesystem] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _watching: threading.Event = field(default_factory=threading.Event)
    _watcher: threading.Thread | None = None
    _one_offs: int = 0
    _app_user: str | None = None
    _stage_dir: Path | None = None
    _packaged_user: str | None = None

    # ------------------------------------------------------------------ addresses and order

    def _service_number(self, name: str) -> int:
        return list(self.project.services).index(name) + 1

    def address(self, service: str, index: int) -> str:
        return f"127.{self.network}.{self._service_number(service)}.{index}"

    @property
    def dns_address(self) -> str:
        return f"127.{self.network}.0.53"

    def addresses(self, service: str) -> list[str]:
        with self._lock:
            return [r.address for r in self.replicas.get(service, []) if r.running and not r.stopped]

    def start_order(self) -> list[str]:
        order: list[str] = []
        visiting: set[str] = set()

        def visit(name: str) -> None:
            if name in order:
                return
            if name in visiting:
                raise RehearsalError(f"depends_on cycle through {name}")
            visiting.add(name)
            for dependency in self.project.services[name].depends_on:
                visit(dependency)
            order.append(name)

        for name in self.project.services:
            visit(name)
        return order

    def kind(self, spec: ServiceSpec) -> str:
        """'app' (built here), 'packaged', 'postgres' or 'absent'."""
        if spec.built_here:
            return "app"
        repository = (spec.image or "").rsplit(":", 1)[0]
        if repository in PACKAGED:
            return "packaged"
        if repository == POSTGRES_IMAGE:
            return "postgres"
        return "absent"

    # ------------------------------------------------------------------ containers

    @functools.cached_property
    def _app_env(self) -> dict[str, str]:
        """The image's ENV (the Dockerfile's last stage), its venv being the project's here."""
        env = dockerfile_env(self.project.folder / "Dockerfile")
        return {k: v.replace("/opt/venv", str(self.venv)).replace("$PATH", HOST_PATH) for k, v in env.items()}

    def _volume_dir(self, name: str) -> Path:
        return self.work / "volumes" / name

    def _filesystem(self, spec: ServiceSpec, user: str | None) -> container.Filesystem:
        binds = []
        for mount in spec.mounts:
            source = self._volume_dir(mount.source) if mount.named_volume else Path(mount.source)
            if mount.named_volume and not source.exists():
                source.mkdir(parents=True)
                if user:
                    uid, _, gid = user.partition(":")
                    os.chown(source, int(uid), int(gid or uid))
            binds.append(container.Bind(source, mount.target, mount.read_only))
        assert self._dns is not None
        fs = container.Filesystem(
            binds=tuple(binds),
            resolv_conf=self._dns.resolv_conf,
            tmpfs=spec.tmpfs,
            read_only_root=spec.read_only,
            working_dir=spec.working_dir,
            user=user,
            # The image's venv and sources are the project's here: they stay visible even where they
            # live under a folder the container gets a fresh tmpfs on (a checkout under /tmp).
            keep=self._kept_folders(),
            stage=self._stage(),
        )
        container.prepare_mount_points(fs)
        self._filesystems.append(fs)
        return fs

    def _kept_folders(self) -> tuple[Path, ...]:
        folders = {self.venv.resolve(), Path(__file__).resolve().parents[2]}
        # A folder inside another is kept with it.
        return tuple(sorted(f for f in folders if not any(o != f and o in f.parents for o in folders)))

    def _stage(self) -> Path:
        if self._stage_dir is None:
            # Outside /tmp, where a container's tmpfs goes; emptied and removed by `down`.
            self._stage_dir = Path(tempfile.mkdtemp(prefix="rehearsal-stage-", dir="/var/tmp"))
        return self._stage_dir

    def _image_user(self, spec: ServiceSpec) -> str | None:
        if spec.user is not None:
            return spec.user
        return self._app_user if spec.built_here else self._packaged_user

    def _command(self, spec: ServiceSpec, command: Sequence[str] | None) -> list[str]:
        args = list(command if command is not None else spec.command)
        if self.kind(spec) == "packaged":
            return [PACKAGED[(spec.image or "").rsplit(":", 1)[0]], *args]
        if not args:
            raise RehearsalError(f"{spec.name}: no command (the image's CMD is not rehearsed)")
        return args

    def _environment(self, spec: ServiceSpec, address: str, index: int) -> dict[str, str]:
        image_env = self._app_env if spec.built_here else {}
        env = {k: localize(v, address) for k, v in spec.environment.items()}
        return container.base_environment(
            image_env.get("PATH", HOST_PATH),
            {**image_env, "HOSTNAME": f"{self.project.name}-{spec.name}-{index}", **env},
        )

    def _launch(self, replica: Replica, command: Sequence[str] | None = None) -> None:
        spec = self.project.services[replica.service]
        user = self._image_user(spec)
        fs = self._filesystem(spec, user)
        argv = [localize(arg, replica.address) for arg in self._command(spec, command)]
        replica.log.parent.mkdir(parents=True, exist_ok=True)
        with replica.log.open("ab") as log:
            replica.process = subprocess.Popen(
                container.argv(fs, argv),
                env=self._environment(spec, replica.address, replica.index),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        replica.stopped = False

    def healthy(self, replica: Replica) -> bool:
        """The compose health check, run inside the replica's filesystem, as Docker runs it."""
        spec = self.project.services[replica.service]
        if spec.healthcheck is None:
            return replica.running
        fs = self._filesystem(spec, self._image_user(spec))
        argv = [localize(arg, replica.address) for arg in spec.healthcheck.argv]
        try:
            result = subprocess.run(
                container.argv(fs, argv),
                env=self._environment(spec, replica.address, replica.index),
                capture_output=True,
                timeout=max(spec.healthcheck.timeout, 5.0),
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False
        finally:
            self._filesystems.remove(fs)
        return result.returncode == 0

    # ------------------------------------------------------------------ DNS and the watcher

    def _publish(self, service: str) -> None:
        assert self._dns is not None
        self._dns.set(service, self.addresses(service))

    def _watch(self) -> None:
        """Docker's part while the rehearsal runs: a container that exits leaves DNS at once; one
        whose restart policy says so is started again, at the same address."""
        while not self._watching.wait(0.2):
            with self._lock:
                for service, replicas in self.replicas.items():
                    exited = [r for r in replicas if r.process is not None and r.process.poll() is not None]
                    if not exited:
                        continue
                    self._publish(service)
                    policy = self.project.services[service].restart
                    for replica in exited:
                        assert replica.process is not None
                        code = replica.process.returncode
                        if replica.stopped or policy == "no" or (policy == "on-failure" and code == 0):
                            continue
                        replica.restarts += 1
                        self._launch(replica)
                        self._publish(service)

    # ------------------------------------------------------------------ lifecycle

    def _probe_users(self) -> None:
        """Run as the images' users where they can read the venv; say so where they cannot."""
        wanted = dockerfile_user(self.project.folder / "Dockerfile")
        for attr, user, probe in (
            ("_app_user", wanted, [str(self.venv / "bin" / "python"), "-c", "import grpcdemo"]),
            ("_packaged_user", PACKAGED_USER, ["/usr/bin/prometheus", "--version"]),
        ):
            if user is None:
                continue
            uid, _, gid = user.partition(":")
            result = subprocess.run(
                [
                    shutil.which("setpriv") or "/usr/bin/setpriv",
                    f"--reuid={uid}",
                    f"--regid={gid or uid}",
                    "--clear-groups",
                    "--",
                    *probe,
                ],
                capture_output=True,
                timeout=60,
                check=False,
                cwd="/",
            )
            if result.returncode == 0:
                setattr(self, attr, user)
            else:
                self._note(f"running as root, not as the image's user {user}: it cannot run {probe[0]} here")

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def up(self, wait_timeout: float = 120.0) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            raise RehearsalError("the rehearsal needs root (mount namespaces, DNS on port 53)")
        self._dns = ComposeDns(self.work, self.dns_address)
        self._dns.start()
        self._probe_users()
        self._watcher = threading.Thread(target=self._watch, name="rehearsal-watch", daemon=True)
        self._watcher.start()
        for name in self.start_order():
            self._wait_dependencies(name, wait_timeout)
            self.start(name, self.scale.get(name, 1))

    def _wait_dependencies(self, name: str, timeout: float) -> None:
        for dependency, condition in self.project.services[name].depends_on.items():
            spec = self.project.services[dependency]
            if self.kind(spec) == "absent":
                self._note(f"{name} depends on {dependency} ({condition}): not rehearsed, taken as met")
                continue
            if condition == "service_completed_successfully":
                self._wait(
                    functools.partial(self._completed, dependency), timeout, f"{dependency} to complete"
                )
            elif condition == "service_healthy":
                self._wait(
                    functools.partial(self._all_healthy, dependency), timeout, f"{dependency} to be healthy"
                )

    def _completed(self, service: str) -> bool:
        replicas = self.replicas.get(service, [])
        for replica in replicas:
            assert replica.process is not None
            code = replica.process.poll()
            if code is not None and code != 0:
                raise RehearsalError(f"{service} exited with {code} (see {replica.log})")
        return bool(replicas) and all(r.process is not None and r.process.poll() == 0 for r in replicas)

    def _all_healthy(self, service: str) -> bool:
        if service == "postgres" and self._postgres is not None:
            return self._postgres_healthy()
        replicas = [r for r in self.replicas.get(service, []) if not r.stopped]
        return bool(replicas) and all(self.healthy(r) for r in replicas)

    def _postgres_healthy(self) -> bool:
        spec = self.project.services["postgres"]
        assert spec.healthcheck is not None and self._postgres is not None
        argv = [localize(arg, self._postgres.address) for arg in spec.healthcheck.argv]
        return subprocess.run(argv, capture_output=True, timeout=10, check=False).returncode == 0

    @staticmethod
    def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise RehearsalError(f"timed out waiting for {what} ({timeout:.0f}s)")
            time.sleep(0.5)

    def start(self, service: str, count: int | None = None) -> None:
        """`docker compose start SERVICE` (stopped replicas again), or `up --scale SERVICE=count`."""
        spec = self.project.services[service]
        kind = self.kind(spec)
        if kind == "absent":
            repository = (spec.image or "").rsplit(":", 1)[0]
            self._note(
                f"{service} not rehearsed: {NOT_RUNNABLE.get(repository, f'image {spec.image} cannot run here')}"
            )
            return
        if kind == "postgres":
            if self._postgres is None:
                initdb = next(
                    (Path(m.source) for m in spec.mounts if m.target == "/docker-entrypoint-initdb.d"), None
                )
                self._postgres = PrivateCluster(
                    self.address(service, 1), spec.environment, initdb, self.work / "logs"
                )
                self._postgres.start()
                assert self._dns is not None
                self._dns.set(service, [self._postgres.address])
                self._note(f"postgres: the machine's PostgreSQL (a private cluster), not {spec.image}")
            return
        with self._lock:
            replicas = self.replicas.setdefault(service, [])
            wanted = count if count is not None else max(len(replicas), 1)
            for replica in replicas[:wanted]:
                if not replica.running:
                    self._launch(replica)
            for index in range(len(replicas) + 1, wanted + 1):
                replica = Replica(
                    service,
                    index,
                    self.address(service, index),
                    self.work / "logs" / f"{service}-{index}.log",
                )
                replicas.append(replica)
                self._launch(replica)
            self._publish(service)
        if count is not None and count < len(self.replicas[service]):
            self.scale_to(service, count)

    def scale_to(self, service: str, count: int) -> None:
        """`docker compose up --scale SERVICE=count`: the highest-numbered replicas go first."""
        current = self.replicas.get(service, [])
        if count > len([r for r in current if not r.stopped]):
            self.start(service, count)
            return
        for replica in current[count:]:
            self.stop(service, replica.index)
        with self._lock:
            self.replicas[service] = current[:count]

    def stop(self, service: str, index: int | None = None) -> float:
        """`docker compose stop SERVICE` (every replica, or one): SIGTERM, then SIGKILL after the
        service's stop_grace_period. Returns the seconds until the last one exited."""
        spec = self.project.services[service]
        with self._lock:
            chosen = [r for r in self.replicas.get(service, []) if index is None or r.index == index]
            for replica in chosen:
                replica.stopped = True
                if replica.running:
                    assert replica.process is not None
                    replica.process.send_signal(signal.SIGTERM)
        start = time.monotonic()
        for replica in chosen:
            assert replica.process is not None
            try:
                replica.process.wait(timeout=max(0.0, spec.stop_grace_period - (time.monotonic() - start)))
            except subprocess.TimeoutExpired:
                os.killpg(replica.process.pid, signal.SIGKILL)
                replica.process.wait()
            # Out of DNS as soon as it has exited, not at the watcher's next look.
            with self._lock:
                self._publish(service)
        return time.monotonic() - start

    def run(self, service: str, command: Sequence[str]) -> Replica:
        """`docker compose run --rm --no-deps SERVICE COMMAND…`: a one-off container of the service
        with its environment and mounts, on an address of its own (127.<net>.<svc>.<200+n>), not in
        DNS under the service's name. The caller waits for it (`.process`)."""
        self._one_offs += 1
        index = 200 + self._one_offs
        replica = Replica(
            service,
            index,
            self.address(service, index),
            self.work / "logs" / f"{service}-run-{self._one_offs}.log",
        )
        self._launch(replica, command)
        return replica

    def down(self) -> None:
        self._watching.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        for name in reversed(self.start_order()):
            if self.replicas.get(name):
                self.stop(name)
        if self._postgres is not None:
            self._postgres.remove()
        if self._dns is not None:
            self._dns.stop()
        for fs in self._filesystems:
            container.remove_mount_points(fs)
        if self._stage_dir is not None:
            shutil.rmtree(self._stage_dir, ignore_errors=True)

    def logs(self, service: str) -> str:
        return "".join(
            r.log.read_text(errors="replace") for r in self.replicas.get(service, []) if r.log.exists()
        )
