"""The AsyncAPI 3.0 document of the service's Kafka topics.

One channel per topic of :func:`webhook.shared.topic_catalog.catalog` (address = the default topic
name), each message with its key, headers and payload. Payload schemas are generated from
the models that write the records (or, for ``agora.ncs.events``, the model that parses the
NCS body, which is published unchanged). A topic added to the catalog without a
description here makes :func:`build_asyncapi` fail, so the document stays complete.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from handlers.action_catalog import default_registry
from handlers.actions_topic import ActionsReport
from handlers.contracts.details import details_conditions, sample_bodies
from handlers.contracts.record_shapes import (
    EVENT_HEADERS,
    FILE_HEADERS,
    OUTCOME_HEADERS,
    POINTER_HEADERS,
    QUARANTINE_HEADERS,
    REPORT_HEADERS,
    SCREENSHOT_HEADERS,
    SESSION_HEADERS,
    STATE_HEADERS,
    Header,
    ScreenshotsRecord,
    dlq_headers,
    headers_schema,
)
from handlers.contracts.schemas import ModelSchema, SchemaSet, schema_set
from handlers.notify.files import FileRecord
from handlers.recording.session_registry import SessionRecord
from handlers.runtime.outcomes import ActionOutcome
from handlers.settings import HandlerSettings
from webhook.shared.event_records import QuarantinePointer, event_record
from webhook.shared.events import EVENT_TYPES, Notification, parse_notification
from webhook.shared.kafka_settings import KafkaSettings, TopicNames
from webhook.shared.topic_catalog import TopicSpec, catalog

KAFKA_BINDING_VERSION = "0.5.0"
# The TopicConfiguration object of the Kafka binding allows only these keys.
_BINDING_TOPIC_CONFIGS = frozenset(
    {"cleanup.policy", "retention.ms", "retention.bytes", "delete.retention.ms",
     "max.message.bytes"}
)

_CNAME_KEY = {"type": "string", "description": "payload.cname of the event (UTF-8)."}
_BYTES = {"type": "string", "format": "binary"}


@dataclass(frozen=True)
class Message:
    """One kind of record on a channel. ``payload`` is a model (documented in ``mode``) or
    a literal schema; ``tombstones``: a null value is part of the contract."""

    name: str
    title: str
    summary: str
    headers: tuple[Header, ...]
    key: Mapping[str, Any]
    payload: ModelSchema | Mapping[str, Any]
    content_type: str = "application/json"
    tombstones: bool = False
    open_headers: bool = False
    details_index: bool = False


@dataclass(frozen=True)
class Channel:
    """What one topic carries and who writes it. ``internal``: for the service itself, not
    for consumers."""

    title: str
    description: str
    writer: str
    messages: tuple[Message, ...]
    internal: bool = False


def default_channels() -> dict[str, Channel]:
    """Channel descriptions by ``TopicNames`` field."""
    return {
        "events": Channel(
            "NCS events",
            "Every verified NCS callback, published before the webhook answers 200. The value "
            "is the callback body byte for byte (NCS's own JSON: read it with the "
            "Notification schema, which accepts unknown keys; `playload` is accepted for "
            "`payload`). Unknown eventTypes are published like the others. One channel's "
            "sessions, restarts included, stay in order on one partition (key = cname). "
            "NCS may send duplicates (same or different noticeId): consumers must be "
            "idempotent.",
            "The webhook publishes every verified callback (acks=all, idempotent).",
            (
                Message(
                    "ncsEvent", "NCS callback", "An Agora Notification Center callback.",
                    EVENT_HEADERS,
                    {"type": ["string", "null"], "description": "payload.cname (UTF-8); no "
                     "key (null) when the callback has no cname."},
                    ModelSchema(Notification, "validation"),
                    details_index=True,
                ),
            ),
        ),
        "quarantine": Channel(
            "Quarantined callbacks",
            "Correctly signed callbacks that are not valid JSON or not a valid envelope. "
            "Kept byte for byte (a retry by NCS cannot fix them; dropping them loses them). "
            "A record the broker refuses for good (too large for its topic) is set aside here "
            "as a JSON pointer instead, never its body: its headers carry `content-type: "
            "application/json`, which quarantined bodies do not.",
            "The webhook publishes signed callbacks it cannot parse, and pointers to records "
            "the broker refused.",
            (
                Message(
                    "quarantinedCallback", "Quarantined callback",
                    "A signed body the webhook could not parse.", QUARANTINE_HEADERS,
                    {"type": "null", "description": "Always null."},
                    {**_BYTES, "description": "The request body exactly as received."},
                    content_type="application/octet-stream",
                ),
                Message(
                    "quarantinePointer", "Quarantine pointer",
                    "Stands for a record the broker refused for good.", POINTER_HEADERS,
                    {"type": "null", "description": "Always null."},
                    ModelSchema(QuarantinePointer),
                ),
            ),
        ),
        "actions": Channel(
            "Action outcomes",
            "What the handlers did with each event. Two kinds of record share the topic and "
            "its common fields (action, outcome, cname, sid, noticeId, eventType, at, error): "
            "the runtime's ActionOutcome (field `action` = handler) for every decision, and "
            "each handler's own report (field `handler` = handler, `action` = operation; "
            "RestartReport, CaptureFailedReport, AlertsReport, or the open ActionReport for "
            "other handlers). Tell them apart by the `record-type` header (`outcome` or "
            "`report`) before parsing, or by the `handler` field of the value; a report's "
            "`handler` picks its schema. `at` is Unix time in milliseconds in both.",
            "The handler runtime and the handlers publish outcomes, transactionally.",
            (
                Message(
                    "actionOutcome", "Runtime outcome",
                    "The runtime's record of one handler's decision about one event.",
                    OUTCOME_HEADERS, {"type": ["string", "null"], "description": "cname of "
                                      "the event; null when the event had no key."},
                    ModelSchema(ActionOutcome),
                ),
                Message(
                    "actionReport", "Handler report",
                    "A handler's own record of an operation: restart outcomes (restarted, "
                    "gave_up, not_needed, failed), whiteboard failures, alerts sent.",
                    REPORT_HEADERS, _CNAME_KEY, ModelSchema(ActionsReport),
                ),
            ),
        ),
        "files": Channel(
            "Recorded files",
            "One record per recorded file or screenshot NCS reports (events 4, 31, 32, 45, "
            "71, 81, 1001). `id` is stable across duplicate notices; each id is published "
            "once.",
            "The notify handler publishes each recorded file once.",
            (
                Message(
                    "fileRecord", "Recorded file", "One file of a recording.", FILE_HEADERS,
                    _CNAME_KEY, ModelSchema(FileRecord),
                ),
            ),
        ),
        "screenshots": Channel(
            "Whiteboard screenshots",
            "Results of whiteboard screenshot-list captures, one record per trigger.",
            "The whiteboard handler publishes each capture once.",
            (
                Message(
                    "screenshotsRecord", "Whiteboard capture",
                    "The screenshots of one room's scene directory.", SCREENSHOT_HEADERS,
                    _CNAME_KEY, ModelSchema(ScreenshotsRecord),
                ),
            ),
        ),
        "sessions": Channel(
            "Recording sessions",
            "The recording session registry (compacted), one record per recording task (a "
            "channel may have several): the latest record per key is the truth. Written by "
            "`agora-events recording start/stop`, by the restart handler and by any "
            "application that follows this schema. Credentials inside "
            "client_request are references such as \"${NAME}\", never values.",
            "`agora-events recording` and the restart handler write the registry.",
            (
                Message(
                    "sessionRecord", "Session record", "How one recording task runs.",
                    SESSION_HEADERS, {**_CNAME_KEY, "description": "The JSON array "
                                      "[cname, task] (schema version 2); the cname for a "
                                      "version-1 record."},
                    ModelSchema(SessionRecord), tombstones=True,
                ),
            ),
        ),
        "dlq": Channel(
            "Dead letters",
            "Records a handler gave up on: the original key, value and headers, byte for "
            "byte, plus provenance headers. `agora-events dlq replay` copies them back to "
            "their topic for the one handler that failed.",
            "The handler runtime dead-letters records it gave up on.",
            (
                Message(
                    "deadLetter", "Dead letter", "A consumed record that could not be handled.",
                    dlq_headers(), {"description": "The original record's key, unchanged."},
                    {**_BYTES, "description": "The original record's value, unchanged."},
                    content_type="application/octet-stream", open_headers=True,
                ),
            ),
        ),
        "state": Channel(
            "Handler state",
            "The handlers' durable state (dedup ledger, incidents, restart windows), written "
            "in the same transaction as their offsets. Internal: its keys and values may "
            "change between releases.",
            "The handler runtime writes each handler's state with its offsets.",
            (
                Message(
                    "stateEntry", "State entry", "One entry of one handler's state.",
                    STATE_HEADERS, {"type": "string", "description": "<handler>/<key>"},
                    {"type": "object", "description": "A JSON object owned by the handler."},
                    tombstones=True,
                ),
            ),
            internal=True,
        ),
    }


def _details_models() -> list[ModelSchema]:
    return [ModelSchema(info.model, "validation") for _, info in sorted(EVENT_TYPES.items())]


def _details_index(schemas: SchemaSet) -> dict[str, Any]:
    """eventType -> msgName and the schema of ``payload.details``: the per-event contract a
    consumer relies on when it reads the details (the webhook checks only the envelope)."""
    return {
        str(code): {
            "msgName": info.msg_name,
            "description": info.description,
            "schema": schemas.ref(info.model, "validation"),
        }
        for code, info in sorted(EVENT_TYPES.items())
    }


def default_topic_names() -> TopicNames:
    """The documented topic names, whatever ``AGORA_TOPIC_*`` says in this environment."""
    return TopicNames.model_construct()


def _binding(spec: TopicSpec) -> tuple[dict[str, Any], dict[str, str]]:
    """The channel's Kafka binding, and topic configs the binding cannot express."""
    configuration: dict[str, Any] = {}
    others: dict[str, str] = {}
    for name, value in sorted(spec.configs(None).items()):
        if name not in _BINDING_TOPIC_CONFIGS:
            others[name] = value
        elif name == "cleanup.policy":
            configuration[name] = value.split(",")
        else:
            configuration[name] = int(value)
    return {"kafka": {"topicConfiguration": configuration,
                      "bindingVersion": KAFKA_BINDING_VERSION}}, others


