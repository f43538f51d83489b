"""Dead letters and their replays: pure record builders.

A dead letter keeps the original record byte for byte (key, value, headers) and adds
provenance headers saying where it came from and why it died:

========================  ==================================================
``dlq-topic``             topic the record was consumed from
``dlq-partition``         its partition
``dlq-offset``            its offset
``dlq-handler``           the action that gave up on it
``dlq-error``             exception class and message (no secrets, <= 500 chars)
``dlq-attempts``          handling attempts made (0: the record could not be decoded)
``dlq-at``                Unix time in ms when it was dead-lettered
========================  ==================================================

A replay copies the record back to ``dlq-topic`` without the provenance headers, adding
``replayed-from`` (``<dlq topic>/<partition>/<offset>``) and ``replay-for`` (the handler
that dead-lettered it). Every other handler skips a record whose ``replay-for`` names
another handler, so a replay re-runs exactly one action.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from handlers.runtime.kafka_record import Headers, KafkaRecord, header_value
from handlers.secret_names import is_secret_name

DLQ_TOPIC = "dlq-topic"
DLQ_PARTITION = "dlq-partition"
DLQ_OFFSET = "dlq-offset"
DLQ_HANDLER = "dlq-handler"
DLQ_ERROR = "dlq-error"
DLQ_ATTEMPTS = "dlq-attempts"
DLQ_AT = "dlq-at"
REPLAYED_FROM = "replayed-from"
REPLAY_FOR = "replay-for"

PROVENANCE = (DLQ_TOPIC, DLQ_PARTITION, DLQ_OFFSET, DLQ_HANDLER, DLQ_ERROR, DLQ_ATTEMPTS, DLQ_AT)
_RUNTIME_HEADERS = frozenset((*PROVENANCE, REPLAYED_FROM, REPLAY_FOR))

MAX_ERROR_CHARS = 500

# An exception message may quote a URL, a header or a setting: the value of every
# ``name: value`` / ``name=value`` whose name is a secret's name (handlers.secret_names) is
# withheld. Only name and separator are consumed, so a pair inside another pair's value is
# still seen; a name starts where a run of name characters starts and is bounded, so a long
# blob costs linear time.
_ASSIGNMENT = re.compile(r"(?<![\w-])([\w-]{1,128})\s*[:=]\s*")
_ASSIGNED_VALUE = re.compile(r"(?i)(?:(?:bearer|basic)\s+)?(?:\"[^\"]*\"|'[^']*'|[^\s,;&]+)")
_SCHEME = re.compile(r"(?i)\b(bearer|basic)\s+[^\s,;&]+")
_URL_QUERY = re.compile(r"(https?://[^\s?#]+)\?[^\s#]*")
_URL_USERINFO = re.compile(r"(https?://)[^\s/@]+@")


def describe_error(error: BaseException | str) -> str:
    """``Class: message`` with likely secrets withheld, cut to :data:`MAX_ERROR_CHARS`."""
    # The class name is code, never a secret: only the message is searched.
    if isinstance(error, str):
        prefix, text = "", error
    else:
        prefix, text = f"{type(error).__name__}: ", str(error)
    text = _URL_USERINFO.sub(r"\1***@", text)
    text = _URL_QUERY.sub(r"\1?***", text)
    text = _withhold_assigned_secrets(text)
    text = _SCHEME.sub(lambda m: f"{m.group(1)} ***", text)
    text = " ".join((prefix + text).split())
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 3] + "..."
    return text


def _withhold_assigned_secrets(text: str) -> str:
    kept: list[str] = []
    done = 0
    for pair in _ASSIGNMENT.finditer(text):
        if pair.start() < done or not is_secret_name(pair.group(1)):
            continue
        value = _ASSIGNED_VALUE.match(text, pair.end())
        if value is None:
            continue
        kept += [text[done : pair.end()], "***"]
        done = value.end()
    return "".join(kept) + text[done:]


def dead_letter(
    *,
    dlq_topic: str,
    source_topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[tuple[str, bytes]],
    handler: str,
    error: str,
    attempts: int,
    at_ms: int,
) -> KafkaRecord:
    """The DLQ record for one consumed record (``error`` already passed through
    :func:`describe_error`). Runtime headers of an earlier death or replay are replaced."""
    kept = tuple((k, v) for k, v in headers if k not in _RUNTIME_HEADERS)
    provenance: Headers = (
        (DLQ_TOPIC, source_topic.encode()),
        (DLQ_PARTITION, str(partition).encode()),
        (DLQ_OFFSET, str(offset).encode()),
        (DLQ_HANDLER, handler.encode()),
        (DLQ_ERROR, error.encode()),
        (DLQ_ATTEMPTS, str(attempts).encode()),
        (DLQ_AT, str(at_ms).encode()),
    )
    return KafkaRecord(topic=dlq_topic, key=key, value=value, headers=kept + provenance)


class NotReplayable(ValueError):
    """A DLQ record lacks the provenance needed to replay it."""


def replay(
    *, dlq_topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
    headers: Iterable[tuple[str, bytes]], allowed_topics: Collection[str] | None = None,
) -> KafkaRecord:
    """The record that re-injects a dead letter into its original topic.

    ``allowed_topics``: the topics handlers consume. A letter naming any other topic is
    refused: anyone who can write the DLQ could otherwise have a replay write, say, the
    registry topic."""
    headers = tuple(headers)
    source = header_value(headers, DLQ_TOPIC)
    handler = header_value(headers, DLQ_HANDLER)
    if not source:
        raise NotReplayable(f"{dlq_topic}/{partition}/{offset}: header {DLQ_TOPIC} is missing")
    if allowed_topics is not None and source not in allowed_topics:
        raise NotReplayable(
            f"{dlq_topic}/{partition}/{offset}: header {DLQ_TOPIC} names {source!r}, which no "
            f"handler consumes (expected one of {', '.join(sorted(allowed_topics))})"
        )
    if not handler:
        raise NotReplayable(f"{dlq_topic}/{partition}/{offset}: header {DLQ_HANDLER} is missing")
    kept = tuple((k, v) for k, v in headers if k not in _RUNTIME_HEADERS)
    marks: Headers = (
        (REPLAYED_FROM, f"{dlq_topic}/{partition}/{offset}".encode()),
        (REPLAY_FOR, handler.encode()),
    )
    return KafkaRecord(topic=source, key=key, value=value, headers=kept + marks)
