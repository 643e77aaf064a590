"""The bounded message store: what the sink received, newest last, optionally mirrored to JSONL."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

Status = Literal["firing", "resolved", "unknown"]


def classify(payload: dict[str, Any]) -> Status:
    """Firing or resolved, from what Alertmanager puts in a Slack payload.

    Alertmanager's Slack integration has no status field: a resolved group gets color "good" and the
    "[RESOLVED]" title prefix. A webhook-style payload carries `status` itself.
    """
    status = payload.get("status")
    if status in ("firing", "resolved"):
        return "resolved" if status == "resolved" else "firing"
    attachments = payload.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return "unknown"
    for attachment in attachments:
        if not isinstance(attachment, dict):
            continue
        title = attachment.get("title")
        if attachment.get("color") == "good" or (isinstance(title, str) and title.startswith("[RESOLVED]")):
            return "resolved"
    return "firing"


@dataclass(frozen=True)
class Message:
    received_at: datetime
    hook: str
    status: Status
    payload: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "received_at": self.received_at.isoformat(timespec="milliseconds"),
            "hook": self.hook,
            "status": self.status,
            "payload": self.payload,
        }


class MessageStore:
    """Thread-safe: the HTTP server handles each request on its own thread."""

    def __init__(self, max_messages: int, jsonl_path: Path | None = None) -> None:
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        self._messages: deque[Message] = deque(maxlen=max_messages)
        self._lock = threading.Lock()
        self._jsonl: IO[str] | None = jsonl_path.open("a", encoding="utf-8") if jsonl_path else None

    def add(self, hook: str, payload: dict[str, Any]) -> Message:
        message = Message(datetime.now(UTC), hook, classify(payload), payload)
        with self._lock:
            self._messages.append(message)
            if self._jsonl is not None:
                self._jsonl.write(json.dumps(message.to_json(), separators=(",", ":")) + "\n")
                # Flushed per line so a reader (or a crash) sees every message that was acknowledged.
                self._jsonl.flush()
        return message

    def newest_first(self) -> list[Message]:
        with self._lock:
            return list(reversed(self._messages))

    def close(self) -> None:
        with self._lock:
            if self._jsonl is not None:
                self._jsonl.close()
                self._jsonl = None

    def __enter__(self) -> MessageStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
