"""The NCS secret list (``AGORA_NCS_SECRET``), with explicit rules instead of a silent split.

Rules: secrets are separated by commas (so a secret cannot contain one), surrounding
whitespace is ignored, and the list is checked as a whole: no empty entry (a stray comma is
a mistake, not a no-op), each secret at least :data:`MIN_SECRET_LENGTH` characters, no
duplicates, at most :data:`MAX_SECRETS` (rotation needs two). All of them verify; the first
one signs (``agora-events send``). Errors name the entry's position, never its value.
"""

from __future__ import annotations

MIN_SECRET_LENGTH = 16
MAX_SECRETS = 4


class SecretListError(ValueError):
    """The list breaks a rule; the message names the entry by position."""


def parse_secret_list(raw: str) -> list[str]:
    entries = [entry.strip() for entry in raw.split(",")]
    if len(entries) > MAX_SECRETS:
        raise SecretListError(f"{len(entries)} secrets given; at most {MAX_SECRETS} expected")
    for position, entry in enumerate(entries, start=1):
        if not entry:
            raise SecretListError(
                f"secret {position} of {len(entries)} is empty (a stray comma?); "
                "secrets are comma-separated"
            )
        if len(entry) < MIN_SECRET_LENGTH:
            raise SecretListError(
                f"secret {position} of {len(entries)} is {len(entry)} characters long; "
                f"at least {MIN_SECRET_LENGTH} expected"
            )
    if len(set(entries)) != len(entries):
        raise SecretListError("the same secret is listed twice")
    return entries
