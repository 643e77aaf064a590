"""`make up` (issue 2 scope): run userd and orderd in the foreground until Ctrl-C.
Extended to the whole native stack by the monitoring issue."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"


def read_dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.strip().startswith("#"):
                values[key.strip()] = value.strip()
    return values


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="auto", choices=["auto", "native", "docker"])
    parser.parse_args()
    env = {**os.environ, **read_dotenv(ROOT / ".env")}
    procs = [
        subprocess.Popen([str(BIN / "userd")], cwd=ROOT, env=env),
        subprocess.Popen([str(BIN / "orderd")], cwd=ROOT, env=env),
    ]
    print("userd on 127.0.0.1:50051, orderd on 127.0.0.1:50052 (reflection on); Ctrl-C stops both")
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    return max((p.wait(timeout=15) or 0) for p in procs)


if __name__ == "__main__":
    sys.exit(main())
