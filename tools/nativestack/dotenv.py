"""The git-ignored `.env`: secrets `make up` generates once, and the settings a user adds."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Final

# Every secret the stack needs; `make env` adds whichever is missing, never replaces one.
SECRETS: Final = (
    "JWT_SECRET",
    "POSTGRES_PASSWORD",
    "USERD_DB_PASSWORD",
    "ORDERD_DB_PASSWORD",
    "GRAFANA_ADMIN_PASSWORD",
    "FAULT_INJECTION_TOKEN",
)


def read_dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() and not key.strip().startswith("#"):
                values[key.strip()] = value.strip()
    return values


def ensure_secrets(path: Path) -> list[str]:
    """Adds a random value (hex: URL-safe, as compose puts POSTGRES_PASSWORD into URLs) for each
    missing secret; the file is created owner-only. Returns the names added, never the values."""
    present = read_dotenv(path)
    added = [name for name in SECRETS if not present.get(name)]
    if not added:
        return []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        text = path.read_text() if path.stat().st_size else ""
        if text and not text.endswith("\n"):
            handle.write("\n")
        for name in added:
            handle.write(f"{name}={secrets.token_hex(32)}\n")
    return added
