"""The alert webhook (``kind = "webhook"`` sinks) as an OpenAPI 3.1 ``webhooks`` entry:
the request the notify handler sends to a receiver, and the answers it understands.

The examples are rendered by the sink's own code (:func:`handlers.notify.sinks.
webhook_body`) from fixed alerts, so they are what a receiver gets.
"""

from __future__ import annotations

from typing import Any

from handlers.notify.alerts import Alert
from handlers.notify.sinks import webhook_body

_OCCURRED_MS = 1_796_244_995_876
_NOW_MS = 1_796_244_996_409


def _examples() -> dict[str, Any]:
    trigger = Alert(
        transition="trigger", incident="recording-exit/class-7a/0d54dd5a0cf2bb1a184b38b474a8ed17",
        episode="8f7c2d1e-4b5a-4c3d-9e8f-7a6b5c4d3e2f", rule="recording-exit", severity="error",
        summary="recording-exit: session_exit on cname class-7a (sid "
        "0d54dd5a0cf2bb1a184b38b474a8ed17): exitStatus=1",
        cname="class-7a", sid="0d54dd5a0cf2bb1a184b38b474a8ed17", component="cloud-recording",
        alert_class="session_exit", sinks=("ops",), occurred_ms=_OCCURRED_MS,
        details={"eventType": 11, "msgName": "session_exit",
                 "noticeId": "8f7c2d1e-4b5a-4c3d-9e8f-7a6b5c4d3e2f", "uid": "900001",
                 "details": {"exitStatus": 1}},
    )
    resolve = Alert(
        transition="resolve", incident=trigger.incident, episode=trigger.episode,
        rule=trigger.rule, severity=trigger.severity, summary=trigger.summary,
        cname=trigger.cname, sid=trigger.sid, component=trigger.component,
        alert_class=trigger.alert_class, sinks=trigger.sinks, occurred_ms=_OCCURRED_MS + 800,
        details=trigger.details,
    )
    return {
        "triggered": {"summary": "A recording task exited with an error",
                      "value": webhook_body(trigger, _NOW_MS)},
        "resolved": {"summary": "The restart resolved it",
                     "value": webhook_body(resolve, _NOW_MS + 500)},
    }


def alert_schemas() -> dict[str, Any]:
    """Components: the body and its ``data``."""
    text = {"type": "string"}
    return {
        "AlertWebhook": {
            "type": "object",
            "description": "One transition (triggered or resolved) of one incident.",
            "properties": {
                "type": {"enum": ["agora.alert.triggered", "agora.alert.resolved"]},
                "timestamp": {"type": "string", "format": "date-time",
                              "description": "When this body was rendered (UTC, ms)."},
                "data": {"$ref": "#/components/schemas/AlertData"},
            },
            "required": ["type", "timestamp", "data"],
            "additionalProperties": False,
        },
        "AlertData": {
            "type": "object",
            "properties": {
                "status": {"enum": ["triggered", "resolved"]},
                "incident": {**text, "description": "Stable key: rule, cname and sid (rule "
                             "and cname for action outcomes)."},
                "dedupKey": {**text, "description": "Hash of the incident: the same for its "
                             "trigger and its resolution (PagerDuty's dedup_key)."},
                "episode": {**text, "description": "One open..resolve cycle of the incident."},
                "rule": {**text, "description": "The `[[alerts.rules]]` name."},
                "severity": {"enum": ["critical", "error", "warning", "info"]},
                "summary": text,
                "cname": text,
                "sid": {"type": ["string", "null"]},
                "component": {**text, "description": "`cloud-recording` for event rules, "
                              "the handler's name for outcome rules."},
                "class": {**text, "description": "The event's msgName, or the outcome."},
                "occurredMs": {"type": ["integer", "null"],
                               "description": "When it happened (NCS sendts or the outcome's "
                               "time), Unix ms."},
                "details": {"type": "object", "description": "Scalar facts of the event or "
                            "outcome; never a secret."},
            },
            "required": ["status", "incident", "dedupKey", "episode", "rule", "severity",
                         "summary", "cname", "sid", "component", "class", "occurredMs",
                         "details"],
            "additionalProperties": False,
        },
    }


def alert_webhooks() -> dict[str, Any]:
    """The ``webhooks`` object of the handlers' OpenAPI document."""
    header = {"in": "header", "required": True}
    return {
        "alert": {
            "post": {
                "operationId": "alertWebhook",
                "summary": "An alert transition, POSTed to each `kind = \"webhook\"` sink "
                "(Standard Webhooks).",
                "description": "Sent by the notify handler when a rule of the rules file "
                "fires (`triggered`) and when its incident ends (`resolved`). Verify the "
                "signature over `webhook-id.webhook-timestamp.body` (HMAC-SHA256 with the "
                "sink's `secret`; a `whsec_` secret is base64). Deduplicate on `webhook-id`: "
                "a retry of the same transition carries the same id.",
                "parameters": [
                    {**header, "name": "webhook-id", "schema": {"type": "string"},
                     "description": "`alert_` + 32 hex digits; the same on every retry."},
                    {**header, "name": "webhook-timestamp",
                     "schema": {"type": "string", "pattern": "^[0-9]+$"},
                     "description": "Unix seconds of this attempt."},
                    {"in": "header", "required": False, "name": "webhook-signature",
                     "schema": {"type": "string", "pattern": "^v1,[A-Za-z0-9+/=]+$"},
                     "description": "`v1,<base64 HMAC-SHA256>`; present when the sink has "
                     "a `secret`."},
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/AlertWebhook"},
                        "examples": _examples(),
                    }},
                },
                "responses": {
                    "2XX": {"description": "Delivered."},
                    "408": {"description": "Retried with backoff (so are 429 and 5xx, "
                            "honouring `Retry-After`); after the retry budget the alert is "
                            "dead-lettered (`agora-events dlq list --handler notify`)."},
                    "429": {"description": "Retried, honouring `Retry-After`."},
                    "5XX": {"description": "Retried, honouring `Retry-After`."},
                    "4XX": {"description": "Any other 4xx: not retried; the notify outcome "
                            "records the failure."},
                },
            }
        }
    }
