"""Which names count as secrets: the one word list behind every redaction and credential check.

A setting, environment variable, JSON field or ``name=value`` pair in an error message is
treated as a secret when its name contains one of :data:`SECRET_WORDS` (case-insensitive,
anywhere: ``secretKey``, ``stsToken``, ``KAFKA_SASL_PASSWORD``) or ends in ``key``
(``accessKey``, ``api_key``, ``routing_key``; not ``keyframe``). Used by:

- :func:`handlers.recording.api_requests.redact`: request bodies before they are logged;
- :mod:`handlers.references` and :func:`handlers.recording.schema.clear_credentials`: the
  fields that may (and in registry records must) hold a ``${NAME}`` reference, not a value;
- :meth:`handlers.notify.action_signals.ActionRecord.alert_details`: fields never copied into alerts
  (with :func:`carries_secrets`, since the copy is flat);
- :func:`handlers.runtime.dlq.describe_error`: ``name: value`` pairs withheld from error text.

A false positive only hides a value; a missing word leaks one, so add words, do not remove them.
"""

from __future__ import annotations

import re

SECRET_WORDS = (
    "secret",
    "token",
    "passw(?:or)?d",
    "credential",
    "authori[sz]ation",
    "signature",
    "salt",
)
"""Regular-expression fragments; any of them anywhere in a name makes it a secret's name."""

SECRET_NAME = re.compile(rf"(?i)(?:{'|'.join(SECRET_WORDS)})|key$")


REQUEST_BODY_NAME = re.compile(r"(?i)client_?request")
"""Fields that hold a whole Cloud Recording request body (``clientRequest``,
``acquire_client_request``). Not secrets' names: code that walks into the body finds the
credentials by their own names (and a registry record's ``client_request`` is no credential
field). Code that copies values flat, without walking into them, leaves these out whole."""


def is_secret_name(name: str) -> bool:
    """True when a value under ``name`` must be withheld (see the module documentation)."""
    return SECRET_NAME.search(name) is not None


def carries_secrets(name: str) -> bool:
    """True when a flat copy must leave the field out: a secret's name, or a request body."""
    return is_secret_name(name) or REQUEST_BODY_NAME.search(name) is not None
