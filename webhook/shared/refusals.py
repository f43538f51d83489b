"""Why a callback is not answered ``200 {}``: one exception class per answer.

Each class carries what ``POST /ncs`` does with it (webhook.views has the one handler that
does it): the HTTP status and the ``error`` code of the JSON body ``{"error", "detail"}``,
the ``outcome`` label of ``agora_webhook_requests_total``, the log line (level, message,
fields; none for refusals the client caused in plain ways) and whether NCS should retry
(503 + ``Retry-After``, and the notice is not held as published).

The statuses are what NCS does with them, so they belong to the error, not to the view: a
5xx is retried, a 4xx is not. The module imports no Flask; the errors raised deeper down
(``SignatureError``, ``StaleNotification``, ``PublishUnavailable``, ``SpoolFull``,
``SpoolUnavailable``) are refusals themselves.
"""

from __future__ import annotations

import logging
from typing import ClassVar


class Refusal(Exception):
    """A callback refused; subclasses set the class attributes below."""

    status: ClassVar[int]
    error: ClassVar[str]
    """The body's ``error`` code (public: tests and the OpenAPI document name them)."""
    outcome: ClassVar[str]
    """The ``outcome`` label of ``agora_webhook_requests_total``."""
    log_level: ClassVar[int] = logging.NOTSET
    """``NOTSET``: answered without a log line."""
    log_message: ClassVar[str] = ""
    asks_retry: ClassVar[bool] = False
    public_detail: ClassVar[str | None] = None
    """The body's ``detail`` when the message may say more than the client should read."""

    @property
    def detail(self) -> str:
        return self.public_detail if self.public_detail is not None else str(self)

    def log_fields(self) -> dict[str, object]:
        return {"error": str(self)}


class BodyReadTimeout(Refusal):
    """The body did not arrive within ``AGORA_WEBHOOK_READ_TIMEOUT_S``."""

    status, error, outcome = 408, "request_timeout", "read_timeout"


class BodyTooLarge(Refusal):
    """The body is over ``AGORA_WEBHOOK_MAX_BODY_BYTES`` (declared, or read past it)."""

    status, error, outcome = 413, "request_entity_too_large", "too_large"


class UnreadableBody(Refusal):
    """A broken chunked encoding, or the body ended early: the client's fault."""

    status, error, outcome = 400, "bad_request", "bad_request"
    log_level, log_message = logging.WARNING, "unreadable body"

    def __init__(self, cause: BaseException) -> None:
        self.cause_name = type(cause).__name__
        super().__init__(f"unreadable body: {self.cause_name}")

    def log_fields(self) -> dict[str, object]:
        return {"error": self.cause_name}


class Unauthorized(Refusal):
    """Not signed by any active NCS secret: nothing is published."""

    status, error, outcome = 401, "invalid_signature", "unauthorized"
    log_level, log_message = logging.WARNING, "signature rejected"


class Stale(Refusal):
    """Signed, but ``notifyMs`` is outside the freshness window: a replay, not NCS."""

    status, error, outcome = 403, "stale_notification", "stale"
    log_level, log_message = logging.WARNING, "stale notification"


class RetryLater(Refusal):
    """The callback could not be made durable now; NCS's retry must be published."""

    status, outcome = 503, "unavailable"
    log_level = logging.ERROR
    asks_retry = True


class RecordTooLarge(Refusal):
    """The topic can never take the record for its size (a pointer is quarantined)."""

    status, error, outcome = 413, "record_too_large", "rejected"


class RecordRejected(Refusal):
    """The topic refused the record for good for another reason (a pointer is quarantined)."""

    status, error, outcome = 422, "record_rejected", "rejected"
