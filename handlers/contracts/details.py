"""The eventType -> ``payload.details`` mapping in standard JSON Schema.

One ``if``/``then`` pair per documented Cloud Recording event type: *if* ``productId`` is 3
and ``eventType`` is the code, *then* ``payload.details`` (or ``playload.details``, Agora's
other spelling) must match that event's details schema. Generic validators and code
generators apply it, unlike a vendor extension. Unknown event types match no ``if`` and stay
valid (forward compatible), like the webhook's own parsing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from webhook.shared.events import CLOUD_RECORDING_PRODUCT_ID, EVENT_TYPES, Details
from webhook.shared.samples import SAMPLES_DIR

RefOf = Callable[[type[Details]], dict[str, Any]]


def details_conditions(ref_of: RefOf) -> list[dict[str, Any]]:
    """``allOf`` members: one ``if``/``then`` per event type (``ref_of`` gives the ``$ref`` of
    a details model in the document being built)."""
    conditions = []
    for code, info in sorted(EVENT_TYPES.items()):
        details = {"properties": {"details": ref_of(info.model)}}
        conditions.append({
            "if": {
                "properties": {
                    "productId": {"const": CLOUD_RECORDING_PRODUCT_ID},
                    "eventType": {"const": code},
                },
                "required": ["productId", "eventType"],
            },
            "then": {
                "description": f"eventType {code} ({info.msg_name}): {info.description}",
                "properties": {"payload": details, "playload": details},
            },
        })
    return conditions


def sample_bodies() -> list[tuple[int, str, dict[str, Any]]]:
    """(eventType, msgName, body) of every shipped sample, as stored (stable ids and times):
    the message examples of the contracts."""
    found = []
    for code, info in sorted(EVENT_TYPES.items()):
        path = SAMPLES_DIR / f"{code}_{info.msg_name}.json"
        found.append((code, info.msg_name, json.loads(path.read_text(encoding="utf-8"))))
    return found
