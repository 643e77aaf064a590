"""Write the environment-specific files that prometheus/ and alertmanager/ read at run time.

alertmanager.yml is the same for compose and native runs, prometheus.yml nearly (compose finds userd and
orderd replicas by DNS: prometheus.compose.yml); what differs is where the targets live and where
notifications go. Those two things are written here, by `make up` for native runs and once into
prometheus/targets/compose/ for compose (the jobs DNS does not find):

- `targets/<job>.json` next to prometheus.yml (file_sd format, see prometheus/README.md).
- `secrets/<receiver>_webhook_url` next to alertmanager.yml; git-ignored and, by default, mode 0600,
  because a Slack incoming-webhook URL is a credential.

Usage from a Makefile:
    python tools/stackconfig.py prometheus-targets .run/prometheus/targets --host 127.0.0.1
    python tools/stackconfig.py prometheus-targets prometheus/targets/compose --compose
    python tools/stackconfig.py alertmanager-secrets .run/alertmanager --sink-url http://127.0.0.1:9095
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

JOBS: Final = ("userd", "orderd", "loadgen", "prometheus", "alertmanager")
# In compose these are found through DNS (prometheus.compose.yml), one target per replica.
COMPOSE_DNS_JOBS: Final = ("userd", "orderd")
COMPOSE_FILE_JOBS: Final = tuple(job for job in JOBS if job not in COMPOSE_DNS_JOBS)

METRICS_PORTS: Final[Mapping[str, int]] = {
    "userd": 9091,
    "orderd": 9092,
    "loadgen": 9097,
    "prometheus": 9090,
    "alertmanager": 9093,
}

LOCAL_SINK_URL: Final = "http://127.0.0.1:9095"

# The black-box probes: each service's gRPC port, asked by the blackbox exporter (prometheus/blackbox.yml).
GRPC_PORTS: Final[Mapping[str, int]] = {"userd": 50051, "orderd": 50052}
BLACKBOX_PORT: Final = 9115
BLACKBOX_FILE: Final = "blackbox.json"

# Receiver name in alertmanager.yml -> secret file it reads, relative to alertmanager.yml's folder.
# Each Slack receiver has its own file because a Slack app's incoming webhook is bound to one channel.
SECRET_FILES: Final[Mapping[str, str]] = {
    "slack-critical": "secrets/slack_critical_webhook_url",
    "slack-warning": "secrets/slack_warning_webhook_url",
    "slack-info": "secrets/slack_info_webhook_url",
    "heartbeat": "secrets/heartbeat_webhook_url",
}

# Path on the local Slack sink that each receiver posts to when no real URL is configured.
SINK_HOOKS: Final[Mapping[str, str]] = {
    "slack-critical": "/hooks/critical",
    "slack-warning": "/hooks/warning",
    "slack-info": "/hooks/info",
    "heartbeat": "/hooks/heartbeat",
}


def target_groups(job: str, addresses: Sequence[str]) -> list[dict[str, object]]:
    """The file_sd document for one job: one group, one target per replica. `service` is the label
    every alert routes and groups on; each replica is its own `instance`."""
    return [{"targets": list(addresses), "labels": {"service": job}}]


def targets_on(
    host_for_job: Callable[[str], str], ports: Mapping[str, int] = METRICS_PORTS
) -> dict[str, list[str]]:
    """One target per job at `host_for_job(job)`: `lambda _: "127.0.0.1"` natively, `lambda job: job`
    for compose service names."""
    return {job: [f"{host_for_job(job)}:{ports[job]}"] for job in JOBS}


def _write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    # Prometheus watches target files and re-reads them on change; a rename means it never sees half a file.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_prometheus_targets(
    directory: Path, targets: Mapping[str, Sequence[str]], jobs: Sequence[str] = JOBS
) -> list[Path]:
    """Write `<directory>/<job>.json` for every job in `jobs` (from `targets`, job -> host:port list)
    and return the paths written."""
    missing = set(jobs) - set(targets)
    if missing:
        raise ValueError(f"no targets for jobs: {sorted(missing)}")
    written = []
    for job in jobs:
        path = directory / f"{job}.json"
        document = target_groups(job, targets[job])
        _write_atomically(path, json.dumps(document, indent=2) + "\n")
        written.append(path)
    return written


def blackbox_groups(probes: Mapping[str, Sequence[str]], exporter: str) -> list[dict[str, object]]:
    """The `blackbox` job's file_sd document: per service, the gRPC addresses a client uses, its
    `service` label (what alerts route and inhibit on), and in `__exporter__` the exporter that
    probes them (prometheus.yml's relabelling makes it the scrape address)."""
    return [
        {"targets": list(addresses), "labels": {"service": service, "__exporter__": exporter}}
        for service, addresses in probes.items()
    ]


def write_blackbox_targets(directory: Path, probes: Mapping[str, Sequence[str]], exporter: str) -> Path:
    path = directory / BLACKBOX_FILE
    _write_atomically(path, json.dumps(blackbox_groups(probes, exporter), indent=2) + "\n")
    return path


def write_compose_targets(directory: Path) -> list[Path]:
    """prometheus/targets/compose/: the jobs compose's DNS does not find, by service name, and the
    black-box probes of each service through its compose name."""
    paths = write_prometheus_targets(directory, targets_on(lambda job: job), COMPOSE_FILE_JOBS)
    probes = {service: [f"{service}:{port}"] for service, port in GRPC_PORTS.items()}
    paths.append(write_blackbox_targets(directory, probes, f"blackbox:{BLACKBOX_PORT}"))
    return paths


@dataclass(frozen=True)
class NotificationUrls:
    """Where each Alertmanager receiver sends; keyed like SECRET_FILES."""

    urls: Mapping[str, str]

    @classmethod
    def from_env(cls, env: Mapping[str, str], sink_url: str = LOCAL_SINK_URL) -> NotificationUrls:
        """SLACK_WEBHOOK_URL_<CRITICAL|WARNING|INFO>, else SLACK_WEBHOOK_URL, else the local Slack sink.

        The heartbeat (Watchdog) goes to HEARTBEAT_WEBHOOK_URL, e.g. a dead man's switch service, else
        to the sink; it never falls back to SLACK_WEBHOOK_URL, which would spam a people channel.
        """
        shared = env.get("SLACK_WEBHOOK_URL", "")
        urls = {}
        for receiver, hook in SINK_HOOKS.items():
            if receiver == "heartbeat":
                chosen = env.get("HEARTBEAT_WEBHOOK_URL", "")
            else:
                severity = receiver.removeprefix("slack-").upper()
                chosen = env.get(f"SLACK_WEBHOOK_URL_{severity}", "") or shared
            urls[receiver] = chosen or sink_url.rstrip("/") + hook
        return cls(urls)


def write_alertmanager_secrets(config_dir: Path, urls: NotificationUrls, mode: int = 0o600) -> list[Path]:
    """Write one webhook URL file per receiver under `config_dir` (alertmanager.yml's folder).

    Owner-only by default. A container that runs Alertmanager as another user (the prom/alertmanager
    image runs as `nobody`) cannot read such a bind-mounted file; pass 0o644 for that case.
    """
    missing = set(SECRET_FILES) - set(urls.urls)
    if missing:
        raise ValueError(f"no URL for receivers: {sorted(missing)}")
    written = []
    for receiver, relative in SECRET_FILES.items():
        url = urls.urls[receiver]
        if not url.startswith(("http://", "https://")):
            # Naming the receiver, never the value: the value is a credential.
            raise ValueError(f"webhook URL for {receiver} must be http(s)")
        path = config_dir / relative
        _write_atomically(path, url + "\n", mode=mode)
        written.append(path)
    return written


COMPOSE_SINK_URL: Final = "http://slacksink:9095"


def prepare_compose(project: Path, env: Mapping[str, str]) -> list[Path]:
    """What `make up` writes before `docker compose up` (and the compose rehearsal before its own):
    the webhook URL files under alertmanager/secrets/, pointing at compose's Slack sink unless
    SLACK_WEBHOOK_URL* say otherwise. The Alertmanager image runs as `nobody`, which cannot read the
    0600 files written for native runs; the folder itself is git-ignored."""
    return write_alertmanager_secrets(
        project / "alertmanager", NotificationUrls.from_env(env, COMPOSE_SINK_URL), mode=0o644
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)

    targets = commands.add_parser("prometheus-targets", help="write <dir>/<job>.json for every job")
    targets.add_argument("directory", type=Path)
    where = targets.add_mutually_exclusive_group()
    where.add_argument("--host", default="127.0.0.1", help="one host for every job (native runs)")
    where.add_argument("--compose", action="store_true", help="use the job name as host (compose)")

    secrets = commands.add_parser("alertmanager-secrets", help="write webhook URL files next to the config")
    secrets.add_argument("config_dir", type=Path, help="the folder alertmanager.yml is read from")
    secrets.add_argument("--sink-url", default=LOCAL_SINK_URL, help="Slack sink used when no URL is set")

    args = parser.parse_args(argv)
    if args.command == "prometheus-targets":
        host: str = args.host
        if args.compose:
            paths = write_compose_targets(args.directory)
        else:
            paths = write_prometheus_targets(args.directory, targets_on(lambda _: host))
    else:
        paths = write_alertmanager_secrets(
            args.config_dir, NotificationUrls.from_env(os.environ, args.sink_url)
        )
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
