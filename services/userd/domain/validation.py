"""Input rules for accounts. Each failure is an InvalidInput whose message says what to fix."""

from __future__ import annotations

import re
import unicodedata

from grpcdemo.errors import InvalidInput

MAX_EMAIL_LENGTH = 254
MIN_PASSWORD_BYTES = 8
# bcrypt only reads the first 72 bytes; longer passwords are refused rather than silently truncated.
MAX_PASSWORD_BYTES = 72
MAX_NAME_LENGTH = 100

# Deliberately simple: one @, a non-empty local part and a dotted domain, no spaces.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


def normalize_email(raw: str) -> str:
    email = raw.strip().lower()
    if not email:
        raise InvalidInput("email is required")
    if len(email) > MAX_EMAIL_LENGTH:
        raise InvalidInput(f"email must be at most {MAX_EMAIL_LENGTH} characters")
    if not _EMAIL.match(email):
        raise InvalidInput("email must look like name@example.com")
    return email


def validate_password(password: str) -> None:
    size = len(password.encode())
    if size < MIN_PASSWORD_BYTES:
        raise InvalidInput(f"password must be at least {MIN_PASSWORD_BYTES} bytes")
    if size > MAX_PASSWORD_BYTES:
        raise InvalidInput(f"password must be at most {MAX_PASSWORD_BYTES} bytes (bcrypt's limit)")


def normalize_name(raw: str) -> str:
    name = raw.strip()
    if not name:
        raise InvalidInput("name is required")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"name must be at most {MAX_NAME_LENGTH} characters")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise InvalidInput("name must not contain control characters")
    return name
