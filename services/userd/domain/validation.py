"""Input rules for accounts. Each failure is an InvalidInput whose message says what to fix.

Every field first passes grpcdemo.text.check_text (no control characters, no invalid Unicode).
Emails are compared as stored: NFC, then lower case, so the same address typed in another Unicode
form or case is the same account (the README's uniqueness rule)."""

from __future__ import annotations

import re

from grpcdemo.errors import InvalidInput
from grpcdemo.text import check_text, nfc

MAX_EMAIL_LENGTH = 254
MIN_PASSWORD_BYTES = 8
# bcrypt only reads the first 72 bytes; longer passwords are refused rather than silently truncated.
MAX_PASSWORD_BYTES = 72
MAX_NAME_LENGTH = 100

# Deliberately simple: one @, a non-empty local part and a dotted domain, no whitespace. Matched
# with fullmatch: `$` alone would accept a trailing newline.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


def normalize_email(raw: str) -> str:
    email = nfc(nfc(check_text(raw, "email").strip()).lower())
    if not email:
        raise InvalidInput("email is required")
    if len(email) > MAX_EMAIL_LENGTH:
        raise InvalidInput(f"email must be at most {MAX_EMAIL_LENGTH} characters")
    if not _EMAIL.fullmatch(email):
        raise InvalidInput("email must look like name@example.com")
    return email


def validate_password(password: str) -> None:
    check_text(password, "password")
    size = len(password.encode())
    if size < MIN_PASSWORD_BYTES:
        raise InvalidInput(f"password must be at least {MIN_PASSWORD_BYTES} bytes")
    if size > MAX_PASSWORD_BYTES:
        raise InvalidInput(f"password must be at most {MAX_PASSWORD_BYTES} bytes (bcrypt's limit)")


def normalize_name(raw: str) -> str:
    name = nfc(check_text(raw, "name").strip())
    if not name:
        raise InvalidInput("name is required")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"name must be at most {MAX_NAME_LENGTH} characters")
    return name