def _models(channels: Mapping[str, Channel]) -> list[ModelSchema]:
    found: list[ModelSchema] = []
    for channel in channels.values():
        for message in channel.messages:
            if isinstance(message.payload, ModelSchema):
                found.append(message.payload)
            if message.details_index:
                found.extend(_details_models())
    return found


def _payload(message: Message, schemas: SchemaSet) -> dict[str, Any]:
    if isinstance(message.payload, ModelSchema):
        payload: dict[str, Any] = schemas.ref(message.payload.model, message.payload.mode)
    else:
        payload = dict(message.payload)
    if message.details_index:
        conditions = details_conditions(lambda model: schemas.ref(model, "validation"))
        payload = {"allOf": [payload, *conditions]}
    if message.tombstones:
        return {"oneOf": [payload, {"type": "null", "description": "Tombstone: the key's "
                                    "entry was removed."}]}
    return payload


def _message(message: Message, schemas: SchemaSet) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": message.name,
        "title": message.title,
        "summary": message.summary,
        "contentType": message.content_type,
        "headers": headers_schema(message.headers, open_ended=message.open_headers),
        "payload": _payload(message, schemas),
        "bindings": {"kafka": {"key": dict(message.key), "bindingVersion": KAFKA_BINDING_VERSION}},
    }
    if message.details_index:
        doc["examples"] = event_examples()
        doc["x-details"] = _details_index(schemas)
    return doc


