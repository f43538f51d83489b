"""The one check for configured HTTP endpoints (API bases, alert sinks).

A URL that can never work (``not a url``, ``ftp://x``) is a configuration error at load
time, not a delivery failure retried until the DLQ. Errors never quote the value: sink
URLs often carry a secret token.
"""

from __future__ import annotations

from urllib.parse import urlsplit

EXPECTED = "expected an absolute http:// or https:// URL with a host"


def check_http_url(value: str) -> str:
    """``value`` unchanged if it is an absolute http(s) URL with a host; else ValueError."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError:
        raise ValueError(EXPECTED) from None
    del port
    if parts.scheme not in ("http", "https") or not parts.hostname or value != value.strip():
        raise ValueError(EXPECTED)
    return value
