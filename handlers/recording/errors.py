"""Failed Cloud Recording calls, and what a caller should do about each.

Agora's own recovery recipe (reference/agora-facts.md 2.9) is encoded once, in the pure
:func:`advise`: callers (the restart policy, the CLI) branch on :class:`Advice`, never on
raw codes. The client never retries by itself.
"""

from __future__ import annotations

from enum import StrEnum

_MAX_REASON_CHARS = 300


class Advice(StrEnum):
    """The next step after a failed call."""

    RETRY_SAME = "retry_same"
    """Transient (5xx, 429, codes 62/65/406, timeouts, network errors): repeat the same
    request with back-off; after a few failures of ``start``, acquire again."""
    NEW_UID = "new_uid"
    """Code 53: another task already records this cname with this uid: acquire and start
    again with the other (backup) uid."""
    REACQUIRE = "reacquire"
    """The resourceId is unusable (433 expired, 1001 unparsable, 432 mismatch, 502 no
    worker allocated): acquire a new one and start again."""
    ALREADY_RUNNING = "already_running"
    """Code 7 (HTTP 201 on start): this resourceId already records; do not start again."""
    NOT_FOUND = "not_found"
    """HTTP 404: the task is gone, never started, or Agora is moving it (HA failover, up
    to ~90 s). Back off and ask again before concluding it exited."""
    GONE = "gone"
    """Code 49 (task already exiting) or 435 (stopped, nothing was recorded): the task is
    over; treat a stop as done."""
    STOP = "stop"
    """Any other 4xx or an unexpected answer: the request or configuration is wrong and a
    repeat fails the same way. Fix it and alert; do not loop."""


# Codes that decide the advice whatever the HTTP status (they travel with 200, 201, 206,
# 400 and 500 alike).
_BY_CODE: dict[int, Advice] = {
    7: Advice.ALREADY_RUNNING,
    49: Advice.GONE,
    53: Advice.NEW_UID,
    62: Advice.RETRY_SAME,
    65: Advice.RETRY_SAME,
    # Quota of concurrent tasks exceeded: Agora says retry later (and look for leaks).
    406: Advice.RETRY_SAME,
    432: Advice.REACQUIRE,
    433: Advice.REACQUIRE,
    435: Advice.GONE,
    # "Failed to allocate worker" on start: a new acquire may land on another worker.
    502: Advice.REACQUIRE,
    1001: Advice.REACQUIRE,
}


def advise(http_status: int | None, code: int | None) -> Advice:
    """The next step for a call that ended with ``http_status`` (``None``: no response at
    all, i.e. a timeout or network error) and Agora ``code`` (``None`` when the body had
    none). Pure; the table is reference/agora-facts.md 2.9."""
    if code is not None and code in _BY_CODE:
        return _BY_CODE[code]
    if http_status is None or http_status == 429 or http_status >= 500:
        return Advice.RETRY_SAME
    if http_status == 404:
        return Advice.NOT_FOUND
    return Advice.STOP


class RecordingApiError(Exception):
    """A Cloud Recording call failed.

    ``http_status`` is ``None`` when no response came back (timeout, connection error);
    ``code`` and ``reason`` are Agora's (``reason`` falls back to the gateway's
    ``message`` or a short description); ``advice`` is :func:`advise` of both;
    ``retry_after_s`` is the server's ``Retry-After`` when it sent one. The message names
    the endpoint and the recording but never carries credentials, storage keys or tokens.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        http_status: int | None,
        code: int | None,
        reason: str,
        retry_after_s: float | None = None,
        cname: str | None = None,
        sid: str | None = None,
        advice: Advice | None = None,
        configuration: bool = False,
    ) -> None:
        self.endpoint = endpoint
        self.configuration = configuration
        """A gateway 404/401: the API base, path or credentials are wrong (one alert, and
        never read as "the task is gone")."""
        self.http_status = http_status
        self.code = code
        self.reason = reason[:_MAX_REASON_CHARS]
        self.retry_after_s = retry_after_s
        self.cname = cname
        self.sid = sid
        self.advice = advice if advice is not None else advise(http_status, code)
        self.configuration = configuration
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = f"HTTP {self.http_status}" if self.http_status is not None else "no response"
        code = f", code {self.code}" if self.code is not None else ""
        about = "".join(
            f" {name}={value!r}" for name, value in (("cname", self.cname), ("sid", self.sid))
            if value
        )
        hint = (" (configuration error: check AGORA_API_BASE and the REST credentials)"
                if self.configuration else "")
        return (
            f"cloud recording {self.endpoint} failed ({where}{code}): {self.reason}{hint}"
            f" [advice: {self.advice.value}]{about}"
        )

    @property
    def transient(self) -> bool:
        """Whether repeating the very same request may succeed."""
        return self.advice is Advice.RETRY_SAME


class RecordingNotConfigured(Exception):
    """``AGORA_APP_ID``, ``AGORA_CUSTOMER_ID`` or ``AGORA_CUSTOMER_SECRET`` is not set."""