# received-at of the examples: a fixed time, so the document is stable.
_EXAMPLE_RECEIVED_MS = 1_718_090_190_600


def event_examples() -> list[dict[str, Any]]:
    """One example per shipped sample callback: the record the webhook writes for it."""
    examples = []
    for code, msg_name, body in sample_bodies():
        raw = json.dumps(body).encode()
        record = event_record("agora.ncs.events", raw, parse_notification(raw),
                              _EXAMPLE_RECEIVED_MS, "Agora-Signature-V2")
        examples.append({
            "name": msg_name,
            "summary": f"eventType {code}, {msg_name}",
            "headers": {name: value.decode() for name, value in record.headers},
            "payload": body,
        })
    return examples


def _operations(channels: Mapping[str, Channel]) -> dict[str, Any]:
    """Who writes each channel, and the handlers' consumer groups on the events topic."""
    operations: dict[str, Any] = {}
    for field_name, channel in channels.items():
        operations[f"publish{field_name[0].upper()}{field_name[1:]}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{field_name}"},
            "summary": channel.writer,
            "messages": [
                {"$ref": f"#/channels/{field_name}/messages/{m.name}"} for m in channel.messages
            ],
        }
    prefix = HandlerSettings.model_fields["group_prefix"].default
    for handler in default_registry().default_names():
        operations[f"{handler}ConsumesEvents"] = {
            "action": "receive",
            "channel": {"$ref": "#/channels/events"},
            "summary": f"The {handler} handler (consumer group {prefix}.{handler}, "
            "AGORA_HANDLERS_GROUP_PREFIX) reads every event; it commits an offset only "
            "after the record was handled, ignored or dead-lettered.",
            "messages": [{"$ref": "#/channels/events/messages/ncsEvent"}],
            "bindings": {"kafka": {"groupId": {"type": "string", "enum": [f"{prefix}.{handler}"]},
                                   "bindingVersion": KAFKA_BINDING_VERSION}},
        }
    return operations


