"""A real Prometheus (Debian package) scraping in-process test servers every second, exemplar
storage on, for tests that must see what Prometheus itself stores."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.observability_echo import http_get
from tests.support.processes import free_port

PROMETHEUS = "/usr/bin/prometheus"


def scrape_config(targets: Mapping[str, int]) -> str:
    """One job per entry of `targets` (job name -> metrics port on 127.0.0.1), scraped every second."""
    jobs = "".join(
        f"""\
  - job_name: {job}
    scrape_interval: 1s
    scrape_timeout: 1s
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""
        for job, port in targets.items()
    )
    return f"""\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
storage:
  exemplars:
    max_exemplars: 1000
scrape_configs:
{jobs}"""


@dataclass
class ScrapingPrometheus:
    base: str
    log_path: Path
    process: asyncio.subprocess.Process

    def api_data(self, path: str, **params: str) -> Any:
        """The `data` member of an HTTP API answer, None until the server answers."""
        try:
            status, _, body = http_get(f"{self.base}{path}?{urllib.parse.urlencode(params)}", timeout=5)
        except OSError:
            return None
        return json.loads(body).get("data") if status == 200 else None

    async def exemplar_trace_ids(self, metric: str, **labels: str) -> set[str]:
        """Trace ids of the exemplars stored for `metric` on series carrying `labels`, so far."""
        now = time.time()
        found = await asyncio.to_thread(
            self.api_data, "/api/v1/query_exemplars", query=metric, start=str(now - 600), end=str(now + 60)
        )
        trace_ids: set[str] = set()
        for entry in found or []:
            if all(entry["seriesLabels"].get(key) == value for key, value in labels.items()):
                trace_ids |= {exemplar["labels"]["trace_id"] for exemplar in entry["exemplars"]}
        return trace_ids

    async def wait_for_exemplars(self, metric: str, within_seconds: float, **labels: str) -> set[str]:
        deadline = time.monotonic() + within_seconds
        while True:
            if self.process.returncode is not None:
                pytest.fail(f"prometheus exited: {self.log_path.read_text()[-2000:]}")
            trace_ids = await self.exemplar_trace_ids(metric, **labels)
            if trace_ids:
                return trace_ids
            if time.monotonic() > deadline:
                pytest.fail(f"no exemplars for {metric} {labels} within {within_seconds}s")
            await asyncio.sleep(0.5)


@asynccontextmanager
async def scraping_prometheus(
    tmp_path: Path, targets: Mapping[str, int]
) -> AsyncIterator[ScrapingPrometheus]:
    if shutil.which(PROMETHEUS) is None:
        pytest.skip(f"{PROMETHEUS} not installed (Debian package `prometheus`)")
    config = tmp_path / "prometheus.yml"
    config.write_text(scrape_config(targets))
    port = free_port()
    log_path = tmp_path / "prometheus.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--enable-feature=exemplar-storage",
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield ScrapingPrometheus(f"http://127.0.0.1:{port}", log_path, process)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=10)
            except TimeoutError:
                process.kill()
                await process.wait()
