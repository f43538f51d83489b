"""Agora NCS callback signatures: HMAC over the raw request body, lowercase hex.

``Agora-Signature-V2`` is HMAC-SHA256 and is preferred; ``Agora-Signature`` (HMAC-SHA1) is
accepted only when V2 is absent, so an attacker cannot downgrade a request that carries V2.
Pure functions: no I/O, no framework imports.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from webhook.shared.refusals import Unauthorized

V2_HEADER = "Agora-Signature-V2"
V1_HEADER = "Agora-Signature"

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


class HeaderSource(Protocol):
    """Case-insensitive header lookup (Werkzeug's ``Headers``) or a plain dict."""

    def get(self, key: str, /) -> str | None: ...


class SignatureFailure(StrEnum):
    """Why a callback was refused; the values appear in logs and metrics labels."""

    MISSING = "missing"
    MALFORMED = "malformed"
    MISMATCH = "mismatch"


class SignatureError(Unauthorized):
    """The callback is not signed by any active NCS secret."""

    def __init__(self, reason: SignatureFailure, header: str | None) -> None:
        self.reason = reason
        self.header = header
        where = f" ({header})" if header else ""
        super().__init__(f"signature {reason.value}{where}")

    def log_fields(self) -> dict[str, object]:
        return {"reason": self.reason.value, "header": self.header}


@dataclass(frozen=True, slots=True)
class SignatureMatch:
    """Which header verified and which secret (by position, never by value) matched."""

    header: str
    secret_index: int


def sign_v2(body: bytes, secret: str) -> str:
    """Return the ``Agora-Signature-V2`` value for *body*."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sign_v1(body: bytes, secret: str) -> str:
    """Return the legacy ``Agora-Signature`` (SHA1) value for *body*."""
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def signature_headers(body: bytes, secret: str) -> dict[str, str]:
    """Both headers as NCS sends them, for clients and tests."""
    return {V1_HEADER: sign_v1(body, secret), V2_HEADER: sign_v2(body, secret)}


def verify(body: bytes, headers: HeaderSource, secrets: Sequence[str]) -> SignatureMatch:
    """Check *body* against the signature headers with every active secret.

    *headers* must be a case-insensitive mapping (Werkzeug's ``Headers`` is) or use the
    canonical header names above. Raises :class:`SignatureError`; never returns a falsy match.
    """
    header, presented = V2_HEADER, headers.get(V2_HEADER)
    if presented is None:
        header, presented = V1_HEADER, headers.get(V1_HEADER)
    if presented is None:
        raise SignatureError(SignatureFailure.MISSING, None)
    presented = presented.strip().lower()
    expected_len = 64 if header == V2_HEADER else 40
    if len(presented) != expected_len or not _HEX_DIGITS.issuperset(presented):
        raise SignatureError(SignatureFailure.MALFORMED, header)
    # hmac.digest is OpenSSL's one-shot HMAC: no HMAC object per secret and request.
    algorithm = "sha256" if header == V2_HEADER else "sha1"
    # Compare against every secret, even after a hit, so timing does not reveal which matched.
    matched: int | None = None
    for index, secret in enumerate(secrets):
        expected = hmac.digest(secret.encode(), body, algorithm).hex()
        if hmac.compare_digest(expected, presented) and matched is None:
            matched = index
    if matched is None:
        raise SignatureError(SignatureFailure.MISMATCH, header)
    return SignatureMatch(header=header, secret_index=matched)
