"""The alert webhook's documented body (OpenAPI 3.1 ``webhooks`` of the handlers'
document): its examples are what the sink renders, and conform; a body that breaks the
contract is caught."""

from __future__ import annotations

import copy
from typing import Any

from support.document_schemas import errors

from handlers.contracts.openapi import build_handlers_openapi


def _operation(document: dict[str, Any]) -> dict[str, Any]:
    assert document["openapi"] == "3.1.0"
    return document["webhooks"]["alert"]["post"]


def test_the_examples_conform_and_cover_both_transitions() -> None:
    document = build_handlers_openapi()
    content = _operation(document)["requestBody"]["content"]["application/json"]
    examples = {name: e["value"] for name, e in content["examples"].items()}
    assert {e["type"] for e in examples.values()} == {
        "agora.alert.triggered", "agora.alert.resolved"}
    for value in examples.values():
        assert errors(value, content["schema"], document) == []
    assert examples["triggered"]["data"]["dedupKey"] == examples["resolved"]["data"]["dedupKey"]


def test_a_body_that_breaks_the_contract_is_caught() -> None:
    document = build_handlers_openapi()
    content = _operation(document)["requestBody"]["content"]["application/json"]
    body = copy.deepcopy(content["examples"]["triggered"]["value"])
    body["data"]["severity"] = "fatal"
    del body["data"]["cname"]
    found = errors(body, content["schema"], document)
    assert any("severity" in problem for problem in found)
    assert any("cname" in problem for problem in found)


def test_the_signature_headers_are_documented() -> None:
    names = {p["name"] for p in _operation(build_handlers_openapi())["parameters"]}
    assert names == {"webhook-id", "webhook-timestamp", "webhook-signature"}
