"""The contract documents as files: names, text form, and the comparison with a directory."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from handlers.contracts.asyncapi import build_asyncapi
from handlers.contracts.openapi import build_handlers_openapi, build_openapi

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
    """File name -> text of every document."""
    return {name: to_text(build()) for name, build in DOCUMENTS.items()}


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
    directory.mkdir(parents=True, exist_ok=True)
    written = stale_documents(directory, rendered)
    for name in written:
        (directory / name).write_text(rendered[name], encoding="utf-8")
    return written
