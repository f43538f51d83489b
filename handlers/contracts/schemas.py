"""JSON Schemas of pydantic models, gathered as one set of named components.

Several documents reference the same models; pydantic resolves name clashes and nested
models once for the whole set, and every reference points into ``components/schemas``.

In ``validation`` mode pydantic documents only the first spelling of a field that accepts
several (``AliasChoices("fileName", "filename")``); the schemas here list every spelling
and require one of them, since NCS sends both.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import AliasChoices, BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

COMPONENTS_REF = "#/components/schemas/{model}"
DEFS_REF = "#/$defs/{model}"


@dataclass(frozen=True, slots=True)
class ModelSchema:
    """A model and the direction it is documented in: ``validation`` for what we accept
    (NCS bodies), ``serialization`` for what we publish."""

    model: type[BaseModel]
    mode: JsonSchemaMode = "serialization"


@dataclass(frozen=True, slots=True)
class SchemaSet:
    """References to each requested model, and every schema they need, by name."""

    refs: dict[ModelSchema, dict[str, Any]]
    components: dict[str, Any]

    def ref(self, model: type[BaseModel], mode: JsonSchemaMode = "serialization") -> dict[str, Any]:
        """The ``$ref`` object of a model that was part of the set (``KeyError`` if not)."""
        return dict(self.refs[ModelSchema(model, mode)])


def schema_set(models: Sequence[ModelSchema], ref_template: str = COMPONENTS_REF) -> SchemaSet:
    """Generate the schemas of ``models`` (duplicates allowed); references follow
    ``ref_template`` (AsyncAPI components, or ``$defs`` of a standalone schema)."""
    unique = list(dict.fromkeys(models))
    refs, top = models_json_schema(
        [(m.model, m.mode) for m in unique], ref_template=ref_template
    )
    defs: dict[str, Any] = top.get("$defs", {})
    for model in {m for spec in unique if spec.mode == "validation" for m in _models(spec.model)}:
        name = next((n for n in (model.__name__, f"{model.__name__}-Input") if n in defs), None)
        if name is not None:
            _add_spellings(model, defs[name])
    return SchemaSet(
        refs={m: dict(refs[(m.model, m.mode)]) for m in unique},
        components={name: defs[name] for name in sorted(defs)},
    )


def _models(model: type[BaseModel]) -> Iterator[type[BaseModel]]:
    """``model`` and every model its fields refer to, each once."""
    seen: set[type[BaseModel]] = set()
    pending = [model]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        yield current
        for info in current.model_fields.values():
            pending.extend(_model_args(info.annotation))


def _model_args(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from _model_args(arg)


def _add_spellings(model: type[BaseModel], schema: dict[str, Any]) -> None:
    """Document every accepted spelling of ``AliasChoices`` fields (in place)."""
    properties: dict[str, Any] = schema.get("properties", {})
    required: list[str] = schema.get("required", [])
    for info in model.model_fields.values():
        alias = info.validation_alias
        if not isinstance(alias, AliasChoices):
            continue
        spellings = [c for c in alias.choices if isinstance(c, str)]
        first = spellings[0]
        if first not in properties:
            continue
        for other in spellings[1:]:
            properties[other] = {
                **properties[first],
                "description": f"Another spelling of {first} (accepted the same way).",
            }
        if first in required:
            required.remove(first)
            one_of_them = {"anyOf": [{"required": [name]} for name in spellings]}
            schema.setdefault("allOf", []).append(one_of_them)
    if "required" in schema and not required:
        del schema["required"]
