"""compose's `postgres` service from the machine's own PostgreSQL: a private cluster (its own data
folder, its own loopback address, port 5432), initialised the way the postgres image's entrypoint
does it: POSTGRES_USER as the superuser with POSTGRES_PASSWORD, password (SCRAM) authentication for
every TCP client, then every script of /docker-entrypoint-initdb.d run once against the fresh
cluster over its Unix socket, with the service's environment. The machine's own cluster on
127.0.0.1:5432 is never touched."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from rehearsal import container


class PostgresError(RuntimeError):
    pass


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise PostgresError(f"PostgreSQL's {name} not found (Debian package postgresql)")
    return found[-1]


class PrivateCluster:
    def __init__(self, address: str, env: Mapping[str, str], initdb_dir: Path | None, logs: Path) -> None:
        self.address = address
        self._env = dict(env)
        self._initdb_dir = initdb_dir
        self._log = logs / "postgres.log"
        # Its own folder under /tmp (not the work folder): the `postgres` user must be able to enter it.
        self._root = Path(tempfile.mkdtemp(prefix="rehearsal-postgres-"))
        self._data = self._root / "data"
        self._socket = self._root / "socket"
        self._owner = pwd.getpwnam("postgres")

    def _as_postgres(self, *argv: str, env: Mapping[str, str] | None = None) -> None:
        with self._log.open("ab") as log:
            result = subprocess.run(
                [
                    shutil.which("runuser", path="/usr/sbin:/sbin:/usr/bin:/bin") or "runuser",
                    "-u",
                    "postgres",
                    "--",
                    *argv,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={"PATH": "/usr/bin:/bin", **(env or {})},
                timeout=120,
                check=False,
            )
        if result.returncode != 0:
            raise PostgresError(f"{Path(argv[0]).name} failed (exit {result.returncode}); see {self._log}")

    def start(self) -> None:
        # The `postgres` user must enter it; nothing in it but the cluster it owns.
        os.chmod(self._root, 0o755)  # noqa: S103
        self._socket.mkdir()
        os.chown(self._root, self._owner.pw_uid, self._owner.pw_gid)
        os.chown(self._socket, self._owner.pw_uid, self._owner.pw_gid)
        superuser = self._env.get("POSTGRES_USER", "postgres")
        password = self._env.get("POSTGRES_PASSWORD", "")
        if not password:
            raise PostgresError("POSTGRES_PASSWORD is empty: the postgres image refuses to start without it")
        pwfile = self._root / "pwfile"
        pwfile.write_text(password + "\n")
        os.chown(pwfile, self._owner.pw_uid, self._owner.pw_gid)
        os.chmod(pwfile, 0o600)
        self._as_postgres(
            _bin("initdb"), "-D", str(self._data), "-U", superuser, f"--pwfile={pwfile}",
            "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
        )  # fmt: skip
        pwfile.unlink()
        # The image's pg_hba.conf line: every TCP client authenticates with its password.
        with (self._data / "pg_hba.conf").open("a") as hba:
            hba.write("host all all all scram-sha-256\n")
        self._pg_ctl_start()
        database = self._env.get("POSTGRES_DB", superuser)
        if database != "postgres":
            self._as_postgres(_bin("createdb"), "-h", str(self._socket), "-U", superuser, database)
        self._run_init_scripts(superuser, database, password)

    def _pg_ctl_start(self) -> None:
        options = f"-c listen_addresses={self.address} -c port=5432 -c unix_socket_directories={self._socket}"
        self._as_postgres(_bin("pg_ctl"), "-D", str(self._data), "-l", str(self._root / "server.log"),
                          "-o", options, "-w", "-t", "60", "start")  # fmt: skip

    def _run_init_scripts(self, superuser: str, database: str, password: str) -> None:
        """As docker-entrypoint.sh: *.sh executed (or sourced when not executable: run by bash here),
        *.sql fed to psql, in name order, with the container's environment."""
        if self._initdb_dir is None:
            return
        env = {
            **self._env,
            "PGHOST": str(self._socket),
            "PGPORT": "5432",
            "PGUSER": superuser,
            "PGDATABASE": database,
            "PGPASSWORD": password,
        }
        fs = container.Filesystem(
            binds=(container.Bind(self._initdb_dir, "/docker-entrypoint-initdb.d", read_only=True),),
            resolv_conf=Path("/etc/resolv.conf"),
        )
        container.prepare_mount_points(fs)
        try:
            for script in sorted(self._initdb_dir.iterdir()):
                inside = f"/docker-entrypoint-initdb.d/{script.name}"
                if script.suffix == ".sh":
                    command = [inside] if os.access(script, os.X_OK) else ["bash", inside]
                elif script.suffix == ".sql":
                    command = ["psql", "-v", "ON_ERROR_STOP=1", "-f", inside]
                else:
                    continue
                with self._log.open("ab") as log:
                    result = subprocess.run(
                        container.argv(fs, command),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=container.base_environment("/usr/bin:/bin", env),
                        timeout=120,
                        check=False,
                    )
                if result.returncode != 0:
                    raise PostgresError(
                        f"init script {script.name} failed (exit {result.returncode}); see {self._log}"
                    )
        finally:
            container.remove_mount_points(fs)

    def stop(self) -> None:
        if (self._data / "postmaster.pid").exists():
            with contextlib.suppress(PostgresError, subprocess.TimeoutExpired):
                self._as_postgres(_bin("pg_ctl"), "-D", str(self._data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self._root, ignore_errors=True)
