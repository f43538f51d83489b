"""Machine-readable contracts of the service, generated from the code.

- ``docs/contracts/asyncapi.json``: AsyncAPI 3.0, one channel per topic of the catalog
  (:func:`webhook.shared.topic_catalog.catalog`), with each message's key, headers and
  payload schema.
  Payload schemas come from the pydantic models that produce (or parse) the records.
- ``docs/contracts/openapi.json``: OpenAPI 3.1 of the webhook's HTTP edge.
- ``docs/contracts/openapi-handlers.json``: OpenAPI 3.1 of the handlers' health server.

``python -m handlers.contracts`` rewrites the documents; ``--check`` only compares them
(exit 1 when they differ from what the code says).
tests/handlers/contracts/test_contracts.py runs the same comparison, so a renamed model field
fails the suite until the documents are regenerated.
"""

from handlers.contracts.asyncapi import build_asyncapi
from handlers.contracts.openapi import build_handlers_openapi, build_openapi
from handlers.contracts.render import DOCUMENTS, render_documents

__all__ = [
    "DOCUMENTS",
    "build_asyncapi",
    "build_handlers_openapi",
    "build_openapi",
    "render_documents",
]