def build_asyncapi(channels: Mapping[str, Channel] | None = None) -> dict[str, Any]:
    """The document as a JSON-ready dict, from ``channels`` (default: this module's
    descriptions, by ``TopicNames`` field). Raises ``LookupError`` when the topic catalog
    and the descriptions do not name the same topics."""
    names = default_topic_names()
    field_of = {getattr(names, name): name for name in TopicNames.model_fields}
    described = dict(channels) if channels is not None else default_channels()
    specs = catalog(names)
    undocumented = [spec.name for spec in specs if field_of.get(spec.name) not in described]
    if undocumented:
        raise LookupError(f"topics without a contract: {', '.join(undocumented)}")
    ordered = {field_of[spec.name]: (spec, described[field_of[spec.name]]) for spec in specs}
    stale = sorted(set(described) - set(ordered))
    if stale:
        raise LookupError(f"contracts for topics not in the catalog: {', '.join(stale)}")
    schemas = schema_set(_models(described))

    channel_docs: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for field_name, (spec, channel) in ordered.items():
        binding, other_configs = _binding(spec)
        doc: dict[str, Any] = {
            "address": spec.name,
            "title": channel.title,
            "summary": spec.purpose,
            "description": channel.description,
            "messages": {
                m.name: {"$ref": f"#/components/messages/{m.name}"} for m in channel.messages
            },
            "bindings": binding,
            "x-topic-setting": f"AGORA_TOPIC_{field_name.upper()}",
        }
        if other_configs:
            doc["x-topic-configs"] = other_configs
        if channel.internal:
            doc["x-internal"] = True
        channel_docs[field_name] = doc
        for message in channel.messages:
            messages[message.name] = _message(message, schemas)

    bootstrap = KafkaSettings.model_fields["bootstrap_servers"].default
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "agora-events topics",
            "version": version("agora-events"),
            "description": "Kafka topics written by agora-events: Agora Cloud Recording "
            "callbacks as durable events, and what the handlers did with them. Keys and "
            "header values are UTF-8 text; JSON values are UTF-8 JSON. Within a schema "
            "version, fields are only ever added (optional); a change of meaning or type "
            "gets a new schema-version header value. Generated by `python -m "
            "handlers.contracts`; do not edit by hand.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": bootstrap,
                "protocol": "kafka",
                "description": "The brokers in KAFKA_BOOTSTRAP_SERVERS (default shown).",
            }
        },
        "channels": channel_docs,
        "operations": _operations({f: c for f, (_, c) in ordered.items()}),
        "components": {"messages": messages, "schemas": schemas.components},
    }
