"""Values checked against a schema that lives inside an OpenAPI 3.1 or AsyncAPI document,
with ``jsonschema`` (JSON Schema 2020-12).

A schema taken out of such a document still holds local references (``#/components/...``)
into the whole document, so the document is registered under one URI and the references
are anchored to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

_DOCUMENT = "urn:agora-events:document"


def _registry(document: Mapping[str, Any]) -> Registry[Any]:
    resource = Resource.from_contents(dict(document), default_specification=DRAFT202012)
    return Registry().with_resource(_DOCUMENT, resource)


def _anchored(schema: Any) -> Any:
    """``schema`` with its local ``$ref`` values pointing into the registered document."""
    if isinstance(schema, Mapping):
        return {key: f"{_DOCUMENT}{value}"
                if key == "$ref" and isinstance(value, str) and value.startswith("#")
                else _anchored(value)
                for key, value in schema.items()}
    if isinstance(schema, list):
        return [_anchored(item) for item in schema]
    return schema


def resolve(document: Mapping[str, Any], ref: str) -> Any:
    """The node a local ``$ref`` points to (``referencing`` raises when there is none)."""
    return _registry(document).resolver().lookup(f"{_DOCUMENT}{ref}").contents


def errors(instance: Any, schema: Any, document: Mapping[str, Any], where: str = "$"
           ) -> list[str]:
    """Every way ``instance`` fails ``schema`` (empty when it conforms), each as
    ``where.path: message``."""
    validator = Draft202012Validator(_anchored(schema), registry=_registry(document))
    return [f"{where}{error.json_path.removeprefix('$')}: {error.message}"
            for error in sorted(validator.iter_errors(instance), key=lambda e: e.json_path)]
