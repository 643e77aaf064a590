"""Rules every string a caller sends must pass, whatever the field: no control characters (C0,
DEL, C1: NUL would be refused by PostgreSQL and stored by SQLite, a newline forges log lines) and no
invalid Unicode (lone surrogates cannot be stored as UTF-8). Free of gRPC and SQL: domain code uses it.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from grpcdemo.errors import InvalidInput

# C0 (U+0000-U+001F), DEL (U+007F), C1 (U+0080-U+009F), and the surrogate range, which only a lone
# surrogate (invalid Unicode) can put into a str.
_FORBIDDEN: Final = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def check_text(value: str, field: str) -> str:
    """`value` unchanged, or InvalidInput naming `field` (never echoing the value)."""
    found = _FORBIDDEN.search(value)
    if found is not None:
        code = ord(found.group())
        kind = "invalid Unicode" if 0xD800 <= code <= 0xDFFF else "a control character"
        raise InvalidInput(f"{field} must not contain {kind} (U+{code:04X} at position {found.start()})")
    return value


def nfc(value: str) -> str:
    """Canonical composition, so the same text typed on two keyboards is one value."""
    return unicodedata.normalize("NFC", value)
