"""The contract documents as files: names, text form, and the comparison with a directory."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from handlers.contracts.asyncapi import build_asyncapi
from handlers.contracts.openapi import build_handlers_openapi, build_openapi
from handlers.contracts.topic_schemas import build_topic_schemas

DOCUMENTS: dict[str, Callable[[], dict[str, Any]]] = {
    "asyncapi.json": build_asyncapi,
    "openapi.json": build_openapi,
    "openapi-handlers.json": build_handlers_openapi,
}

# docs/contracts of the source tree this package sits in.
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "docs" / "contracts"


def to_text(document: dict[str, Any]) -> str:
    """Stable text: two-space JSON (valid YAML too), key order as built, final newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def render_documents() -> dict[str, str]:
    """File name (relative to the directory) -> text of every document: the AsyncAPI and
    OpenAPI documents, and the JSON Schemas of each topic under ``schemas/``."""
    rendered = {name: to_text(build()) for name, build in DOCUMENTS.items()}
    rendered.update({name: to_text(doc) for name, doc in build_topic_schemas().items()})
    return rendered


def stale_documents(directory: Path, rendered: dict[str, str] | None = None) -> list[str]:
    """Names of the documents whose file in ``directory`` is missing or differs."""
    rendered = rendered if rendered is not None else render_documents()
    stale = []
    for name, text in rendered.items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale


def write_documents(directory: Path, rendered: dict[str, str] | None = None) -> list[str]:
    """Write every document that changed; returns the names written."""
    rendered = rendered if rendered is not None else render_documents()
    written = stale_documents(directory, rendered)
    for name in written:
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered[name], encoding="utf-8")
    return written
