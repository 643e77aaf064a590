"""The `authorization: Bearer <token>` metadata both services read and orderd forwards."""

from __future__ import annotations

from typing import Any


def bearer_token(context: Any) -> str | None:
    """The token of `authorization: Bearer <token>` metadata; "" when the header is present but
    malformed, None when it is absent (the two are told apart in business metrics)."""
    for key, value in context.invocation_metadata() or ():
        if key.lower() != "authorization":
            continue
        text = value.decode() if isinstance(value, bytes) else str(value)
        scheme, _, token = text.strip().partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""
    return None


def auth_metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)
