"""Standalone JSON Schemas (2020-12) of each topic's values and headers.

``docs/contracts/schemas/<topic>.value.json`` and ``<topic>.headers.json``, one pair per
topic of the catalog, each with its own ``$id`` and every definition it needs under
``$defs``: what a schema registry, a generic validator or a code generator takes, without
reading the AsyncAPI document. They are built from the same channel descriptions as the
AsyncAPI document (:func:`handlers.contracts.asyncapi.default_channels`), so the two agree.

- A topic with several record shapes (``agora.actions``) gets ``oneOf`` over them; its
  headers schema picks the shape by the ``record-type`` header (``const`` per branch).
- ``agora.ncs.events`` applies the eventType -> details mapping with ``if``/``then``.
- Binary values (quarantined callbacks, dead letters) have a value schema that only says
  so (``contentMediaType``): their headers are the contract. The quarantine topic's JSON
  pointers are told apart from its bodies by their headers too (``anyOf`` for the value).
- A compacted topic's value may be null (a tombstone).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from handlers.contracts.asyncapi import Channel, Message, default_channels, default_topic_names
from handlers.contracts.details import details_conditions
from handlers.contracts.record_shapes import headers_schema
from handlers.contracts.schemas import DEFS_REF, ModelSchema, SchemaSet, schema_set
from webhook.shared.event_records import SCHEMA_VERSION

DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_PREFIX = "urn:agora-events:schema:"
"""``$id`` = prefix + ``<topic>:<value|headers>:<schema-version>``: stable names that do
not pretend to be downloadable URLs."""
SCHEMA_DIR = "schemas"


def schema_id(topic: str, part: str) -> str:
    return f"{ID_PREFIX}{topic}:{part}:{SCHEMA_VERSION}"


def file_name(topic: str, part: str) -> str:
    """Path of a schema inside docs/contracts."""
    return f"{SCHEMA_DIR}/{topic}.{part}.json"


def build_topic_schemas(
    channels: Mapping[str, Channel] | None = None,
) -> dict[str, dict[str, Any]]:
    """File name (relative to docs/contracts) -> schema, for every channel."""
    described = dict(channels) if channels is not None else default_channels()
    names = default_topic_names()
    models = [m.payload for c in described.values() for m in c.messages
              if isinstance(m.payload, ModelSchema)]
    models += [ModelSchema(model, "validation") for model in _details_models()]
    schemas = schema_set(models, ref_template=DEFS_REF)
    documents: dict[str, dict[str, Any]] = {}
    for field_name, channel in described.items():
        topic = getattr(names, field_name)
        value = _value_schema(channel, schemas)
        documents[file_name(topic, "value")] = _document(
            topic, "value", f"{topic} record value", channel.description, value,
            schemas.components,
        )
        documents[file_name(topic, "headers")] = _document(
            topic, "headers", f"{topic} record headers",
            "Kafka headers of a record (UTF-8 text values), by name.",
            _headers(channel.messages), {},
        )
    return documents


def _details_models() -> list[Any]:
    from webhook.shared.events import EVENT_TYPES

    return [info.model for _, info in sorted(EVENT_TYPES.items())]


def _value_schema(channel: Channel, schemas: SchemaSet) -> dict[str, Any]:
    shapes = [_message_value(message, schemas) for message in channel.messages]
    # A binary value has no JSON shape that could rule the others out: its headers tell the
    # messages apart, and the value is only "one of" them when every one is JSON.
    binary = any(m.content_type != "application/json" for m in channel.messages)
    value = shapes[0] if len(shapes) == 1 else {"anyOf" if binary else "oneOf": shapes}
    if any(message.tombstones for message in channel.messages):
        value = {"oneOf": [value, {"type": "null", "description": "Tombstone: the key's "
                                   "entry was removed."}]}
    return value


def _message_value(message: Message, schemas: SchemaSet) -> dict[str, Any]:
    if isinstance(message.payload, ModelSchema):
        schema = schemas.ref(message.payload.model, message.payload.mode)
        schema["title"] = message.title
    elif message.content_type == "application/json":
        schema = {"title": message.title, **message.payload}
    else:
        return {"title": message.title, "description": message.payload.get("description", ""),
                "contentMediaType": message.content_type}
    if message.details_index:
        schema = {"title": message.title, "allOf": [
            {"$ref": schema["$ref"]},
            *details_conditions(lambda model: schemas.ref(model, "validation")),
        ]}
    return schema


def _headers(messages: tuple[Message, ...]) -> dict[str, Any]:
    shapes = []
    for message in messages:
        schema = headers_schema(message.headers, open_ended=message.open_headers)
        shapes.append({"title": message.title, **schema})
    return shapes[0] if len(shapes) == 1 else {"oneOf": shapes}


def _document(topic: str, part: str, title: str, description: str, root: dict[str, Any],
              components: Mapping[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = {
        "$schema": DIALECT,
        "$id": schema_id(topic, part),
        "title": title,
        "description": description,
        **root,
    }
    needed = _reachable(document, components)
    if needed:
        document["$defs"] = {name: components[name] for name in sorted(needed)}
    return document


def _reachable(node: Any, components: Mapping[str, Any]) -> set[str]:
    """Names of the definitions ``node`` refers to, directly or through other definitions."""
    found: set[str] = set()
    pending = list(_refs(node))
    while pending:
        name = pending.pop()
        if name in found:
            continue
        found.add(name)
        pending.extend(_refs(components[name]))
    return found


def _refs(node: Any) -> Iterator[str]:
    prefix = DEFS_REF.split("{", 1)[0]
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(prefix):
                yield value[len(prefix):]
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)
