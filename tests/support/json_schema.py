"""A small JSON Schema (2020-12 / OpenAPI 3.1 / AsyncAPI) checker for the contract tests.

It knows the keywords our generated documents use; an unknown validation keyword raises
``UnsupportedKeyword`` rather than being skipped, so a schema is never half-checked.
``$ref`` must be local (``#/...``) and is resolved against the document root.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Keywords that describe but do not constrain.
_ANNOTATIONS = frozenset(
    {"title", "description", "default", "examples", "example", "format", "contentEncoding",
     "contentMediaType", "deprecated", "readOnly", "writeOnly", "$comment"}
)
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}


class UnsupportedKeyword(ValueError):
    """The schema uses a keyword this checker does not implement."""


def resolve(root: Mapping[str, Any], ref: str) -> Any:
    """The node a local ``$ref`` points to (``KeyError`` when it does not exist)."""
    if not ref.startswith("#/"):
        raise UnsupportedKeyword(f"only local references are supported, got {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def errors(instance: Any, schema: Any, root: Mapping[str, Any], path: str = "$") -> list[str]:
    """Every way ``instance`` fails ``schema`` (empty when it conforms)."""
    if schema is True or schema == {}:
        return []
    if schema is False:
        return [f"{path}: no value is allowed here"]
    found: list[str] = []
    for keyword, value in schema.items():
        if keyword in _ANNOTATIONS or keyword.startswith("x-"):
            continue
        check = _CHECKS.get(keyword)
        if check is None:
            if keyword in ("additionalProperties", "required", "properties", "then", "else"):
                continue  # handled together under "properties"/"type", or under "if"
            raise UnsupportedKeyword(f"{path}: keyword {keyword!r}")
        found.extend(check(instance, value, schema, root, path))
    if "properties" not in schema and isinstance(instance, dict):
        found.extend(_object(instance, {}, schema, root, path))
    return found


def _type_matches(instance: Any, name: str) -> bool:
    if isinstance(instance, bool) and name in ("integer", "number"):
        return False
    if name == "number" and isinstance(instance, float):
        return True
    if name == "integer" and isinstance(instance, float):
        return instance.is_integer()
    return isinstance(instance, _TYPES[name])


def _type(instance: Any, value: Any, _s: Any, _r: Any, path: str) -> list[str]:
    names = value if isinstance(value, list) else [value]
    if any(_type_matches(instance, n) for n in names):
        return []
    return [f"{path}: expected {' or '.join(names)}, got {type(instance).__name__}"]


def _const(instance: Any, value: Any, _s: Any, _r: Any, path: str) -> list[str]:
    same = instance == value and type(instance) is type(value)
    return [] if same else [f"{path}: expected {value!r}, got {instance!r}"]


def _enum(instance: Any, value: Any, _s: Any, _r: Any, path: str) -> list[str]:
    return [] if instance in value else [f"{path}: {instance!r} is not one of {value!r}"]


def _ref(instance: Any, value: Any, _s: Any, root: Mapping[str, Any], path: str) -> list[str]:
    return errors(instance, resolve(root, value), root, path)


def _all_of(instance: Any, value: Any, _s: Any, root: Mapping[str, Any], path: str) -> list[str]:
    return [e for sub in value for e in errors(instance, sub, root, path)]


def _any_of(instance: Any, value: Any, _s: Any, root: Mapping[str, Any], path: str) -> list[str]:
    results = [errors(instance, sub, root, path) for sub in value]
    if any(not r for r in results):
        return []
    return [f"{path}: matches none of anyOf: " + " | ".join("; ".join(r) for r in results)]


def _one_of(instance: Any, value: Any, _s: Any, root: Mapping[str, Any], path: str) -> list[str]:
    matching = sum(1 for sub in value if not errors(instance, sub, root, path))
    return [] if matching == 1 else [f"{path}: matches {matching} of oneOf, expected 1"]


def _if(instance: Any, value: Any, schema: Mapping[str, Any], root: Mapping[str, Any],
        path: str) -> list[str]:
    branch = "then" if not errors(instance, value, root, path) else "else"
    return errors(instance, schema.get(branch, True), root, path)


def _object(
    instance: Any, value: Any, schema: Mapping[str, Any], root: Mapping[str, Any], path: str
) -> list[str]:
    if not isinstance(instance, dict):
        return []
    found: list[str] = []
    for name in schema.get("required", []):
        if name not in instance:
            found.append(f"{path}: required property {name!r} is missing")
    extra_schema = schema.get("additionalProperties", True)
    for name, item in instance.items():
        if name in value:
            found.extend(errors(item, value[name], root, f"{path}.{name}"))
        else:
            found.extend(errors(item, extra_schema, root, f"{path}.{name}"))
    return found


def _items(instance: Any, value: Any, _s: Any, root: Mapping[str, Any], path: str) -> list[str]:
    if not isinstance(instance, list):
        return []
    return [e for i, item in enumerate(instance) for e in errors(item, value, root, f"{path}[{i}]")]


def _bound(compare: str) -> Any:
    def check(instance: Any, value: Any, _s: Any, _r: Any, path: str) -> list[str]:
        if isinstance(instance, bool) or not isinstance(instance, int | float):
            return []
        ok = instance >= value if compare == "min" else instance <= value
        return [] if ok else [f"{path}: {instance} is out of range ({compare} {value})"]

    return check


def _length(compare: str) -> Any:
    def check(instance: Any, value: Any, _s: Any, _r: Any, path: str) -> list[str]:
        if not isinstance(instance, str):
            return []
        ok = len(instance) >= value if compare == "min" else len(instance) <= value
        return [] if ok else [f"{path}: length {len(instance)} ({compare} {value})"]

    return check


def _max_properties(instance: Any, value: Any, _s: Any, _r: Any, path: str) -> list[str]:
    if isinstance(instance, dict) and len(instance) > value:
        return [f"{path}: more than {value} properties"]
    return []


def _pattern(instance: Any, value: Any, _s: Any, _r: Any, path: str) -> list[str]:
    if isinstance(instance, str) and re.search(value, instance) is None:
        return [f"{path}: {instance!r} does not match {value!r}"]
    return []


_CHECKS: dict[str, Any] = {
    "type": _type,
    "const": _const,
    "enum": _enum,
    "$ref": _ref,
    "allOf": _all_of,
    "anyOf": _any_of,
    "oneOf": _one_of,
    "if": _if,
    "properties": _object,
    "items": _items,
    "minimum": _bound("min"),
    "maximum": _bound("max"),
    "minLength": _length("min"),
    "maxLength": _length("max"),
    "maxProperties": _max_properties,
    "pattern": _pattern,
}
